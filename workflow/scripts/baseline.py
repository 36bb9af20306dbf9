"""Rule baseline.

The plates' CellProfiler well profiles scored as a network's outputs (cellmoa.features.baseline):
per fold, the held-out compound's predictions by a logistic regression trained on the other
compounds' wells (results/models/CellProfiler/<fold>/predictions.tsv) and every crop's well
profile (embeddings.h5, for the matching); the well profiles in pycytominer's layout
(results/profiles/CellProfiler.parquet).
"""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

import pandas as pd

from cellmoa.features.baseline import (
    BASELINE,
    crop_profiles,
    fold_predictions,
    write_embeddings,
)
from cellmoa.files import write_parquet, write_tsv
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.profiles.export import export_wells

p = snakemake.params
metadata = read_crop_metadata(Path(snakemake.input.tensors))
wells = pd.concat([pd.read_parquet(f) for f in snakemake.input.wells], ignore_index=True)
profiles, names = crop_profiles(metadata, wells)
log = logging.getLogger("baseline")
log.info("%d wells, %d features kept, %d crops", len(wells), len(names), len(metadata))
for compound, predictions_path, embeddings_path in zip(
    p.folds.values(), snakemake.output.predictions, snakemake.output.embeddings
):
    predictions = fold_predictions(metadata, profiles, compound, p.scheme)
    write_tsv(predictions, Path(predictions_path))
    write_embeddings(profiles, Path(embeddings_path), compound, snakemake.input.tensors)
    right = (predictions["predicted_moa"] == predictions["Metadata_MoA"]).mean()
    log.info("fold %s: %d crops, %.0f%% of them right", compound, len(predictions), 100 * right)
exported = export_wells(metadata, profiles, BASELINE)
exported = exported.rename(columns={f"f{i}": name for i, name in enumerate(names)})
write_parquet(exported, Path(snakemake.output.profiles))
