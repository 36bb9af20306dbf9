"""Rule download_plate: fetch one plate's archive, check it holds every image the metadata lists
for the plate, extract it into resources/<dataset>/images/<plate>/."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])

from cellmoa.datasets import get_dataset
from cellmoa.download import extract_zip, fetch, join_url

p = snakemake.params
plate = snakemake.wildcards.plate
dataset = get_dataset(p.dataset)
metadata = dataset.read_metadata(Path(snakemake.input.metadata[0]).parent)
rows = metadata[metadata["plate"] == plate]
if rows.empty:
    raise ValueError(f"plate {plate} has no images in the metadata; check data.plates in the config")
expected = sorted({f.split("/", 1)[1] for ch in dataset.channels for f in rows[f"file_{ch}"]})
name = dataset.archive_name(plate)
archive = Path(p.archives_dir) / name
fetch(join_url(p.base_url, name), archive, retries=p.retries, timeout=p.timeout, max_bytes=p.max_bytes)
extract_zip(archive, Path(snakemake.output.images), strip_prefix=plate, expected=expected)
if not p.keep_archives:
    archive.unlink()
