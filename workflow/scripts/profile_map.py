"""Rule profile_map: the treatment profiles of one fold model on two principal components.

The first fold's model (its held-out compound never trained it, the others did); raw and
post-processed (profiles.postprocess) profiles, coloured by MoA, one marker per batch.
"""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

import h5py

from cellmoa.data.resolve import resolve_dataset
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.profiles.chains import chain_spec, parse_chain
from cellmoa.profiles.tables import fold_profiles
from cellmoa.report.plots import plot_profile_map

p = snakemake.params
metadata = read_crop_metadata(Path(snakemake.input.tensors))
with h5py.File(snakemake.input.embeddings, "r") as f:
    embeddings = f["embeddings"][()]
control = resolve_dataset(snakemake.config).control
variants, notes = fold_profiles(
    metadata,
    embeddings,
    parse_chain(chain_spec(p.postprocess, "none")[1]),
    control,
    f"fold {p.compound}",
)
title = (
    f"{snakemake.wildcards.network}: treatment profiles of the fold model that held out "
    f"{p.compound}"
)
plot_profile_map(variants, title, Path(snakemake.output.plot))
logging.getLogger("profile_map").info(
    "%s: %s", title, ", ".join(f"{n} ({len(t)} treatments)" for n, t in variants)
)
