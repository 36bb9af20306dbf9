"""The CellProfiler baseline's parts: measurements (cp-measure), the per-plate jobs (segment,
features) on a synthesized plate, and the well profiles scored as a network's outputs."""

import logging

import numpy as np
import pandas as pd
import pytest

from cellmoa.data.datasets import BBBC021
from cellmoa.data.synthetic.bbbc021 import SyntheticSpec
from cellmoa.data.synthetic.truth import synthetic_field
from cellmoa.features.baseline import crop_profiles, fold_predictions, screen_profiles
from cellmoa.features.jobs import measure_plate, paired_labels
from cellmoa.features.measure import FeatureSettings, measure_objects, unit_scale
from cellmoa.preprocess.jobs import illumination_pass
from cellmoa.preprocess.plates import plate_fields
from cellmoa.segment.fields import segment_field
from cellmoa.segment.jobs import segment_plate, segmentation_channels
from cellmoa.segment.qc import usable_fields
from cellmoa.segment.settings import SegmentationSettings
from cellmoa.segment.store import read_attributes, read_fields

pytestmark = pytest.mark.unit

DEMO = SyntheticSpec(image_height=256, image_width=320, nucleus_radius=7.0, cells_per_field=35)


@pytest.fixture(scope="module")
def measured():
    field = synthetic_field(DEMO, moa="Microtubule stabilizers", seed=1)
    seg = segment_field(field.images["DAPI"], field.images["Actin"])
    images = {c: unit_scale(field.images[c], 65535) for c in ("DAPI", "Tubulin", "Actin")}
    labels = paired_labels(seg.nuclei, seg.cells)
    every = FeatureSettings(
        groups=("sizeshape", "intensity", "texture", "granularity", "radial_distribution"),
        correlations=("pearson",),
    )
    return labels, images, measure_objects(labels, images, every)


def test_every_cell_is_measured_with_cellprofilers_names(measured):
    labels, _, table = measured
    n = len(np.unique(labels["Nuclei"])) - 1
    assert n > 20 and len(table) == n
    assert table.index.tolist() == sorted(set(np.unique(labels["Cells"])) - {0})
    for name in (
        "Nuclei_AreaShape_Area",
        "Cells_AreaShape_Area",
        "Cells_Intensity_MeanIntensity_Tubulin",
        "Nuclei_Intensity_IntegratedIntensity_DAPI",
        "Cells_Granularity_1_Actin",
        "Cells_RadialDistribution_MeanFrac_1of4_Tubulin",
        "Cells_Correlation_Pearson_Tubulin_Actin",
    ):
        assert name in table.columns, name
    assert any(c.startswith("Cells_Texture_") and c.endswith("_DAPI") for c in table.columns)
    # where an object lies is not a phenotype
    assert not [c for c in table.columns if "Location" in c or "Center_" in c]
    assert np.isfinite(table["Cells_Intensity_MeanIntensity_Tubulin"]).all()


def test_the_measurements_belong_to_their_objects(measured):
    labels, images, table = measured
    nuclei, cells = labels["Nuclei"], labels["Cells"]
    for label in table.index[:5]:
        assert table.loc[label, "Nuclei_AreaShape_Area"] == (nuclei == label).sum()
        assert table.loc[label, "Cells_Intensity_MeanIntensity_Tubulin"] == pytest.approx(
            images["Tubulin"][cells == label].mean()
        )
    # a cell holds its nucleus
    assert (table["Cells_AreaShape_Area"] >= table["Nuclei_AreaShape_Area"]).all()


def test_unknown_groups_and_channels_are_named():
    with pytest.raises(ValueError, match="features.groups: unknown 'haralick'"):
        FeatureSettings(groups=("haralick",))
    with pytest.raises(ValueError, match="features.correlations"):
        FeatureSettings(correlations=("costes2",))
    with pytest.raises(ValueError, match="segmentation.cell_channel: 'GFP'"):
        segmentation_channels(("DAPI", "Actin"), cell="GFP")
    with pytest.raises(ValueError, match="nucleus_channel"):
        segmentation_channels(("Mito", "ER"))
    assert segmentation_channels(("DNA",)) == ("DNA", None)


@pytest.fixture(scope="module")
def plate_run(tiny_raw, tmp_path_factory):
    """A tiny synthesized plate segmented and measured by the rules' job functions."""
    spec, raw = tiny_raw
    dataset = BBBC021()
    metadata = dataset.read_metadata(raw)
    name = spec.plates()[0]
    plate = plate_fields(dataset, metadata, name, raw, None, 2, unannotated=True)
    rows = metadata[metadata["plate"] == name]
    functions, _ = illumination_pass(rows, raw, dataset.channels, _params())
    out = tmp_path_factory.mktemp("segment") / f"{name}.h5"
    settings = SegmentationSettings(nucleus_diameter=2 * spec.nucleus_radius)
    objects, qc = segment_plate(out, plate, functions, settings, "DAPI", "Actin")
    return plate, functions, out, objects, qc


def _params():
    from cellmoa.preprocess.illumination import IlluminationParams

    return IlluminationParams()


def test_a_plate_is_segmented_field_by_field(plate_run):
    plate, _, path, objects, qc = plate_run
    fields = list(read_fields(path))
    assert [f["image_number"] for f in fields] == plate.rows["image_number"].astype(int).tolist()
    assert read_attributes(path)["cell_channel"] == "Actin"
    assert len(qc) == len(fields) and qc["usable"].all()
    for field, (_, rec) in zip(fields, qc.iterrows()):
        assert field["nuclei"].max() == rec["n_nuclei"] > 5
    assert set(objects["kind"]) == {"nucleus", "cell"}
    assert set(objects["image_number"]) == set(qc["image_number"])


def test_wells_are_the_median_of_their_cells_and_flagged_fields_are_left_out(plate_run, caplog):
    plate, functions, path, _, qc = plate_run
    settings = FeatureSettings(groups=("sizeshape", "intensity"), correlations=())
    wells = measure_plate(path, plate, functions, settings, usable_fields(qc))
    assert sorted(wells["Metadata_Well"]) == sorted(plate.rows["well"].unique())
    assert (wells["Metadata_Cells"] > 5).all() and (wells["Metadata_Fields"] == 1).all()
    assert wells["Nuclei_AreaShape_Area"].between(5, 200).all()
    # one field flagged by its QC: named, and its well gone (one site a well here)
    flagged = qc.assign(usable=qc["image_number"] != qc["image_number"].iloc[0])
    with caplog.at_level(logging.WARNING):
        fewer = measure_plate(path, plate, functions, settings, usable_fields(flagged))
    well = qc["well"].iloc[0]
    assert well not in set(fewer["Metadata_Well"]) and len(fewer) == len(wells) - 1
    assert f"{well}/1" in caplog.text and "segmentation QC" in caplog.text


def _screen(n_per_compound=3):
    """Crop metadata and well profiles of a small screen whose MoAs differ in feature f."""
    rows, wells = [], []
    compounds = {"a1": "A", "a2": "A", "b1": "B", "b2": "B", "DMSO": "DMSO"}
    rng = np.random.default_rng(0)
    for compound, moa in compounds.items():
        for k in range(n_per_compound):
            well = f"{compound}-{k}"
            control = compound == "DMSO"
            for crop in range(2):
                rows.append({"plate": "P1", "well": well, "compound": compound, "moa": moa,
                             "concentration": 1.0, "batch": "W1", "replicate": k, "crop": crop,
                             "site": 1, "image_number": len(rows), "cell_line": "MCF-7",
                             "is_control": int(control),
                             "annotated": int(not control)})  # fmt: skip
            shift = {"A": 3.0, "B": -3.0, "DMSO": 0.0}[moa]
            wells.append({"Metadata_Plate": "P1", "Metadata_Well": well,
                          "f": shift + rng.normal(0, 0.3), "g": rng.normal(0, 1),
                          "const": 1.0})  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(wells)


def test_crops_carry_their_wells_profile_in_control_z_scores():
    metadata, wells = _screen()
    values, names = crop_profiles(metadata, wells)
    assert names == ["f", "g"]  # the constant feature dropped
    assert values.shape == (len(metadata), 2)
    controls = metadata["is_control"].astype(bool).to_numpy()
    assert np.allclose(values[controls].mean(axis=0), 0, atol=1e-5)
    assert np.allclose(values[controls].std(axis=0), 1, atol=1e-4)
    first = metadata.groupby("well").head(1).index
    assert np.array_equal(values[first], values[first + 1])  # both crops of a well
    direct, _ = screen_profiles(wells, wells["Metadata_Well"].str.startswith("DMSO").to_numpy())
    assert np.allclose(values[metadata.index[metadata["crop"] == 0]], direct)


def test_each_fold_predicts_only_its_held_out_compound():
    metadata, wells = _screen()
    values, _ = crop_profiles(metadata, wells)
    for compound, moa in (("a1", "A"), ("b2", "B")):
        table = fold_predictions(metadata, values, compound)
        assert set(table["Metadata_Compound"]) == {compound}
        assert (table["predicted_moa"] == moa).all()
        assert table["Metadata_Network"].eq("CellProfiler").all()
        assert table.filter(like="prob_").sum(axis=1).round(6).eq(1).all()


def test_a_well_without_a_profile_is_named_and_gets_no_call(caplog):
    metadata, wells = _screen()
    gone = wells["Metadata_Well"] != "a1-0"
    with caplog.at_level(logging.WARNING):
        values, _ = crop_profiles(metadata, wells[gone])
    assert "P1/a1-0" in caplog.text
    table = fold_predictions(metadata, values, "a1")
    lost = table[table["Metadata_Well"] == "a1-0"]
    assert len(lost) == 2 and np.allclose(lost.filter(like="prob_").to_numpy(), 0.5)
