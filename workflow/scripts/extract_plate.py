"""Rule extract_plate: check and extract a plate's archive, write its manifest.

Check that the archive holds every image the metadata lists for the plate, extract it safely
into resources/<dataset>/images/<plate>/ and write the plate's manifest (size and sha256 of
every file, and the archive it came from).
"""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

from cellmoa.data.archives import ArchiveError, extract_zip
from cellmoa.data.http import join_url
from cellmoa.data.manifests import sha256sum, write_manifest
from cellmoa.data.resolve import resolve_dataset

p = snakemake.params
plate = snakemake.wildcards.plate
dataset = resolve_dataset(snakemake.config)
metadata = dataset.read_metadata(Path(snakemake.input.metadata[0]).parent)
archive = Path(snakemake.input.archive)
images = Path(snakemake.output.images)
try:
    files = extract_zip(
        archive,
        images,
        strip_prefix=plate,
        expected=dataset.plate_files(metadata, plate),
        allow_missing=p.on_bad_image == "skip",
    )
except ArchiveError as exc:
    # a rejected archive never stays under its finished name: the next run fetches it again
    archive.unlink(missing_ok=True)
    raise ArchiveError(
        f"{exc} (the archive was deleted, so that the next run downloads it again)"
    ) from exc
logging.getLogger("extract_plate").info("extracted %d files into %s", len(files), images)
source = f"{join_url(p.base_url, dataset.archive_name(plate))}#sha256={sha256sum(archive)}"
write_manifest(
    Path(snakemake.output.manifest),
    images.parent,
    files,
    {f"{plate}/{f.relative_to(images).as_posix()}": source for f in files},
)
