"""Rule assemble_tensors: all plates as one HDF5 file (a virtual dataset, no copy)."""

from rule_setup import start

start(snakemake)

from pathlib import Path

from cellmoa.preprocess.tensors import assemble

assemble([Path(f) for f in snakemake.input.plates], Path(snakemake.output.tensors))
