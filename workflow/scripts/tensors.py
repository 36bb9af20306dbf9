"""Rule tensors.

One plate's labelled fields (with prediction.unannotated those of the compounds without an MoA too,
flagged annotated = 0; and a sample of its control fields, flagged is_control),
illumination-corrected, standardised by the reference fields of their cell line (BBBC021: DMSO),
resized and cut into crops (crops.mode: cells - one crop around each nucleus of the plate's
segmentation), written to HDF5 well by well; with on_bad_image: skip, the fields left
out (here or by the illumination job) are listed in results/tensors/<plate>.skipped.tsv.
"""

from rule_setup import start

start(snakemake)

from pathlib import Path

import pandas as pd
from plate_setup import stored_fields

from cellmoa.files import read_tsv, write_tsv
from cellmoa.preprocess.crops import nucleus_centroids
from cellmoa.preprocess.illumination import read_illumination, read_reference_statistics
from cellmoa.preprocess.jobs import write_plate_tensors
from cellmoa.preprocess.settings import TensorSettings
from cellmoa.segment.qc import usable_fields

p = snakemake.params
dataset, plate = stored_fields(snakemake)
settings = TensorSettings.from_config(
    {
        "crops": p.crops,
        "normalization": p.normalization,
        "control_fields_per_plate": p.control_fields,
    },
    dataset,
)
bad = settings.bad_images()
bad.records.extend(read_tsv(snakemake.input.skipped_before).to_dict("records"))
function = Path(snakemake.input.function)
# single-cell crops (crops.mode: cells): around the nuclei of the fields the segmentation QC passed
centroids = None
if "objects" in snakemake.input.keys():
    centroids = nucleus_centroids(
        pd.read_parquet(snakemake.input.objects),
        usable_fields(read_tsv(snakemake.input.segmentation_qc)),
    )
write_plate_tensors(
    Path(snakemake.output.tensors),
    plate,
    read_illumination(function),
    settings,
    bad=bad,
    # computed by the illumination job in its read of the plate (not used with Anscombe)
    reference_stats=read_reference_statistics(function),
    # each field is read, normalised and converted to float16 in a reader thread (numpy releases
    # the GIL there): as many as the job's threads; the writing thread mostly waits
    prefetch=snakemake.threads if snakemake.threads > 1 else 0,
    centroids=centroids,
)
write_tsv(bad.table(), Path(snakemake.output.skipped))
