"""Rule synthesize_dataset: write the synthetic BBBC021-format dataset into data.base_url."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])

import logging

from cellmoa.synthetic import SyntheticSpec, synthesize

spec = SyntheticSpec.from_dict(snakemake.params.spec)
out = synthesize(spec, Path(snakemake.output[0]))
logging.getLogger("synthesize_dataset").info("synthesized %d plates into %s", len(spec.plates()), out)
