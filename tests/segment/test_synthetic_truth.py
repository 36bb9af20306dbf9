"""Segmentation against the synthetic renderer's ground truth (object-level F1 at IoU >= 0.5).

The renderer places cells at random, so about a quarter of its nuclei touch or overlap another,
and where two overlap their DNA adds up: the overlap is the brightest spot, unlike real touching
nuclei (dimmer at their border). The shape split (``declump="shape"``, the distance transform)
separates those; the default intensity split, made for real clumps (BBBC014), merges some of them
and is held to a lower bar here. Figures: docs/methods.md, "Segmentation (preview)".
"""

import numpy as np
import pytest

from cellmoa.data.synthetic.bbbc021 import SyntheticSpec
from cellmoa.data.synthetic.phenotypes import DMSO_PHENOTYPE, render_field
from cellmoa.data.synthetic.truth import synthetic_field
from cellmoa.segment.cells import segment_cells
from cellmoa.segment.matching import match_objects
from cellmoa.segment.nuclei import segment_nuclei
from cellmoa.segment.settings import SegmentationSettings

pytestmark = pytest.mark.unit

#: the demo's scale (config/demo.yaml) and a BBBC021-like one (a quarter of a 1024 x 1280 field)
SCALES = {
    "demo": (
        SyntheticSpec(image_height=256, image_width=320, nucleus_radius=7.0, cells_per_field=35),
        14.0,
    ),
    "bbbc021": (
        SyntheticSpec(image_height=512, image_width=640, nucleus_radius=10.0, cells_per_field=40),
        20.0,
    ),
}
FIELDS = 4


def pooled_f1(scores):
    return 2 * sum(s["tp"] for s in scores) / sum(s["n_true"] + s["n_predicted"] for s in scores)


@pytest.fixture(scope="module", params=sorted(SCALES))
def scale(request):
    spec, diameter = SCALES[request.param]
    return request.param, [synthetic_field(spec, seed=k) for k in range(FIELDS)], diameter


def test_nuclei_f1_against_the_ground_truth(scale):
    name, fields, diameter = scale
    shape = SegmentationSettings(nucleus_diameter=diameter, declump="shape")
    default = SegmentationSettings(nucleus_diameter=diameter)
    by_shape = [match_objects(f.nuclei, segment_nuclei(f.images["DAPI"], shape)) for f in fields]
    by_default = [
        match_objects(f.nuclei, segment_nuclei(f.images["DAPI"], default)) for f in fields
    ]
    assert pooled_f1(by_shape) >= 0.9, (name, by_shape)
    assert pooled_f1(by_default) >= 0.85, (name, by_default)
    # matched nuclei have the right outline, not only the right place
    assert np.mean([s["mean_iou"] for s in by_shape]) >= 0.9


def test_cells_f1_against_the_ground_truth(scale):
    name, fields, diameter = scale
    settings = SegmentationSettings(nucleus_diameter=diameter, declump="shape")
    scores = []
    for f in fields:
        nuclei = segment_nuclei(f.images["DAPI"], settings)
        cells = segment_cells(f.images["Tubulin"], nuclei, settings)
        assert (cells[nuclei > 0] == nuclei[nuclei > 0]).all()
        assert set(np.unique(cells)) == set(np.unique(nuclei))
        scores.append(match_objects(f.cells, cells))
    assert pooled_f1(scores) >= 0.8, (name, scores)


def test_the_truth_draws_nothing_more():
    """The layers are the same with and without the truth: the synthesizers' bytes stay put."""
    spec = SyntheticSpec(image_height=64, image_width=80, cells_per_field=8)
    plain = render_field(np.random.default_rng(3), spec, dict(DMSO_PHENOTYPE))
    truth = {}
    traced = render_field(np.random.default_rng(3), spec, dict(DMSO_PHENOTYPE), truth=truth)
    assert all(np.array_equal(plain[c], traced[c]) for c in plain)
    nuclei, cells = truth["nuclei"], truth["cells"]
    assert nuclei.max() > 0 and set(truth) == {"nuclei", "cells"}
    # a nucleus lies in its own cell, except where another cell's body covers it
    assert np.mean(cells[nuclei > 0] == nuclei[nuclei > 0]) > 0.9


def test_a_field_is_deterministic_for_its_seed():
    spec = SyntheticSpec(image_height=64, image_width=80, cells_per_field=8)
    a, b, c = (synthetic_field(spec, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.images["DAPI"], b.images["DAPI"])
    assert np.array_equal(a.nuclei, b.nuclei)
    assert not np.array_equal(a.images["DAPI"], c.images["DAPI"])
