"""Rule synthesize_dataset: write a synthetic dataset in the selected dataset's layout into data.base_url."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])

import logging

from cellmoa.synthetic import spec_for

spec = spec_for(snakemake.params.dataset, snakemake.params.spec)
out = spec.write(Path(snakemake.output[0]))
logging.getLogger("synthesize_dataset").info("synthesized %d plates into %s", len(spec.plates()), out)
