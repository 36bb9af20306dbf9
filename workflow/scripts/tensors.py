"""Rule tensors: one plate's labelled fields, illumination-corrected, standardised by the
reference fields of their cell line (BBBC021: DMSO), resized and cut into crops, written to HDF5
well by well; with on_bad_image: skip, the fields left out (here or
by the illumination job) are listed in results/tensors/<plate>.skipped.tsv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])

import logging

from cellmoa.datasets import get_dataset, restrict
import pandas as pd

from cellmoa.tensors import (
    BadImages,
    Normalization,
    read_illumination,
    read_reference_statistics,
    reference_name,
    write_plate_tensors,
)

p = snakemake.params
plate = snakemake.wildcards.plate
dataset = get_dataset(p.dataset)
metadata = dataset.read_metadata(Path(snakemake.input.metadata[0]).parent)
raw_dir = Path(snakemake.input.images).parent
on_plate = metadata[metadata["plate"] == plate]
labelled = dataset.labelled(on_plate)
kept = restrict(labelled, p.restrictions)
if len(kept) < len(labelled):
    logging.getLogger("tensors").info(
        "%s: %d labelled field(s) left out by preprocessing.restrictions", plate, len(labelled) - len(kept)
    )
normalization = Normalization.from_dict(p.normalization)
bad = BadImages(skip=normalization.on_bad_image == "skip")
before = pd.read_csv(snakemake.input.skipped_before, sep="\t")
bad.records.extend(before.to_dict("records"))
write_plate_tensors(
    Path(snakemake.output.tensors),
    plate,
    kept,
    dataset.reference(on_plate),
    raw_dir,
    dataset.channels,
    read_illumination(Path(snakemake.input.function)),
    crop_rows=p.crops["rows"],
    crop_cols=p.crops["cols"],
    normalization=normalization,
    bad=bad,
    field_size=p.crops["resize"],
    reference_name=reference_name(dataset),
    # computed by the illumination job in its read of the plate (not used with Anscombe)
    reference_stats=read_reference_statistics(Path(snakemake.input.function)),
    prefetch=max(0, snakemake.threads - 1),
)
bad.table().to_csv(snakemake.output.skipped, sep="\t", index=False)
