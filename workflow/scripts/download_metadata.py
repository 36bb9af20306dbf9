"""Rule download_metadata: fetch the dataset's metadata CSVs from data.base_url (a loaddata
screen: its LoadData CSV, plate map and MoA table from data.loaddata, treatments, moas), each checked
(readable text, the dataset's columns) before it takes its final name, and record them in a
manifest (size, sha256, source URL)."""

from rule_setup import start

start(snakemake)

from pathlib import Path

from cellmoa.data.datasets import dataset_from_config
from cellmoa.data.download import fetch, write_manifest

p = snakemake.params
data = snakemake.config["data"]
dataset = dataset_from_config(snakemake.config)
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
