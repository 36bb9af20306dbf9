"""Rule download_plate: fetch one plate's archive (resumable, retried, bounded).

Into resources/<dataset>/archives/<plate>.zip (a readable zip, or nothing under that name); the
extract_plate job that reads it deletes it afterwards unless data.keep_archives is set (it is a
temp() output).
"""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

from cellmoa.data.archives import check_zip
from cellmoa.data.http import fetch, join_url
from cellmoa.data.manifests import sha256sum
from cellmoa.data.resolve import resolve_dataset

p = snakemake.params
archive = Path(snakemake.output.archive)
name = resolve_dataset(snakemake.config).archive_name(snakemake.wildcards.plate)
url = join_url(p.base_url, name)
data = snakemake.config["data"]
fetch(
    url,
    archive,
    retries=data["retries"],
    timeout=data["timeout"],
    max_bytes=data["max_bytes"],
    validate=check_zip,
)
logging.getLogger("download_plate").info(
    "%s: %d bytes, sha256 %s", url, archive.stat().st_size, sha256sum(archive)
)
