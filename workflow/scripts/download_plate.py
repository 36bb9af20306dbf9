"""Rule download_plate: fetch one plate's archive (resumable, retried), check it holds every
image the metadata lists for the plate, extract it safely into resources/<dataset>/images/<plate>/
and write the plate's manifest (size and sha256 of every file)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])
import logging

from cellmoa.datasets import get_dataset
from cellmoa.download import extract_zip, fetch, join_url, sha256sum, write_manifest

log = logging.getLogger("download_plate")
p = snakemake.params
plate = snakemake.wildcards.plate
dataset = get_dataset(p.dataset)
metadata = dataset.read_metadata(Path(snakemake.input.metadata[0]).parent)
expected = dataset.plate_files(metadata, plate)
name = dataset.archive_name(plate)
url = join_url(p.base_url, name)
archive = Path(p.archives_dir) / name
fetch(url, archive, retries=p.retries, timeout=p.timeout, max_bytes=p.max_bytes)
digest = sha256sum(archive)
log.info("%s: %d bytes, sha256 %s", name, archive.stat().st_size, digest)
images = Path(snakemake.output.images)
files = extract_zip(archive, images, strip_prefix=plate, expected=expected)
log.info("extracted %d files into %s", len(files), images)
source = f"{url}#sha256={digest}"
write_manifest(
    Path(snakemake.output.manifest),
    images.parent,
    files,
    {f"{plate}/{f.relative_to(images).as_posix()}": source for f in files},
)
if not p.keep_archives:
    archive.unlink()
