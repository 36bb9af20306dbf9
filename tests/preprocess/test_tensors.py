import shutil

import h5py
import numpy as np
import pytest
import tifffile

from cellmoa.data.datasets import BBBC021
from cellmoa.data.synthetic.bbbc021 import synthesize
from cellmoa.preprocess.crops import EmptyCropFilter, crop_grid
from cellmoa.preprocess.illumination import (
    IlluminationParams,
    read_illumination,
    read_reference_statistics,
    write_illumination,
)
from cellmoa.preprocess.images import BadImages, ImageError, read_image
from cellmoa.preprocess.jobs import illumination_pass, plate_illumination, write_plate_tensors
from cellmoa.preprocess.normalization import Normalization
from cellmoa.preprocess.plates import PlateFields
from cellmoa.preprocess.settings import TensorSettings
from cellmoa.preprocess.tensors import assemble, read_crop_metadata
from tests.helpers.specs import tiny_spec

pytestmark = pytest.mark.unit

DS = BBBC021()


@pytest.fixture()
def marked(tmp_path):
    """A BBBC021-layout dataset whose every labelled field carries a marker: quadrant q of the
    field with image number n holds the constant value 16 * (100 + 4 n + q)."""
    spec = tiny_spec(weeks=1, plates_per_week=2, image_height=32, image_width=48)
    raw = synthesize(spec, tmp_path / "raw", archives=False)
    meta = DS.read_metadata(raw)
    rng = np.random.default_rng(0)
    for _, row in meta.iterrows():
        for channel in DS.channels:
            if row["moa"] in ("", "DMSO"):
                image = (16 * rng.integers(50, 150, (32, 48))).astype(np.uint16)
            else:
                image = np.zeros((32, 48), np.uint16)
                for q, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
                    image[r * 16 : (r + 1) * 16, c * 24 : (c + 1) * 24] = 16 * (
                        100 + 4 * row["image_number"] + q
                    )
            tifffile.imwrite(raw / row[f"file_{channel}"], image)
    return spec, raw, meta


def _plate_tensors(raw, meta, plate, out):
    rows = meta[meta.plate == plate]
    flat = {c: np.ones((32, 48), np.float32) for c in DS.channels}
    write_plate_tensors(
        out, PlateFields(plate, DS.labelled(rows), DS.controls(rows), raw, DS.channels), flat
    )
    return out


def test_rows_and_metadata_stay_aligned(marked, tmp_path):
    spec, raw, meta = marked
    plate = spec.plates()[0]
    path = _plate_tensors(raw, meta, plate, tmp_path / f"{plate}.h5")
    table = read_crop_metadata(path)
    with h5py.File(path) as f:
        images = f["images"][()].astype(np.float64)
        assert list(f.attrs["reference_groups"]) == ["MCF-7"]
        mean, std = f.attrs["reference_mean"][0], f.attrs["reference_std"][0]
        assert f["images"].chunks == (1, 16, 24, 3)
        assert list(f.attrs["channels"]) == list(DS.channels)
    assert len(table) == len(images) == 4 * len(DS.labelled(meta[meta.plate == plate]))
    values = images * std + mean  # undo the DMSO z-score
    for i, row in table.iterrows():
        expected = 16 * (100 + 4 * row["image_number"] + row["crop"])
        np.testing.assert_allclose(values[i], expected, rtol=2e-3)
    source = meta.set_index("image_number")
    for _, row in table.iterrows():
        assert source.loc[row["image_number"], "well"] == row["well"]
        assert source.loc[row["image_number"], "compound"] == row["compound"]


def test_assembled_virtual_dataset_reads_like_the_plates(marked, tmp_path):
    spec, raw, meta = marked
    folder = tmp_path / "tensors"
    paths = [_plate_tensors(raw, meta, p, folder / f"{p}.h5") for p in spec.plates()]
    total = assemble(paths, folder / "all.h5")
    # moving the folder keeps the virtual dataset readable (sources referenced by file name)
    moved = shutil.move(str(folder), str(tmp_path / "moved"))
    with h5py.File(f"{moved}/all.h5") as f:
        assert f["images"].is_virtual
        combined = f["images"][()]
    parts = []
    for p in spec.plates():
        with h5py.File(f"{moved}/{p}.h5") as f:
            parts.append(f["images"][()])
    np.testing.assert_array_equal(combined, np.concatenate(parts))
    assert total == len(combined)
    table = read_crop_metadata(f"{moved}/all.h5")
    assert list(table["plate"].unique()) == spec.plates()
    assert len(table) == total


def test_crop_grid_is_row_major():
    field = np.arange(4 * 6).reshape(4, 6, 1)
    crops = crop_grid(field, 2, 2)
    assert [c[0, 0, 0] for c in crops] == [0, 3, 12, 15]


def test_illumination_round_trip(tmp_path):
    functions = {"DAPI": np.full((4, 5), 2.0, np.float32), "Actin": np.ones((4, 5), np.float32)}
    write_illumination(tmp_path / "f.h5", "P1", functions, IlluminationParams())
    back = read_illumination(tmp_path / "f.h5")
    assert list(back) == ["DAPI", "Actin"]
    np.testing.assert_array_equal(back["DAPI"], functions["DAPI"])


def test_missing_image_is_named(marked):
    spec, raw, meta = marked
    rows = meta[meta.plate == spec.plates()[0]]
    victim = raw / rows.iloc[0]["file_Tubulin"]
    victim.unlink()
    with pytest.raises(ImageError, match=victim.name + ": image listed in the metadata is missing"):
        plate_illumination(rows, raw, DS.channels, IlluminationParams())


def test_corrupt_image_is_named(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageError, match="bad.tif: cannot be read as a TIFF"):
        read_image(bad)


def test_wrong_size_is_named(marked):
    spec, raw, meta = marked
    rows = meta[meta.plate == spec.plates()[0]]
    victim = raw / rows.iloc[2]["file_Actin"]
    tifffile.imwrite(victim, np.zeros((10, 10), np.uint16))
    with pytest.raises(ImageError, match=victim.name + r": image is 10 x 10, expected 32 x 48"):
        plate_illumination(rows, raw, DS.channels, IlluminationParams())


def test_no_partial_file_after_failure(marked, tmp_path):
    spec, raw, meta = marked
    plate = spec.plates()[0]
    rows = meta[meta.plate == plate]
    labelled = DS.labelled(rows)
    (raw / labelled.iloc[-1]["file_DAPI"]).unlink()
    flat = {c: np.ones((32, 48), np.float32) for c in DS.channels}
    out = tmp_path / "out" / "p.h5"
    with pytest.raises(ImageError):
        write_plate_tensors(
            out, PlateFields(plate, labelled, DS.controls(rows), raw, DS.channels), flat
        )
    assert not out.exists()


def _small_plate(tmp_path):
    """One small synthetic plate: (raw folder, plate, its metadata rows, illumination functions)."""
    spec = tiny_spec(weeks=1, plates_per_week=1, image_height=40, image_width=48)
    raw = synthesize(spec, tmp_path / "raw", archives=False)
    meta = DS.read_metadata(raw)
    plate = spec.plates()[0]
    rows = meta[meta.plate == plate]
    return raw, plate, rows, plate_illumination(rows, raw, DS.channels, IlluminationParams())


def _expected_crops(rows, field, scale=lambda z: z):
    """The tensors of a small plate computed with plain numpy: each labelled ``field(row)``
    z-scored by the DMSO fields' statistics, ``scale``d and cut into 2 x 2 crops of 20 x 24.
    Returns (crops, DMSO mean, DMSO std)."""
    dmso = np.stack([field(r) for _, r in DS.controls(rows).iterrows()])
    mu, sd = dmso.mean(axis=(0, 1, 2)), dmso.std(axis=(0, 1, 2))
    expected = []
    for _, well_rows in DS.labelled(rows).groupby("well", sort=False):
        for _, r in well_rows.iterrows():
            u = scale((field(r) - mu) / sd)
            expected += [u[:20, :24], u[:20, 24:], u[20:, :24], u[20:, 24:]]
    return np.stack(expected), mu, sd


def _corrected(raw, row, functions):
    """A field illumination-corrected with plain numpy, (H, W, C) float64."""
    return np.stack(
        [
            tifffile.imread(raw / row[f"file_{c}"]).astype(np.float64) / functions[c]
            for c in DS.channels
        ],
        -1,
    )


def test_paper_normalisation_equals_a_direct_numpy_computation(tmp_path):
    """Illumination correction, Anscombe, per-plate DMSO z-score and 2 x 2 crops, recomputed with
    plain numpy on the whole (small) plate."""
    raw, plate, rows, functions = _small_plate(tmp_path)
    out = tmp_path / "p.h5"
    write_plate_tensors(
        out,
        PlateFields(plate, DS.labelled(rows), DS.controls(rows), raw, DS.channels),
        functions,
        TensorSettings(normalization=Normalization(anscombe=True)),
    )

    def field(row):
        return 2 * np.sqrt(_corrected(raw, row, functions) + 3 / 8)

    expected, mu, sd = _expected_crops(rows, field)
    with h5py.File(out) as f:
        got = f["images"][()].astype(np.float64)
        assert bool(f.attrs["anscombe"])
    np.testing.assert_allclose(got, expected, atol=2e-2, rtol=2e-3)


def test_single_read_normalisation_equals_a_direct_numpy_computation(tmp_path):
    """Without Anscombe the DMSO statistics come from the illumination pass's running sums (no
    second read) and each field is corrected and z-scored in one multiply-add: the tensors equal a
    plain numpy computation on the whole plate, and the two-pass path."""
    raw, plate, rows, _ = _small_plate(tmp_path)
    functions, stats = illumination_pass(
        rows, raw, DS.channels, IlluminationParams(), reference=DS.reference(rows)
    )
    assert (
        functions.keys() == plate_illumination(rows, raw, DS.channels, IlluminationParams()).keys()
    )
    write_illumination(tmp_path / "f.h5", plate, functions, IlluminationParams(), stats)
    stats = read_reference_statistics(tmp_path / "f.h5")
    assert list(stats) == ["MCF-7"]

    def field(row):
        return _corrected(raw, row, functions)

    expected, mu, sd = _expected_crops(rows, field)
    np.testing.assert_allclose(stats["MCF-7"][0], mu, rtol=1e-5)
    np.testing.assert_allclose(stats["MCF-7"][1], sd, rtol=1e-5)
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    write_plate_tensors(
        one,
        PlateFields(plate, DS.labelled(rows), DS.reference(rows), raw, DS.channels),
        functions,
        reference_stats=stats,
    )
    write_plate_tensors(
        two, PlateFields(plate, DS.labelled(rows), DS.reference(rows), raw, DS.channels), functions
    )
    with h5py.File(one) as f, h5py.File(two) as g:
        np.testing.assert_allclose(
            f["images"][()].astype(np.float64), expected, atol=1e-2, rtol=2e-3
        )
        # the same to within one float16 step (the arithmetic differs in order only)
        np.testing.assert_allclose(
            f["images"][()].astype(np.float32),
            g["images"][()].astype(np.float32),
            atol=4e-3,
            rtol=1e-3,
        )
        np.testing.assert_allclose(f.attrs["reference_std"], g.attrs["reference_std"], rtol=1e-5)


def test_uint8_storage_is_the_papers_min_max_scaling_and_feeds_training_as_pixels(tmp_path):
    from cellmoa.train.pipeline import make_dataset
    from cellmoa.train.settings import TrainSettings

    raw, plate, rows, functions = _small_plate(tmp_path)
    folder = tmp_path / "t"
    folder.mkdir()
    out = folder / f"{plate}.h5"
    write_plate_tensors(
        out,
        PlateFields(plate, DS.labelled(rows), DS.controls(rows), raw, DS.channels),
        functions,
        TensorSettings(normalization=Normalization(stored_dtype="uint8")),
    )

    def field(row):
        return _corrected(raw, row, functions)

    expected, _, _ = _expected_crops(
        rows, field, lambda z: np.rint((z - z.min()) / (z.max() - z.min()) * 255)
    )
    with h5py.File(out) as f:
        got = f["images"][()]
        assert got.dtype == np.uint8 and f.attrs["stored_dtype"] == "uint8"
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert got.max() == 255 and got.min() == 0
    n = assemble([out], folder / "all.h5")
    settings = TrainSettings(network="InceptionV3", input_size=24, batch_size=n, augment=False)
    with h5py.File(folder / "all.h5") as f:
        assert f["images"].dtype == np.uint8
        crops = np.stack([f["images"][i] for i in range(n)]).astype(np.float32)
    resized = make_dataset(folder / "all.h5", np.arange(n), None, settings, training=False)
    batch = next(iter(resized)).numpy()  # 20 x 24 crops resized to 24 x 24: compare the means
    np.testing.assert_allclose(
        batch.mean(axis=(1, 2)), (crops / 127.5 - 1).mean(axis=(1, 2)), atol=0.02
    )


def test_bad_images_can_be_skipped_and_reported(marked, tmp_path):
    spec, raw, meta = marked
    plate = spec.plates()[0]
    rows = meta[meta.plate == plate]
    labelled = DS.labelled(rows)
    victim = labelled.iloc[1]
    (raw / victim["file_Actin"]).write_bytes(b"not a tiff")
    flat = {c: np.ones((32, 48), np.float32) for c in DS.channels}
    with pytest.raises(ImageError, match="cannot be read as a TIFF"):
        write_plate_tensors(
            tmp_path / "e.h5",
            PlateFields(plate, labelled, DS.controls(rows), raw, DS.channels),
            flat,
        )
    bad = BadImages(skip=True)
    n = write_plate_tensors(
        tmp_path / "s.h5",
        PlateFields(plate, labelled, DS.controls(rows), raw, DS.channels),
        flat,
        TensorSettings(on_bad_image="skip"),
        bad=bad,
    )
    assert n == 4 * (len(labelled) - 1)
    report = bad.table()
    assert list(report["image_number"]) == [victim["image_number"]]
    assert (
        victim["file_Actin"].split("/")[-1] in report.loc[0, "reason"]
        and report.loc[0, "stage"] == "tensors"
    )
    table = read_crop_metadata(tmp_path / "s.h5")
    assert victim["image_number"] not in set(table["image_number"])


def test_empty_crop_filter(marked, tmp_path):
    spec, raw, meta = marked
    plate = spec.plates()[0]
    rows = meta[meta.plate == plate]
    labelled = DS.labelled(rows)
    # make the top-left quadrant of the first labelled field's DAPI image empty (background level)
    victim = labelled.iloc[0]
    image = tifffile.imread(raw / victim["file_DAPI"])
    image[:16, :24] = 16 * 50
    tifffile.imwrite(raw / victim["file_DAPI"], image)
    flat = {c: np.ones((32, 48), np.float32) for c in DS.channels}
    norm = TensorSettings(empty_crops=EmptyCropFilter(min_fraction=0.5, z=0.0))
    n = write_plate_tensors(
        tmp_path / "f.h5",
        PlateFields(plate, labelled, DS.controls(rows), raw, DS.channels),
        flat,
        norm,
    )
    table = read_crop_metadata(tmp_path / "f.h5")
    assert n == 4 * len(labelled) - 1
    dropped = table[(table.image_number == victim["image_number"])]
    assert sorted(dropped["crop"]) == [1, 2, 3]
    with h5py.File(tmp_path / "f.h5") as f:
        assert f.attrs["empty_crops_dropped"] == 1 and f["images"].shape[0] == n


def test_both_plate_jobs_log_their_progress(marked, caplog):
    """A person watching a job's log sees it move: a line at every tenth of the plate's fields."""
    spec, raw, meta = marked
    plate = spec.plates()[0]
    rows = meta[meta.plate == plate]
    with caplog.at_level("INFO", logger="cellmoa.preprocess.jobs"):
        illumination_pass(rows, raw, DS.channels, IlluminationParams(), prefetch=0)
        _plate_tensors(raw, meta, plate, raw.parent / "progress.h5")
    n_labelled = len(DS.labelled(rows))
    assert f"{plate} illumination: {len(rows)} of {len(rows)} fields (100%)" in caplog.text
    assert f"{plate} tensors: {n_labelled} of {n_labelled} fields (100%)" in caplog.text
    every = -(-len(rows) // 10)  # a line every tenth (rounded up) of the fields, and the last
    assert caplog.text.count(f"{plate} illumination:") == len(rows) // every + (
        len(rows) % every > 0
    )


def test_unannotated_fields_are_kept_flagged_only_when_asked(tmp_path):
    """prediction.unannotated: the fields of compounds without an MoA are stored with annotated = 0
    (never trainable), the labelled ones with 1, the controls with 0; without it they are left
    out."""
    from cellmoa.preprocess.jobs import build_tensors
    from cellmoa.train.folds import trainable, unannotated

    spec = tiny_spec(
        weeks=1,
        plates_per_week=1,
        image_height=32,
        image_width=48,
        unlabelled_compounds=["AZ-U1", "AZ-U2"],
    )
    raw = synthesize(spec, tmp_path / "raw", archives=False)
    settings = TensorSettings.from_config({"control_fields_per_plate": 1}, DS)
    with_them = read_crop_metadata(
        build_tensors(DS, raw, tmp_path / "with", settings=settings, unannotated=True)
    )
    without = read_crop_metadata(build_tensors(DS, raw, tmp_path / "without", settings=settings))
    new = with_them[with_them["compound"].isin(["AZ-U1", "AZ-U2"])]
    assert (
        len(new) > 0
        and (new["annotated"] == 0).all()
        and (new["moa"] == "").all()
        and (new["is_control"] == 0).all()
    )
    assert set(with_them.loc[with_them["annotated"] == 1, "compound"]) == set(spec.compounds)
    assert (with_them.loc[with_them["is_control"] == 1, "annotated"] == 0).all()
    assert not trainable(with_them)[new.index].any() and unannotated(with_them)[new.index].all()
    assert not set(without["compound"]) & {"AZ-U1", "AZ-U2"}
    assert len(without) == len(with_them) - len(new)
    # tensors written before the flag: labelled treatments read as annotated
    path = tmp_path / "without" / "all.h5"
    with h5py.File(path, "a") as f:
        del f["metadata/annotated"]
    old = read_crop_metadata(path)
    assert (old["annotated"] == ((old["moa"] != "") & (old["is_control"] == 0)).astype(int)).all()
