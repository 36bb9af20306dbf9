"""Rule fetch_weights: download a network's ImageNet no-top weights once, checked against the
md5 Keras publishes, so that training jobs (often on offline nodes) never download."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])
from cellmoa.models import fetch_imagenet_weights

fetch_imagenet_weights(
    snakemake.wildcards.network,
    Path(snakemake.output.weights),
    base_url=snakemake.params.base_url,
    retries=snakemake.params.retries,
    timeout=snakemake.params.timeout,
)
