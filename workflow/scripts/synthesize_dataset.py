"""Rule synthesize_dataset: write a synthetic dataset in the selected dataset's layout.

It is written into data.base_url.
"""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

from cellmoa.data.synthetic import spec_for

spec = spec_for(snakemake.params.dataset, snakemake.params.spec)
out = spec.write(Path(snakemake.output[0]))
logging.getLogger("synthesize_dataset").info(
    "synthesized %d plates into %s", len(spec.plates()), out
)
