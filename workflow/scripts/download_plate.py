"""Rule download_plate: fetch one plate's archive (resumable, retried, bounded) into
resources/<dataset>/archives/<plate>.zip; the extract_plate job that reads it deletes it afterwards unless
data.keep_archives is set (it is a temp() output)."""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

from cellmoa.datasets import get_dataset
from cellmoa.download import fetch, join_url, sha256sum

p = snakemake.params
archive = Path(snakemake.output.archive)
name = get_dataset(p.dataset).archive_name(snakemake.wildcards.plate)
url = join_url(p.base_url, name)
fetch(url, archive, retries=p.retries, timeout=p.timeout, max_bytes=p.max_bytes)
logging.getLogger("download_plate").info(
    "%s: %d bytes, sha256 %s", url, archive.stat().st_size, sha256sum(archive)
)
