"""Segmentation of real images: counts and nucleus areas in a plausible range.

Reads ``../shared/real_images/`` (public BBBC014 and BBBC021 images, never copied into the
project) and skips where it is absent. The ranges are wide enough for any sound segmentation and
narrow enough to catch a broken one (3x too many or too few nuclei, nuclei of the wrong size);
the measured figures and how the ranges were set: docs/methods.md, "Segmentation (preview)".
"""

from pathlib import Path

import numpy as np
import pytest

from cellmoa.segment.fields import segment_field
from cellmoa.segment.settings import SegmentationSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "real_images"
BBBC014 = REAL / "bbbc014_cellprofiler_examples"
BBBC021 = REAL / "bbbc021_fields_256"
WELLS = ("01-A-01-00", "12-A-12-00")


@pytest.mark.skipif(
    not all((BBBC014 / f"Channel 2-{w}.tif").is_file() for w in WELLS),
    reason=f"the real BBBC014 example images are absent ({BBBC014})",
)
@pytest.mark.parametrize("well", WELLS)
def test_bbbc014_nuclei_and_cells_are_plausible(well):
    """Measured with the defaults (nuclei ~14 px across): 611 and 612 nuclei, median areas 173
    and 156 px (a disc ~14-15 px across); 479-684 nuclei for expected diameters 10-20 px."""
    tifffile = pytest.importorskip("tifffile")
    dna = tifffile.imread(BBBC014 / f"Channel 2-{well}.tif")
    nfkb = tifffile.imread(BBBC014 / f"Channel 1-{well}.tif")
    assert dna.shape == (1024, 1360) and dna.dtype == np.uint8
    out = segment_field(dna, nfkb, SegmentationSettings(), field=well)
    qc = out.qc
    assert qc["usable"], qc
    assert 300 <= qc["n_nuclei"] <= 1200, qc
    assert 100 <= qc["median_nucleus_area"] <= 300, qc
    assert qc["n_cells"] == qc["n_nuclei"]
    assert 0.03 <= qc["nucleus_cover"] <= 0.2, qc
    nuclei = out.objects[out.objects["kind"] == "nucleus"]
    cells = out.objects[out.objects["kind"] == "cell"].set_index("object")
    # every cell is larger than its nucleus
    assert (cells.loc[nuclei["object"], "area"].to_numpy() >= nuclei["area"].to_numpy()).all()


@pytest.mark.skipif(
    not (BBBC021 / "site_000_DAPI.png").is_file(),
    reason=f"the real BBBC021 fields are absent ({BBBC021})",
)
def test_bbbc021_small_fields_are_plausible():
    """20 fields shrunk ~4.5x to 256 x 256 (nuclei ~7 px across, measured: the README's ~5 px
    is too small a diameter): measured 75-290 nuclei a field, median areas 32-67 px."""
    imread = pytest.importorskip("skimage.io").imread
    settings = SegmentationSettings(nucleus_diameter=7)
    for site in range(20):
        dna = imread(BBBC021 / f"site_{site:03d}_DAPI.png")
        tubulin = imread(BBBC021 / f"site_{site:03d}_Tubulin.png")
        qc = segment_field(dna, tubulin, settings, field=str(site)).qc
        assert qc["usable"], qc
        assert 40 <= qc["n_nuclei"] <= 600, qc
        assert 15 <= qc["median_nucleus_area"] <= 120, qc
