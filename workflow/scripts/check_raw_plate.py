"""Rule check_raw_plate (data.raw_dir): check a plate folder already on disk.

Check that the folder holds every
image the metadata lists, and record its files in a manifest (size and sha256). With
on_bad_image: skip, missing files are logged and their fields left out later (listed in
results/tensors/<plate>.skipped.tsv); otherwise they are an error naming them.
"""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

from cellmoa.data.manifests import RawDataError, missing_files_message, write_manifest
from cellmoa.data.resolve import resolve_dataset

dataset = resolve_dataset(snakemake.config)
plate = snakemake.wildcards.plate
folder = Path(snakemake.input.images)
metadata = dataset.read_metadata(Path(snakemake.input.metadata[0]).parent)
expected = dataset.plate_files(metadata, plate)
missing = [name for name in expected if not (folder / name).is_file()]
if missing and snakemake.params.on_bad_image != "skip":
    raise RawDataError(missing_files_message(str(folder), missing))
if missing:
    logging.getLogger("check_raw_plate").warning(
        "%s (on_bad_image: skip, their fields will be left out)",
        missing_files_message(str(folder), missing, False),
    )
present = [folder / name for name in expected if (folder / name).is_file()]
write_manifest(Path(snakemake.output.manifest), folder.parent, present)
