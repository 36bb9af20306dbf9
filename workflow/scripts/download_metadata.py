"""Rule download_metadata: fetch the dataset's metadata CSVs from data.base_url.

A loaddata screen: its LoadData CSV, plate map and MoA table from data.loaddata, treatments,
moas. Each is checked (readable text, the dataset's columns) before it takes its final name,
and recorded in a manifest (size, sha256, source URL).
"""

from rule_setup import start

start(snakemake)

from pathlib import Path

from cellmoa.data.http import fetch
from cellmoa.data.manifests import write_manifest
from cellmoa.data.resolve import resolve_dataset

p = snakemake.params
data = snakemake.config["data"]
dataset = resolve_dataset(snakemake.config)
sources = {}
files = []
for name, dest in snakemake.output.items():
    if name == "manifest":
        continue
    url = p.sources[name]
    fetch(
        url,
        Path(dest),
        retries=data["retries"],
        timeout=data["timeout"],
        max_bytes=data["max_bytes"],
        validate=lambda path, name=Path(dest).name: dataset.check_metadata_file(name, path),
    )
    sources[Path(dest).name] = url
    files.append(Path(dest))
write_manifest(Path(snakemake.output.manifest), files[0].parent, files, sources)
