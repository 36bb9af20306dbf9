"""BBBC014 (NF-kB translocation, two cell lines) through the same adapters and pipeline as BBBC021:
the platemap parser, the paper's labels and folds, the synthesizer's layout and signal, BMP
reading, per-cell-line normalisation, the zero input channel, the sigmoid head, and an end-to-end
Snakemake run on synthesized BBBC014 data."""

from __future__ import annotations

import re
import zipfile

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cellmoa.data.datasets import BBBC014, BBBC021, get_dataset
from cellmoa.data.datasets.bbbc014 import (
    NOT_TRANSLOCATED,
    PLATE,
    PLATEMAP,
    TRANSLOCATED,
    label_concentrations,
    parse_platemap,
)
from cellmoa.data.synthetic import spec_for
from cellmoa.data.synthetic.bbbc014 import BBBC014Spec, platemap_text
from cellmoa.preprocess.crops import CropGeometry
from cellmoa.preprocess.illumination import IlluminationParams
from cellmoa.preprocess.images import ImageError, read_image
from cellmoa.preprocess.jobs import load_field, plate_illumination, write_plate_tensors
from cellmoa.preprocess.plates import PlateFields
from cellmoa.preprocess.settings import TensorSettings
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.train.folds import select_fold
from cellmoa.train.pipeline import make_dataset
from cellmoa.train.settings import TrainSettings
from tests.helpers.paths import ROOT
from tests.helpers.smk import planned_jobs, snakemake, write_config

DS = BBBC014()
#: the real plate: 12 concentrations from 1e-7 M (column 1) to 1e-13 M (column 12)
REAL_ORDER = [10.0**e for e in np.linspace(-7, -13, 12)]


@pytest.fixture(scope="module")
def bbbc014_raw(tmp_path_factory):
    spec = BBBC014Spec(
        seed=2, image_height=64, image_width=85, nucleus_radius=2.5, cells_per_field=25
    )
    return spec, spec.write(tmp_path_factory.mktemp("bbbc014") / "raw", archives=False)


@pytest.mark.unit
def test_platemap_power_form_with_header():
    molar = parse_platemap(platemap_text(REAL_ORDER))
    assert len(molar) == 96
    np.testing.assert_allclose(molar[:12], REAL_ORDER, rtol=1e-3)
    np.testing.assert_allclose(molar[84:], REAL_ORDER, rtol=1e-3)


@pytest.mark.unit
def test_platemap_plain_numbers_without_header_and_lf_lines():
    text = "\n".join(f"{c:.3e}" for _ in range(8) for c in REAL_ORDER)
    np.testing.assert_allclose(parse_platemap(text), REAL_ORDER * 8, rtol=1e-3)


@pytest.mark.unit
def test_platemap_with_the_wrong_number_of_wells_names_the_file():
    text = "header\n" + "\n".join(["10^-7"] * 95)
    with pytest.raises(ValueError, match=r"platemap_all\.txt.*95 wells"):
        parse_platemap(text, "x/BBBC014_v1_platemap_all.txt")


@pytest.mark.unit
def test_platemap_with_an_unreadable_line_names_it():
    lines = ["header"] + ["10^-7"] * 96
    lines[5] = "ten to the minus seven"
    with pytest.raises(ValueError, match="line 6 reads 'ten to the minus seven'"):
        parse_platemap("\n".join(lines))


@pytest.mark.unit
def test_labels_are_the_papers_four_highest_and_four_lowest():
    labels = label_concentrations(REAL_ORDER)
    by_column = [labels[c] for c in REAL_ORDER]
    # Kensert et al.'s code: columns 1-4 (highest) = 1, columns 9-12 (lowest) = 0, 5-8 dropped
    assert by_column == [TRANSLOCATED] * 4 + [""] * 4 + [NOT_TRANSLOCATED] * 4
    with pytest.raises(ValueError, match="at least 8 distinct"):
        label_concentrations(REAL_ORDER[:7])


@pytest.mark.unit
def test_metadata_table_has_two_cell_lines_of_four_replicates(bbbc014_raw):
    _, raw = bbbc014_raw
    meta = DS.read_metadata(raw)
    assert len(meta) == 96
    assert meta.groupby("cell_line")["well"].apply(
        lambda w: sorted({x[0] for x in w})
    ).to_dict() == {"A549": list("EFGH"), "MCF7": list("ABCD")}
    assert set(meta["replicate"]) == {1, 2, 3, 4}
    labelled = DS.labelled(meta)
    assert len(labelled) == 64 and set(labelled["moa"]) == {TRANSLOCATED, NOT_TRANSLOCATED}
    assert len(DS.reference(meta)) == 96 and DS.controls(meta).empty  # no controls: all fields
    row = meta.set_index("well").loc["E03"]
    assert row["file_NFkB"] == f"{PLATE}/Channel 1-51-E-03-00.Bmp"
    assert row["file_DAPI"] == f"{PLATE}/Channel 2-51-E-03-00.Bmp"
    assert row["concentration"] == pytest.approx(1e6 * REAL_ORDER[2], rel=1e-6)  # uM


@pytest.mark.unit
def test_missing_platemap_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_metadata"):
        DS.read_metadata(tmp_path)


@pytest.mark.unit
def test_synthesized_archive_has_bbbc014s_layout(tmp_path):
    spec = BBBC014Spec(image_height=48, image_width=64, cells_per_field=10)
    out = spec.write(tmp_path)
    assert (out / PLATEMAP).read_bytes().startswith(b"TNF-alpha")
    with zipfile.ZipFile(out / "BBBC014_v1_images.zip") as archive:
        names = archive.namelist()
        assert len(names) == 192
        pattern = re.compile(r"^BBBC014_v1_images/Channel [12]-\d\d-[A-H]-\d\d-00\.Bmp$")
        assert all(pattern.match(n) for n in names), names[:3]
        with archive.open(names[0]) as fh:
            image = Image.open(fh)
            assert image.format == "BMP" and image.mode == "L" and image.size == (64, 48)
    expected = DS.plate_files(DS.read_metadata(out), PLATE)
    assert sorted(f"{PLATE}/{n}" for n in expected) == sorted(names)


@pytest.mark.unit
def test_synthetic_spec_rejects_unknown_keys():
    with pytest.raises(ValueError, match="moas"):
        spec_for("bbbc014", {"moas": {}})
    assert spec_for("bbbc014", {"seed": 4}).plates() == [PLATE]


@pytest.mark.unit
def test_reporter_moves_into_the_nucleus_with_the_dose(bbbc014_raw):
    _, raw = bbbc014_raw
    meta = DS.read_metadata(raw)
    ratios = {}
    for _, row in meta.iterrows():
        dapi = read_image(raw / row["file_DAPI"])
        nfkb = read_image(raw / row["file_NFkB"])
        nucleus = dapi > np.percentile(dapi, 85)
        ratios[row["well"]] = nfkb[nucleus].mean() / nfkb[~nucleus].mean()
    meta["ratio"] = meta["well"].map(ratios)
    for line, rows in meta.groupby("cell_line"):
        high = rows[rows["moa"] == TRANSLOCATED]["ratio"]
        low = rows[rows["moa"] == NOT_TRANSLOCATED]["ratio"]
        assert high.min() > low.max(), line


@pytest.mark.unit
def test_bmp_reading_checks_the_file(tmp_path):
    grey = np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) % 256
    Image.fromarray(grey.astype(np.uint8), mode="L").save(tmp_path / "g.Bmp")
    image = read_image(tmp_path / "g.Bmp", (48, 64))
    assert image.dtype == np.float32 and np.array_equal(image, grey)
    with pytest.raises(ImageError, match=r"g\.Bmp: image is 48 x 64, expected 64 x 48"):
        read_image(tmp_path / "g.Bmp", (64, 48))
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 0] = 200
    Image.fromarray(colour, mode="RGB").save(tmp_path / "c.Bmp")
    with pytest.raises(ImageError, match=r"c\.Bmp: expected a grey-level image"):
        read_image(tmp_path / "c.Bmp")
    (tmp_path / "t.Bmp").write_bytes((tmp_path / "g.Bmp").read_bytes()[:40])
    with pytest.raises(ImageError, match=r"t\.Bmp: cannot be read"):
        read_image(tmp_path / "t.Bmp")


@pytest.mark.unit
def test_illumination_function_matches_the_known_field(bbbc014_raw):
    _, raw = bbbc014_raw
    meta = DS.read_metadata(raw)
    truth = np.load(raw / "illumination_truth.npz")
    functions = plate_illumination(meta, raw, DS.channels, IlluminationParams())
    # one plate of 96 small fields (BBBC021-like plates have ~280 larger ones, r >= 0.98 there):
    # the mean image is noisier, measured r 0.92-0.95
    for channel, function in functions.items():
        r = np.corrcoef(function.ravel(), truth[f"{PLATE}/{channel}"].ravel())[0, 1]
        assert r >= 0.9, (channel, r)


@pytest.mark.unit
def test_tensors_are_standardised_per_cell_line_resized_and_cut(bbbc014_raw, tmp_path):
    _, raw = bbbc014_raw
    meta = DS.read_metadata(raw)
    flat = {c: np.ones((64, 85), np.float32) for c in DS.channels}
    out = tmp_path / f"{PLATE}.h5"
    n = write_plate_tensors(
        out,
        PlateFields(PLATE, DS.labelled(meta), DS.reference(meta), raw, DS.channels, "all fields"),
        flat,
        TensorSettings(crops=CropGeometry(4, 4, (64, 64))),
    )
    assert n == 64 * 16
    table = read_crop_metadata(out)
    with h5py.File(out) as f:
        assert f["images"].shape == (1024, 16, 16, 2)
        assert list(f.attrs["channels"]) == ["NFkB", "DAPI"]
        groups = list(f.attrs["reference_groups"])
        means, stds = f.attrs["reference_mean"], f.attrs["reference_std"]
        first = f["images"][0].astype(np.float64)
    assert groups == ["A549", "MCF7"]
    # the statistics of each cell line equal a direct numpy computation over all its fields
    for g, line in enumerate(groups):
        fields = np.stack(
            [
                load_field(r, raw, DS.channels, flat)
                for _, r in meta[meta.cell_line == line].iterrows()
            ]
        ).astype(np.float64)
        np.testing.assert_allclose(means[g], fields.mean(axis=(0, 1, 2)), rtol=1e-4)
        np.testing.assert_allclose(stds[g], fields.std(axis=(0, 1, 2)), rtol=1e-4)
    # crop 0 of the first field: its top-left 16 x 16 of the field z-scored and resized to 64 x 64
    row = meta.set_index("image_number").loc[table.loc[0, "image_number"]]
    from skimage.transform import resize

    g = groups.index(row["cell_line"])
    z = (load_field(row, raw, DS.channels, flat) - means[g]) / stds[g]
    expected = resize(
        z, (64, 64, 2), order=1, mode="edge", anti_aliasing=True, preserve_range=True
    )[:16, :16]
    np.testing.assert_allclose(first, expected, atol=0.02)
    assert (table.groupby("image_number")["crop"].apply(sorted) == [list(range(16))] * 64).all()


@pytest.mark.unit
def test_a_fold_holds_out_a_cell_line(bbbc014_raw, tmp_path):
    from cellmoa.preprocess.jobs import build_tensors

    _, raw = bbbc014_raw
    path = build_tensors(
        DS, raw, tmp_path, settings=TensorSettings.from_config({"crops": {"resize": [64, 64]}}, DS)
    )
    meta = read_crop_metadata(path)
    fold = select_fold(meta, "A549", "cell_line")
    assert set(meta.iloc[fold.test_index]["cell_line"]) == {"A549"}
    assert set(meta.iloc[fold.train_index]["cell_line"]) == {"MCF7"}
    assert fold.classes == [NOT_TRANSLOCATED, TRANSLOCATED]
    assert fold.summary(meta)["train_cell_lines"] == ["MCF7"]
    with pytest.raises(ValueError, match="fold cell line 'HeLa' has no crops"):
        select_fold(meta, "HeLa", "cell_line")


@pytest.mark.unit
def test_the_dataset_refuses_fold_schemes_it_has_no_use_for():
    with pytest.raises(ValueError, match="'nsc' does not apply to bbbc014"):
        DS.fold_column("nsc")
    with pytest.raises(ValueError, match="'cell_line' does not apply to bbbc021"):
        BBBC021().fold_column("cell_line")
    assert get_dataset("BBBC014").fold_column("cell_line") == "cell_line"


@pytest.mark.unit
def test_the_network_sees_a_zero_channel_then_nfkb_and_dapi(bbbc014_raw, tmp_path):
    from cellmoa.preprocess.jobs import build_tensors

    _, raw = bbbc014_raw
    path = build_tensors(
        DS, raw, tmp_path, settings=TensorSettings.from_config({"crops": {"resize": [64, 64]}}, DS)
    )
    settings = TrainSettings(
        network="InceptionV3",
        input_size=16,
        batch_size=4,
        augment=False,
        input_channels=[None, "NFkB", "DAPI"],
    )
    batch = next(iter(make_dataset(path, np.arange(4), None, settings, training=False))).numpy()
    with h5py.File(path) as f:
        stored = f["images"][0].astype(np.float32)  # 16 x 16 crops: no resizing at input_size 16
    # InceptionV3's preprocess_input maps pixels p to p / 127.5 - 1: black is -1
    assert batch.shape == (4, 16, 16, 3)
    np.testing.assert_allclose(batch[0, ..., 0], -1.0)
    pixels = np.clip(127.5 + settings.pixel_scale * stored, 0, 255) / 127.5 - 1.0
    np.testing.assert_allclose(batch[0, ..., 1:], pixels, atol=1e-5)
    with pytest.raises(ValueError, match="Actin are not in the tensors' channels NFkB, DAPI"):
        make_dataset(
            path,
            np.arange(4),
            None,
            TrainSettings(input_channels=[None, "NFkB", "Actin"]),
            training=False,
        )


@pytest.mark.unit
def test_sigmoid_head_has_one_unit_and_two_classes_only():
    from cellmoa.train import models

    model = models.build_classifier("ResNet50", 2, 32, None, head="sigmoid")
    assert model.output_shape == (None, 1)
    assert models.embedding_model(model).output_shape == (None, 2048)
    with pytest.raises(ValueError, match="two classes"):
        models.build_classifier("ResNet50", 3, 32, None, head="sigmoid")


@pytest.mark.workflow
def test_real_bbbc014_config_plans_six_gpu_training_jobs(tmp_path):
    proc = snakemake(
        "-n",
        "--cores",
        "8",
        "--directory",
        str(tmp_path),
        f"--configfile={ROOT / 'config/bbbc014.yaml'}",
    )
    jobs = planned_jobs(proc.stdout)
    train = [j for j in jobs if j["rule"] == "train"]
    assert len(train) == 6 and all(j["resources"].get("gpu") == "1" for j in train)
    assert {j["wildcards"]["fold"] for j in train} == {"mcf7", "a549"}
    assert [j["wildcards"]["plate"] for j in jobs if j["rule"] == "download_plate"] == [PLATE]
    assert not [j for j in jobs if j["rule"] == "nearest_neighbours"]


@pytest.mark.workflow
def test_a_compound_scheme_on_bbbc014_is_refused_naming_it(tmp_path):
    import yaml

    config = yaml.safe_load((ROOT / "config" / "demo_bbbc014.yaml").read_text())
    config["training"]["folds"] = {"scheme": "nsc", "compounds": ["TNF-alpha"]}
    proc = snakemake(
        "-n",
        "--directory",
        str(tmp_path),
        "--configfile",
        str(write_config(tmp_path / "c.yaml", config)),
        check=False,
    )
    assert proc.returncode != 0
    assert "fold scheme 'nsc' does not apply to bbbc014" in proc.stdout + proc.stderr


#: one network (ResNet50 at 32 px, one epoch), the paper's two cell-line folds, tiny fields
E2E_BBBC014 = {
    "dataset": "bbbc014",
    "data": {"base_url": "resources/synthetic/bbbc014-e2e"},
    "synthetic": {
        "seed": 5,
        "image_height": 64,
        "image_width": 85,
        "nucleus_radius": 2.5,
        "cells_per_field": 25,
    },
    "preprocessing": {"crops": {"rows": 2, "cols": 2, "resize": [64, 64]}},
    "training": {
        "networks": ["ResNet50"],
        "folds": {"scheme": "cell_line", "held_out": ["MCF7", "A549"]},
        "weights": "none",
        "input_size": 32,
        "epochs": 1,
        "batch_size": 8,
        "optimizer": "adam",
        "learning_rate": 0.001,
    },
}


@pytest.mark.e2e
def test_end_to_end_on_synthesized_bbbc014(tmp_path):
    config = write_config(tmp_path / "config.yaml", E2E_BBBC014)
    snakemake("--cores", "2", "--directory", str(tmp_path), f"--configfile={config}")
    results = tmp_path / "results"
    with h5py.File(results / "tensors" / "all.h5") as f:
        assert f["images"].shape == (64 * 4, 32, 32, 2)
        assert list(f.attrs["channels"]) == ["NFkB", "DAPI"]
    predictions = {}
    for fold, line, other in (("mcf7", "MCF7", "A549"), ("a549", "A549", "MCF7")):
        info = pd.read_json(results / "models/ResNet50" / fold / "fold.json", typ="series")
        assert info["held_out"] == line and info["train_cell_lines"] == [other]
        assert info["settings"]["head"] == "sigmoid"
        pred = pd.read_csv(results / "models/ResNet50" / fold / "predictions.tsv", sep="\t")
        assert set(pred["Metadata_CellLine"]) == {line} and len(pred) == 32 * 4
        np.testing.assert_allclose(
            pred["prob_not translocated"] + pred["prob_translocated"], 1.0, atol=1e-6
        )
        predictions[line] = pred
    by_fold = pd.read_csv(results / "tables" / "accuracy_by_fold_ResNet50.tsv", sep="\t").set_index(
        "Metadata_Fold"
    )
    assert list(by_fold.index) == ["A549", "MCF7", "all"]
    # recompute crop- and well-level accuracy independently of cellmoa.evaluate.accuracy
    for line, pred in predictions.items():
        crop = np.mean(pred["predicted_moa"] == pred["Metadata_MoA"])
        wells = (
            pred.groupby(["Metadata_Well", "Metadata_MoA"])["prob_translocated"]
            .median()
            .reset_index()
        )
        well = np.mean(
            np.where(wells["prob_translocated"] > 0.5, TRANSLOCATED, NOT_TRANSLOCATED)
            == wells["Metadata_MoA"]
        )
        assert by_fold.loc[line, "n_wells"] == 32 and by_fold.loc[line, "n_crops"] == 128
        assert by_fold.loc[line, "crop_accuracy"] == pytest.approx(crop)
        assert by_fold.loc[line, "well_accuracy"] == pytest.approx(well)
        assert by_fold.loc[line, "n_treatments"] == 8
    summary = pd.read_csv(results / "tables" / "summary.tsv", sep="\t")
    assert (
        summary.loc[0, "Metadata_Dataset"] == "bbbc014"
        and summary.loc[0, "Metadata_FoldScheme"] == "cell_line"
    )
    assert summary.loc[0, "n_treatments"] == 16 and summary.loc[0, "chance_accuracy"] == 0.5
    assert not (results / "tables" / "nearest_neighbours_ResNet50.tsv").exists()
