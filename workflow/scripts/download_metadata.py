"""Rule download_metadata: fetch the dataset's metadata CSVs from data.base_url and record them
in a manifest (size, sha256, source URL)."""

from rule_setup import start

start(snakemake)

from pathlib import Path

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
