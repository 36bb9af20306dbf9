"""Rule fetch_weights.

Download a network's ImageNet no-top weights once, checked against the md5 Keras publishes, so that
training jobs (often on offline nodes) never download.
"""

from rule_setup import start

start(snakemake)

from pathlib import Path

from cellmoa.train.networks import fetch_imagenet_weights

fetch_imagenet_weights(
    snakemake.wildcards.network,
    Path(snakemake.output.weights),
    base_url=snakemake.params.base_url,
    retries=snakemake.config["data"]["retries"],
    timeout=snakemake.config["data"]["timeout"],
)
