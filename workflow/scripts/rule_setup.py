"""Imported first by every rule script (Snakemake puts this folder on the script's path).

Makes the cellmoa package importable where it is not installed (per-rule conda envs with
``--sdm conda`` get only the third-party packages) and sends everything the job prints, native
libraries included, to the job's ``log:`` file.
"""

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def start(snakemake) -> None:
    """Per-job logging into the rule's first log file."""
    from cellmoa.logs import job_logging

    job_logging(snakemake.log[0])
