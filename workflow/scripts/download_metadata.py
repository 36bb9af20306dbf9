"""Rule download_metadata: fetch the dataset's metadata CSVs from data.base_url and record them
in a manifest (size, sha256, source URL)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])
from cellmoa.download import fetch, join_url, write_manifest

p = snakemake.params
sources = {}
files = []
for name, dest in snakemake.output.items():
    if name == "manifest":
        continue
    url = join_url(p.base_url, name)
    fetch(url, Path(dest), retries=p.retries, timeout=p.timeout, max_bytes=p.max_bytes)
    sources[Path(dest).name] = url
    files.append(Path(dest))
write_manifest(Path(snakemake.output.manifest), files[0].parent, files, sources)
