"""dataset: loaddata - a screen described by a LoadData CSV, a plate map and a MoA table: reading,
every error with its file, line and fix, fetching its images (local and HTTP), the synthesizer's
5-channel 384-well screen, and the same tensors as the BBBC021 adapter on the same plates."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile

from cellmoa.data.datasets import BBBC021, get_dataset
from cellmoa.data.datasets.loaddata_images import channel_columns
from cellmoa.data.datasets.loaddata_tables import ScreenError
from cellmoa.data.fetch import fetch_images
from cellmoa.data.http import DownloadError
from cellmoa.data.manifests import RawDataError
from cellmoa.data.synthetic.screen import CHANNELS, ScreenSpec
from cellmoa.data.wells import parse_well
from cellmoa.preprocess.images import ImageError, check_plate_images

pytestmark = pytest.mark.unit


def small_spec(**overrides) -> ScreenSpec:
    values = dict(
        seed=1,
        weeks=2,
        plates_per_week=1,
        dmso_wells_per_plate=4,
        image_height=48,
        image_width=64,
        cells_per_field=10,
        nucleus_radius=3.0,
    )
    values.update(overrides)
    return ScreenSpec(**values)


@pytest.fixture(scope="module")
def screen(tmp_path_factory):
    spec = small_spec()
    out = spec.write(tmp_path_factory.mktemp("screen") / "screen")
    return spec, out


def copy_screen(screen, tmp_path) -> Path:
    """A private copy of the tables (the images stay shared: tables only are edited)."""
    _, source = screen
    out = tmp_path / "screen"
    out.mkdir()
    for name in ("loaddata.csv", "platemap.csv", "moas.csv"):
        shutil.copy(source / name, out / name)
    (out / "images").symlink_to(source / "images")
    return out


def adapter(folder: Path, **data):
    values = ScreenSpec().data_defaults(str(folder))
    values.update(data)
    return get_dataset("loaddata", values)


def read(folder: Path, **data) -> pd.DataFrame:
    ds = adapter(folder, **data)
    metadata_dir = folder / "metadata"
    metadata_dir.mkdir(exist_ok=True)
    for name, source in ds.metadata_sources("").items():
        shutil.copy(source, metadata_dir / name)
    return ds.read_metadata(metadata_dir)


def edit(path: Path, change) -> None:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(table).to_csv(path, index=False)


def test_the_synthesized_screen_reads_as_five_channels_on_384_well_plates(screen, tmp_path):
    spec, _ = screen
    folder = copy_screen(screen, tmp_path)
    ds = adapter(folder)
    assert ds.channels == CHANNELS and ds.network_channels == ("DNA", "ER", "RNA")
    metadata = read(folder)
    assert sorted(metadata["plate"].unique()) == sorted(spec.plates())
    assert (
        metadata.groupby("plate")["batch"].nunique().eq(1).all()
        and metadata["batch"].nunique() == 2
    )
    controls = ds.controls(metadata)
    assert len(controls) == 2 * 4 and {parse_well(w)[1] for w in controls["well"]} <= {
        0,
        23,
    }  # edge columns
    assert set(ds.unannotated(metadata)["compound"]) == {"CMPD-U1"}
    assert set(ds.labelled(metadata)["moa"]) == set(spec.moas)
    assert metadata["image_number"].is_unique
    first = metadata.iloc[0]
    assert first["file_DNA"] == f"{first['plate']}/r01c01f01p01-ch1sk1fk1fl1.tiff"
    assert Path(first["source_Mito"]).is_file() and Path(first["source_Mito"]).name.endswith(
        "-ch5sk1fk1fl1.tiff"
    )
    # several fields of a well are its sites, numbered in table order when the CSV has no site
    # column
    edit(folder / "loaddata.csv", lambda t: t.drop(columns=["Metadata_Site"]))
    assert read(folder)["site"].eq(1).all()


def test_channels_follow_cellprofilers_column_names():
    columns = [
        "Image_FileName_OrigDNA",
        "FileName_ER",
        "PathName_ER",
        "FileName_OrigRNA",
        "Metadata_Plate",
    ]
    assert channel_columns(columns) == {
        "DNA": "Image_FileName_OrigDNA",
        "ER": "FileName_ER",
        "RNA": "FileName_OrigRNA",
    }
    assert channel_columns(columns, "PathName") == {"ER": "PathName_ER"}
    with pytest.raises(ScreenError, match="both name channel DNA"):
        channel_columns(["FileName_DNA", "FileName_OrigDNA"])


def test_the_channels_default_to_the_csvs_and_the_plates_to_its_plates(screen, tmp_path):
    spec, _ = screen
    folder = copy_screen(screen, tmp_path)
    values = ScreenSpec().data_defaults(str(folder))
    del values["channels"]
    ds = get_dataset("loaddata", values)
    assert ds.channels == CHANNELS
    assert ds.local_plates() == sorted(spec.plates())
    assert ds.annotated_compounds() == spec.compounds
    with pytest.raises(ScreenError, match="is a URL .*give data.channels"):
        get_dataset("loaddata", {**values, "loaddata": "https://example.org/screen/loaddata.csv"})


def test_other_spellings_are_mapped_and_every_table_format_reads_the_same(screen, tmp_path):
    folder = copy_screen(screen, tmp_path)
    expected = read(folder)
    renames = {"Metadata_Plate": "plate_barcode", "Metadata_Well": "well_position"}
    for name in ("loaddata.csv", "platemap.csv"):
        edit(folder / name, lambda t: t.rename(columns=renames))
    edit(
        folder / "platemap.csv",
        lambda t: t.assign(well_position=[w[0] + str(int(w[1:])) for w in t["well_position"]]),
    )
    edit(folder / "moas.csv", lambda t: t.rename(columns={"Metadata_MoA": "moa"}))
    mapping = {
        "Metadata_Plate": "plate_barcode",
        "Metadata_Well": "well_position",
        "Metadata_MoA": "moa",
    }
    mapped = read(folder, columns=mapping)
    pd.testing.assert_frame_equal(mapped, expected)
    table = pd.read_csv(folder / "loaddata.csv", dtype=str, keep_default_na=False)
    table.to_csv(folder / "loaddata.csv.gz", index=False)
    table.to_parquet(folder / "loaddata.parquet")
    for name in ("loaddata.csv.gz", "loaddata.parquet"):
        other = read(folder, columns=mapping, loaddata=str(folder / name))
        pd.testing.assert_frame_equal(other, expected)
    with pytest.raises(
        ScreenError,
        match=r"no column Metadata_Well; .*data.columns: \{Metadata_Well: <your column>\}",
    ):
        read(folder, columns={"Metadata_Plate": "plate_barcode"})
    with pytest.raises(
        ScreenError, match="data.columns maps Metadata_Colour, which cellmoa does not read"
    ):
        adapter(folder, columns={"Metadata_Colour": "x"})


def test_a_well_without_a_treatment_is_named_with_its_line(screen, tmp_path):
    folder = copy_screen(screen, tmp_path)
    table = pd.read_csv(folder / "loaddata.csv", dtype=str)
    plate, well = table.loc[5, ["Metadata_Plate", "Metadata_Well"]]
    edit(
        folder / "platemap.csv",
        lambda t: t[~((t["Metadata_Plate"] == plate) & (t["Metadata_Well"] == well))],
    )
    with pytest.raises(ScreenError) as error:
        read(folder)
    message = str(error.value)
    assert (
        f"loaddata.csv line 7: plate {plate} well {well} has no treatment in the plate map"
        in message
    )
    assert "platemap.csv" in message and "Fix: add the well to the plate map" in message


def test_a_treated_well_without_images_is_named_and_can_be_accepted(screen, tmp_path, caplog):
    folder = copy_screen(screen, tmp_path)
    table = pd.read_csv(folder / "loaddata.csv", dtype=str)
    plate, well = table.loc[9, ["Metadata_Plate", "Metadata_Well"]]
    edit(folder / "loaddata.csv", lambda t: t.drop(index=9))
    platemap = pd.read_csv(folder / "platemap.csv", dtype=str)
    line = (
        int(
            np.flatnonzero(
                (platemap["Metadata_Plate"] == plate) & (platemap["Metadata_Well"] == well)
            )[0]
        )
        + 2
    )
    with pytest.raises(
        ScreenError,
        match=rf"platemap.csv line {line}: well {well} of plate {plate} "
        r"has a treatment but no image",
    ):
        read(folder)
    assert len(read(folder, unimaged_wells="warn")) == len(table) - 1
    assert "has a treatment but no image" in caplog.text
    assert len(read(folder, unimaged_wells="ignore")) == len(table) - 1


def test_a_row_missing_a_channel_is_named(screen, tmp_path):
    folder = copy_screen(screen, tmp_path)
    edit(
        folder / "loaddata.csv",
        lambda t: t.assign(
            FileName_OrigER=[("" if i == 3 else v) for i, v in enumerate(t["FileName_OrigER"])]
        ),
    )
    with pytest.raises(
        ScreenError,
        match=r"loaddata.csv line 5: plate \S+ well \S+ site 1 has no ER image "
        r"\(FileName_OrigER is empty",
    ):
        read(folder)
    with pytest.raises(ScreenError, match="no FileName_ column for channel\\(s\\) Brightfield"):
        read(folder, channels=["DNA", "Brightfield"])


def test_duplicate_fields_are_named_with_both_lines(screen, tmp_path):
    folder = copy_screen(screen, tmp_path)
    edit(folder / "loaddata.csv", lambda t: pd.concat([t, t.iloc[[2]]], ignore_index=True))
    n = len(pd.read_csv(folder / "loaddata.csv"))
    with pytest.raises(
        ScreenError, match=rf"loaddata.csv lines 4, {n + 1}: the same field .* is listed 2 times"
    ):
        read(folder)


def test_a_well_off_the_plate_format_and_a_bad_concentration_are_named(screen, tmp_path):
    folder = copy_screen(screen, tmp_path)
    edit(
        folder / "loaddata.csv",
        lambda t: t.assign(
            Metadata_Well=["P24" if i == 3 else v for i, v in enumerate(t["Metadata_Well"])]
        ),
    )
    with pytest.raises(
        ScreenError,
        match=r"loaddata.csv line 5: well 'P24' is not on a 96-well plate "
        r".* or set data.plate_format",
    ):
        read(folder, plate_format="96")
    edit(
        folder / "platemap.csv",
        lambda t: t.assign(
            Metadata_Concentration=[
                "lots" if i == 6 else v for i, v in enumerate(t["Metadata_Concentration"])
            ]
        ),
    )
    with pytest.raises(
        ScreenError, match="platemap.csv line 8: Metadata_Concentration is 'lots', not a number"
    ):
        read(folder)


def test_conflicting_moas_and_several_control_names(screen, tmp_path):
    folder = copy_screen(screen, tmp_path)
    edit(
        folder / "platemap.csv",
        lambda t: t.assign(
            Metadata_Compound=[
                "vehicle" if i == 0 else v for i, v in enumerate(t["Metadata_Compound"])
            ]
        ),
    )
    metadata = read(folder, control=["DMSO", "vehicle"])
    assert "vehicle" not in set(metadata["compound"])
    assert len(adapter(folder).controls(metadata)) == 2 * 4
    edit(
        folder / "moas.csv",
        lambda t: pd.concat(
            [t, pd.DataFrame({"Metadata_Compound": [t.iloc[0, 0]], "Metadata_MoA": ["Other"]})]
        ),
    )
    with pytest.raises(ScreenError, match="moas.csv lines 2 and 8: .* is given two MoAs"):
        read(folder, control=["DMSO", "vehicle"])


def test_fetching_a_plate_names_missing_images_with_their_lines(screen, tmp_path):
    folder = copy_screen(screen, tmp_path)
    ds = adapter(folder)
    metadata = read(folder)
    plate = metadata["plate"].iloc[0]
    items = [
        (n, s, f"loaddata.csv line {line}") for n, s, line in ds.plate_sources(metadata, plate)
    ]
    files, sources, missing = fetch_images(
        items, tmp_path / "images" / plate, tmp_path / "staging" / plate
    )
    assert len(files) == len(items) == (metadata["plate"] == plate).sum() * 5 and not missing
    assert all(f.is_file() for f in files) and not (tmp_path / "staging" / plate).exists()
    broken = [(n + "x", s + "x", w) for n, s, w in items[:2]] + items[2:]
    with pytest.raises(
        RawDataError,
        match=r"2 image\(s\) listed in the LoadData CSV do not exist: "
        r"loaddata.csv line 2: .*x; .*data.image_root",
    ):
        fetch_images(broken, tmp_path / "again", tmp_path / "staging2")
    files, _, missing = fetch_images(
        broken, tmp_path / "skip", tmp_path / "staging3", allow_missing=True
    )
    assert len(missing) == 2 and len(files) == len(items) - 2


def test_fetching_over_http_resumes_what_is_already_there(screen, tmp_path):
    from tests.helpers.httpserver import ScriptedServer

    spec, source = screen
    names = sorted(p.relative_to(source).as_posix() for p in (source / "images").rglob("*.tiff"))[
        :6
    ]
    with ScriptedServer() as server:
        for name in names:
            server.files[name] = (source / name).read_bytes()
        server.behaviour[names[4]] = "404"
        items = [
            (Path(n).name, f"{server.url}/{n}", f"loaddata.csv line {i + 2}")
            for i, n in enumerate(names)
        ]
        with pytest.raises(DownloadError, match=r"loaddata.csv line 6: .*HTTP 404"):
            fetch_images(items, tmp_path / "plate", tmp_path / "staging")
        fetched_before = len(server.requests)
        server.behaviour[names[4]] = "ok"
        files, _, _ = fetch_images(items, tmp_path / "plate", tmp_path / "staging")
        # the four images fetched before the failure waited in the staging folder
        assert len(server.requests) - fetched_before == 2
    assert [f.read_bytes() for f in files] == [(source / n).read_bytes() for n in names]


def test_a_plate_with_mixed_sizes_or_bit_depths_is_refused(tmp_path):
    def tiff(name, shape, dtype):
        tifffile.imwrite(tmp_path / name, np.zeros(shape, dtype))
        return tmp_path / name

    good = [(tiff("a.tif", (8, 10), np.uint16), 2), (tiff("b.tif", (8, 10), np.uint16), 3)]
    assert check_plate_images(good, "P1", "loaddata.csv") == {"shape": (8, 10), "dtype": "uint16"}
    with pytest.raises(
        ImageError,
        match=r"loaddata.csv line 4: \S+c.tif is 9 x 10 but "
        r"\S+a.tif \(line 2\) of the same plate P1 is 8 x 10",
    ):
        check_plate_images([*good, (tiff("c.tif", (9, 10), np.uint16), 4)], "P1", "loaddata.csv")
    from PIL import Image

    Image.fromarray(np.zeros((8, 10), np.uint8)).save(tmp_path / "d.png")
    with pytest.raises(
        ImageError,
        match=r"line 5: \S+d.png is uint8 but \S+a.tif \(line 2\) of plate P1 is uint16; "
        r"8-bit and 16-bit",
    ):
        check_plate_images([*good, (tmp_path / "d.png", 5)], "P1", "loaddata.csv")


def test_an_8_bit_png_screen_reads(tmp_path):
    spec = small_spec(weeks=1, image_format="png", plate_format="96", dmso_wells_per_plate=2)
    out = spec.write(tmp_path / "png")
    metadata = read(out)
    path = Path(metadata["source_AGP"].iloc[0])
    assert (
        path.suffix == ".png"
        and np.asarray(__import__("PIL.Image").Image.open(path)).dtype == np.uint8
    )
    assert set(metadata["well"]) <= {f"{r}{c:02d}" for r in "ABCDEFGH" for c in range(1, 13)}


def test_config_errors_name_what_is_missing(tmp_path):
    with pytest.raises(ScreenError, match="needs data.treatments, data.moas"):
        get_dataset("loaddata", {"loaddata": str(tmp_path / "l.csv")})
    with pytest.raises(ScreenError, match="must be .csv, .csv.gz or .parquet"):
        get_dataset(
            "loaddata",
            {"loaddata": "l.csv", "treatments": "map.xlsx", "moas": "m.csv", "channels": ["DNA"]},
        )
    with pytest.raises(ScreenError, match="does not exist; fix the path"):
        get_dataset(
            "loaddata",
            {"loaddata": str(tmp_path / "l.csv"), "treatments": "t.csv", "moas": "m.csv"},
        )


def bbbc021_as_loaddata(raw: Path, out: Path) -> Path:
    """BBBC021's three metadata CSVs re-expressed as a LoadData CSV, a plate map and a MoA table."""
    image = pd.read_csv(raw / "BBBC021_v1_image.csv", dtype=str)
    loaddata = pd.DataFrame({"ImageNumber": image["ImageNumber"]})
    for channel in ("DAPI", "Tubulin", "Actin"):
        loaddata[f"Image_FileName_{channel}"] = image[f"Image_FileName_{channel}"]
        loaddata[f"Image_PathName_{channel}"] = (
            image[f"Image_PathName_{channel}"].str.split("/").str[-1]
        )
    loaddata["Metadata_Plate"] = image["Image_Metadata_Plate_DAPI"]
    loaddata["Metadata_Well"] = image["Image_Metadata_Well_DAPI"]
    loaddata["Metadata_Site"] = image["Image_FileName_DAPI"].str.extract(r"_s(\d+)_w")[0]
    loaddata["Metadata_Week"] = image["Image_Metadata_Plate_DAPI"].str.split("_").str[0]
    loaddata["Metadata_CellLine"] = "MCF-7"
    loaddata["Metadata_Replicate"] = image["Replicate"]
    out.mkdir(parents=True)
    loaddata.to_csv(out / "loaddata.csv", index=False)
    platemap = image[
        [
            "Image_Metadata_Plate_DAPI",
            "Image_Metadata_Well_DAPI",
            "Image_Metadata_Compound",
            "Image_Metadata_Concentration",
        ]
    ].drop_duplicates()
    platemap.columns = [
        "Metadata_Plate",
        "Metadata_Well",
        "Metadata_Compound",
        "Metadata_Concentration",
    ]
    platemap.to_csv(out / "platemap.csv", index=False)
    moa = pd.read_csv(raw / "BBBC021_v1_moa.csv", dtype=str)
    moa.columns = ["Metadata_Compound", "Metadata_Concentration", "Metadata_MoA"]
    moa.to_csv(out / "moas.csv", index=False)
    return out


def test_bbbc021_metadata_as_a_loaddata_csv_gives_the_same_tensors(tiny_raw, tmp_path):
    from cellmoa.preprocess.jobs import build_tensors
    from cellmoa.preprocess.settings import TensorSettings

    spec, raw = tiny_raw
    tables = bbbc021_as_loaddata(raw, tmp_path / "tables")
    screen = get_dataset(
        "loaddata",
        {
            "loaddata": str(tables / "loaddata.csv"),
            "treatments": str(tables / "platemap.csv"),
            "moas": str(tables / "moas.csv"),
            "batch_column": "Metadata_Week",
            "image_root": str(raw),
        },
    )
    assert screen.channels == BBBC021.channels
    folder = tmp_path / "loaddata"
    folder.mkdir()
    for name, source in screen.metadata_sources("").items():
        shutil.copy(source, folder / name)
    for plate in spec.plates():
        (folder / plate).symlink_to(raw / plate)
    expected = BBBC021().read_metadata(raw)
    got = screen.read_metadata(folder)
    columns = BBBC021().required_columns()
    pd.testing.assert_frame_equal(got[columns], expected[columns], check_dtype=False)
    assert all(Path(s).is_file() for s in got["source_DAPI"])
    a = build_tensors(BBBC021(), raw, tmp_path / "bbbc021", spec.plates(), unannotated=True)
    # the same settings as the BBBC021 run: its paper geometry (a screen's grid follows the field
    # size)
    settings = TensorSettings.from_config({"crops": {"rows": 2, "cols": 2}}, screen)
    b = build_tensors(
        screen, folder, tmp_path / "screen", spec.plates(), settings=settings, unannotated=True
    )
    with h5py.File(a) as fa, h5py.File(b) as fb:
        assert fa["images"].shape == fb["images"].shape and fa["images"].shape[0] > 0
        np.testing.assert_array_equal(fa["images"][:], fb["images"][:])
        assert sorted(fa["metadata"]) == sorted(fb["metadata"])
        for key in fa["metadata"]:
            np.testing.assert_array_equal(
                fa["metadata"][key][:], fb["metadata"][key][:], err_msg=key
            )
        assert list(fa.attrs["channels"]) == list(fb.attrs["channels"])


def test_the_crop_grid_follows_the_field_size_unless_set():
    from cellmoa.preprocess.crops import CropGeometry
    from cellmoa.preprocess.settings import TensorSettings

    auto = TensorSettings.from_config({}, get_dataset("loaddata")).crops
    assert (auto.rows, auto.cols) == (None, None)
    assert [
        (g.rows, g.cols)
        for g in map(auto.for_field, [(1080, 1080), (2160, 2160), (1024, 1280), (160, 200)])
    ] == [(2, 2), (4, 3), (2, 2), (1, 1)]
    assert auto.crop_shape((2160, 2160)) == (540, 720)
    assert len(auto.cut(np.zeros((1080, 1080, 5), np.float32))) == 4
    fixed = TensorSettings.from_config({"crops": {"rows": 3}}, get_dataset("loaddata")).crops
    assert (fixed.for_field((1080, 1080)).rows, fixed.for_field((1080, 1080)).cols) == (3, 2)
    assert CropGeometry(2, 2).for_field((10, 10)) == CropGeometry(2, 2)
    # the published datasets keep their paper geometry
    assert (
        TensorSettings.from_config({}, BBBC021()).crops.rows,
        TensorSettings.from_config({}, BBBC021()).crops.cols,
    ) == (2, 2)
