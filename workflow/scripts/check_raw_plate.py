"""Rule check_raw_plate (data.raw_dir): check that a plate folder already on disk holds every
image the metadata lists, and record its files in a manifest (size and sha256)."""

from rule_setup import start

start(snakemake)

from pathlib import Path

from cellmoa.datasets import get_dataset
from cellmoa.download import ArchiveError, write_manifest

dataset = get_dataset(snakemake.params.dataset)
plate = snakemake.wildcards.plate
folder = Path(snakemake.input.images)
metadata = dataset.read_metadata(Path(snakemake.input.metadata[0]).parent)
expected = dataset.plate_files(metadata, plate)
missing = [name for name in expected if not (folder / name).is_file()]
if missing:
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    raise ArchiveError(f"{folder}: {len(missing)} file(s) listed in the metadata are missing: {shown}")
write_manifest(Path(snakemake.output.manifest), folder.parent, [folder / name for name in expected])
