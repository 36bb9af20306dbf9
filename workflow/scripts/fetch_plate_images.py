"""Rule fetch_plate_images (dataset: loaddata): gather one plate's images.

Put every image the LoadData CSV lists for one plate into resources/loaddata/images/<plate>/
(local files hard-linked, else symlinked; URLs downloaded, resumably: finished files wait in
resources/loaddata/staging/<plate>/ until the plate is complete), refuse a plate whose images
differ in size or bit depth, and write the plate's manifest (size, sha256 and source of every
file).
"""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

from cellmoa.data.fetch import fetch_images
from cellmoa.data.manifests import write_manifest
from cellmoa.data.resolve import resolve_dataset
from cellmoa.preprocess.images import check_plate_images

p = snakemake.params
data = snakemake.config["data"]
plate = snakemake.wildcards.plate
dataset = resolve_dataset(snakemake.config)
metadata = dataset.read_metadata(Path(snakemake.input.metadata[0]).parent)
loaddata = dataset.sources[dataset.loaddata_name]
listed = dataset.plate_sources(metadata, plate)
items = [(name, source, f"{loaddata} line {line}") for name, source, line in listed]
images = Path(snakemake.output.images)
log = logging.getLogger("fetch_plate_images")
log.info(
    "plate %s: %d images (%d fields x %d channels)",
    plate,
    len(items),
    len(items) // max(len(dataset.channels), 1),
    len(dataset.channels),
)
files, sources, missing = fetch_images(
    items,
    images,
    Path(p.staging),
    allow_missing=p.on_bad_image == "skip",
    link_local=p.link_local,
    retries=data["retries"],
    timeout=data["timeout"],
    max_bytes=data["max_bytes"],
)
if missing:
    log.warning(
        "%d image(s) missing (on_bad_image: skip, their fields will be left out): %s",
        len(missing),
        "; ".join(missing[:10]),
    )
line_of = {name: line for name, _, line in listed}
found = check_plate_images([(images / name, line_of[name]) for name in sources], plate, loaddata)
log.info(
    "plate %s: %d images of %s %s",
    plate,
    len(files),
    " x ".join(map(str, found["shape"])),
    found["dtype"],
)
write_manifest(
    Path(snakemake.output.manifest),
    images.parent,
    files,
    {f"{plate}/{name}": source for name, source in sources.items()},
)
