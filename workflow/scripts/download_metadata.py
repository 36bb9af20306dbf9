"""Rule download_metadata: fetch the dataset's metadata CSVs from data.base_url."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])

from cellmoa.download import fetch, join_url

for name, dest in snakemake.output.items():
    fetch(
        join_url(snakemake.params.base_url, name),
        Path(dest),
        retries=snakemake.params.retries,
        timeout=snakemake.params.timeout,
        max_bytes=snakemake.params.max_bytes,
    )
