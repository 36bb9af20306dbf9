"""The segmentation's parts: settings, matching, QC flags and the per-object table."""

import numpy as np
import pytest

from cellmoa.data.synthetic.bbbc021 import SyntheticSpec
from cellmoa.data.synthetic.truth import synthetic_field
from cellmoa.segment.fields import segment_field
from cellmoa.segment.matching import match_objects
from cellmoa.segment.qc import OBJECT_COLUMNS
from cellmoa.segment.settings import SegmentationSettings

pytestmark = pytest.mark.unit

DEMO = SyntheticSpec(image_height=256, image_width=320, nucleus_radius=7.0, cells_per_field=35)


@pytest.fixture(scope="module")
def demo_field():
    return synthetic_field(DEMO, seed=0)


def test_settings_refuse_what_they_cannot_do():
    with pytest.raises(ValueError, match="nucleus_diameter"):
        SegmentationSettings(nucleus_diameter=0)
    with pytest.raises(ValueError, match="threshold"):
        SegmentationSettings(threshold="triangle")
    with pytest.raises(ValueError, match="declump"):
        SegmentationSettings(declump="both")
    s = SegmentationSettings(nucleus_diameter=30)
    assert s.pixels(s.seed_distance) == pytest.approx(9.0)


def test_matching_is_one_to_one():
    truth = np.zeros((10, 20), int)
    truth[2:8, 2:8], truth[2:8, 12:18] = 1, 2
    assert match_objects(truth, truth * 3)["f1"] == 1.0
    merged = (truth > 0).astype(int)  # one object over two: IoU 0.5 with each, matched once
    s = match_objects(truth, merged)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 0, 1)
    empty = match_objects(truth, np.zeros_like(truth))
    assert (empty["f1"], empty["recall"], empty["n_predicted"]) == (0.0, 0.0, 0)


def test_a_good_field_is_usable_and_tabled(demo_field):
    out = segment_field(demo_field.images["DAPI"], demo_field.images["Tubulin"], field="P/B02/1")
    assert out.qc["usable"] and out.qc["flag"] == ""
    assert list(out.objects.columns) == list(OBJECT_COLUMNS)
    nuclei = out.objects[out.objects["kind"] == "nucleus"]
    assert len(nuclei) == out.qc["n_nuclei"] == int(out.nuclei.max())
    assert nuclei["object"].is_unique and nuclei["object"].str.startswith("P/B02/1/").all()
    assert (nuclei["centroid_y"].between(0, 256)).all()


def test_absurd_fields_are_named(demo_field):
    empty = synthetic_field(
        SyntheticSpec(image_height=256, image_width=320, nucleus_radius=7.0, cells_per_field=0)
    )
    qc = segment_field(empty.images["DAPI"]).qc
    assert not qc["usable"] and "background" in qc["flag"], qc
    # nuclei ~14 px across segmented as if 4 px: cut into pieces of ~2.4x the expected area
    too_small = segment_field(demo_field.images["DAPI"], None, SegmentationSettings(4)).qc
    assert not too_small["usable"] and "touch another" in too_small["flag"], too_small
    too_large = segment_field(demo_field.images["DAPI"], None, SegmentationSettings(60)).qc
    assert not too_large["usable"] and "median nucleus area" in too_large["flag"], too_large
    blank = segment_field(np.full((64, 64), 300, np.uint16)).qc
    assert blank["flag"] == "no nuclei" and blank["n_cells"] is None


def test_the_local_threshold_finds_the_same_nuclei(demo_field):
    local = SegmentationSettings(threshold="local", declump="shape")
    otsu = SegmentationSettings(declump="shape")
    a = segment_field(demo_field.images["DAPI"], settings=local).nuclei
    b = segment_field(demo_field.images["DAPI"], settings=otsu).nuclei
    assert (
        match_objects(demo_field.nuclei, a)["f1"] >= match_objects(demo_field.nuclei, b)["f1"] - 0.1
    )
