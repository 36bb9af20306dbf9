"""Rule export_profiles: one network's CNN profiles in pycytominer's layout, as Parquet.

The all-compound fold's model (trained on every annotated compound) embeds every crop, controls
and unannotated compounds included: its mean embedding per well
(results/profiles/<network>.parquet) and per treatment (<network>_treatments.parquet, controls
left out), for pycytominer, copairs or cellmoa evaluate-profiles (cellmoa.profiles.export).
"""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

import h5py

from cellmoa.columns import IS_CONTROL, MOA, metadata_columns
from cellmoa.files import write_parquet
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.profiles.export import export_treatments, export_wells

metadata = read_crop_metadata(Path(snakemake.input.tensors))
with h5py.File(snakemake.input.embeddings, "r") as f:
    embeddings = f["embeddings"][()]
source = f"{snakemake.wildcards.network} all-compound fold"
wells = export_wells(metadata, embeddings, source)
treatments = export_treatments(metadata, embeddings, source)
write_parquet(wells, Path(snakemake.output.wells))
write_parquet(treatments, Path(snakemake.output.treatments))
logging.getLogger("export_profiles").info(
    "%s: %d wells (%d of them controls), %d treatments (%d unannotated), %d features",
    source,
    len(wells),
    int(wells[IS_CONTROL].sum()),
    len(treatments),
    int(treatments[MOA].isna().sum()),
    wells.shape[1] - len(metadata_columns(wells.columns)),
)
