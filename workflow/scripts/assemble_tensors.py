"""Rule assemble_tensors: all plates as one HDF5 file (a virtual dataset, no copy)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])

from cellmoa.tensors import assemble

assemble([Path(f) for f in snakemake.input.plates], Path(snakemake.output.tensors))
