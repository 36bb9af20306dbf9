"""LoadData screens laid out as microscopes export them: images in per-well folders under
repeated file names (``images/<plate>/<well>/s1_DNA.tiff``) are read, fetched and recorded at
their path below the plate's folder; flat plate folders keep their bare file names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from cellmoa.data.datasets import get_dataset
from cellmoa.data.datasets.loaddata_images import add_image_sources, stored_names
from cellmoa.data.datasets.loaddata_tables import ScreenError
from cellmoa.data.fetch import fetch_images
from cellmoa.data.manifests import read_manifest, verify_manifest, write_manifest
from cellmoa.data.synthetic.screen import ScreenSpec
from tests.helpers.screens import relay_per_well

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> Path:
    spec = ScreenSpec(
        seed=1,
        weeks=2,
        plates_per_week=1,
        dmso_wells_per_plate=4,
        image_height=48,
        image_width=64,
        cells_per_field=10,
        nucleus_radius=3.0,
    )
    return spec.write(tmp_path_factory.mktemp("flat") / "screen", archives=False)


def read(folder: Path):
    ds = get_dataset("loaddata", ScreenSpec().data_defaults(str(folder)))
    metadata_dir = folder / "metadata"
    metadata_dir.mkdir(exist_ok=True)
    for name, source in ds.metadata_sources("").items():
        shutil.copy(source, metadata_dir / name)
    return ds, ds.read_metadata(metadata_dir)


def test_a_flat_plate_folder_keeps_its_bare_file_names(flat):
    _, metadata = read(flat)
    table = pd.read_csv(flat / "loaddata.csv", dtype=str)
    by_field = table.set_index(["Metadata_Plate", "Metadata_Well"])["FileName_OrigDNA"]
    for _, row in metadata.iterrows():
        assert row["file_DNA"] == f"{row['plate']}/{by_field[(row['plate'], row['well'])]}"
    # per-channel folders keep the folder below the plate's
    assert stored_names(["P", "P"], ["/s/P/DNA/a.tif", "/s/P/ER/a.tif"]) == [
        "P/DNA/a.tif",
        "P/ER/a.tif",
    ]


def test_per_well_folders_with_repeated_file_names_are_read_fetched_and_recorded(flat, tmp_path):
    screen = tmp_path / "screen"
    shutil.copytree(flat, screen)
    relay_per_well(screen)
    table = pd.read_csv(screen / "loaddata.csv", dtype=str)
    assert (
        table["FileName_OrigDNA"].duplicated().any()
        and table["PathName_OrigDNA"].str.count("/").eq(2).all()
    )
    ds, metadata = read(screen)
    assert all(
        row["file_DNA"] == f"{row['plate']}/{row['well']}/s{row['site']}_DNA.tiff"
        for _, row in metadata.iterrows()
    )
    plate = metadata["plate"].iloc[0]
    listed = ds.plate_sources(metadata, plate)
    assert all(name.count("/") == 1 for name, _, _ in listed)
    assert len({name for name, _, _ in listed}) == len(listed)
    items = [(n, s, f"loaddata.csv line {line}") for n, s, line in listed]
    images = tmp_path / "resources/images" / plate
    files, sources, missing = fetch_images(items, images, tmp_path / "staging" / plate)
    assert not missing and len(files) == len(listed)
    for name, source, _ in listed:
        assert (images / name).read_bytes() == Path(source).read_bytes()
    manifest = tmp_path / "manifest.tsv"
    write_manifest(manifest, images.parent, files, {f"{plate}/{n}": s for n, s in sources.items()})
    paths = {row["path"] for row in read_manifest(manifest)}
    well = metadata[metadata["plate"] == plate]["well"].iloc[0]
    assert f"{plate}/{well}/s1_DNA.tiff" in paths
    verify_manifest(manifest, images.parent)


def fields_of(sources: list[tuple[str, str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    images = pd.DataFrame(sources, columns=["PathName_DNA", "FileName_DNA"])
    fields = pd.DataFrame(
        {"plate": "P1", "well": [f"A{i + 1:02d}" for i in range(len(sources))], "site": 1}
    )
    return images, fields


def test_two_sources_that_would_share_a_stored_path_are_refused_with_both_lines():
    images, fields = fields_of(
        [
            ("https://a.org/P1/A01", "s1_DNA.tif"),
            ("https://a.org/P1/A02", "s1_DNA.tif"),
            ("https://mirror.org/P1/A01", "s1_DNA.tif"),
        ]
    )
    with pytest.raises(
        ScreenError,
        match=r"load.csv lines 2 \(https://a.org/P1/A01/s1_DNA.tif\) and 4 "
        r"\(https://mirror.org/P1/A01/s1_DNA.tif\): two different images of plate P1 would both "
        r"be stored as P1/A01/s1_DNA.tif .* Fix: ",
    ):
        add_image_sources(images, fields, "load.csv", ("DNA",), "/screen")
    images, fields = fields_of([("/s/P1/A01", "s1_DNA.tif"), ("/s/P1/A01", "s1_DNA.tif")])
    with pytest.raises(ScreenError, match=r"lines 2, 3: the image /s/P1/A01/s1_DNA.tif is listed"):
        add_image_sources(images, fields, "load.csv", ("DNA",), "/screen")
    images, fields = fields_of([("/s/P1/A01", "s1_DNA.tif"), ("/s/P1/A02", "s1_DNA.tif")])
    add_image_sources(images, fields, "load.csv", ("DNA",), "/screen")
    assert fields["file_DNA"].tolist() == ["P1/A01/s1_DNA.tif", "P1/A02/s1_DNA.tif"]
