import numpy as np
import pytest
from scipy import ndimage
from skimage.filters import threshold_otsu

from cellmoa.data.datasets import BBBC021
from cellmoa.data.synthetic.bbbc021 import synthesize
from cellmoa.preprocess.illumination import (
    IlluminationParams,
    RunningMean,
    correct,
    illumination_function,
    smooth,
)
from cellmoa.preprocess.images import read_image
from cellmoa.preprocess.jobs import plate_illumination
from tests.helpers.specs import tiny_spec

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    """One plate with a strong known illumination fall-off and as many fields as a real BBBC021
    plate has (~280; the mean of fewer sparse-nuclei DAPI images is too spotty to smooth)."""
    spec = tiny_spec(
        weeks=1,
        plates_per_week=1,
        sites_per_well=20,
        image_height=160,
        image_width=200,
        illumination_falloff=2.8,
        dmso_wells_per_plate=4,
    )
    raw = synthesize(spec, tmp_path_factory.mktemp("illum"), archives=False)
    meta = BBBC021().read_metadata(raw)
    truth = np.load(raw / "illumination_truth.npz")
    return spec, raw, meta, truth


def _background_mask(flat):
    """Background pixels of a field whose illumination was removed with the true field: below
    Otsu's threshold and at least 3 px from any cell."""
    smoothed = ndimage.gaussian_filter(flat, 1.0)
    return ~ndimage.binary_dilation(smoothed > threshold_otsu(smoothed), iterations=3)


def _block_background(image, mask, blocks=8):
    """Mean background level in each of blocks x blocks tiles."""
    h, w = image.shape
    bh, bw = h // blocks, w // blocks
    levels = []
    for i in range(blocks):
        for j in range(blocks):
            m = mask[i * bh : (i + 1) * bh, j * bw : (j + 1) * bw]
            if m.sum() > 20:
                levels.append(image[i * bh : (i + 1) * bh, j * bw : (j + 1) * bw][m].mean())
    return np.array(levels)


@pytest.mark.parametrize("smoothing", ["median", "gaussian"])
def test_estimated_function_matches_the_truth(plate, smoothing):
    spec, raw, meta, truth = plate
    params = IlluminationParams(smoothing=smoothing)
    functions = plate_illumination(meta, raw, BBBC021.channels, params)
    plate_name = spec.plates()[0]
    for channel, function in functions.items():
        assert function.min() >= 1.0
        assert function.dtype == np.float32
        r = np.corrcoef(function.ravel(), truth[f"{plate_name}/{channel}"].ravel())[0, 1]
        assert r >= 0.98, (channel, r)


def test_correction_flattens_dmso_background(plate):
    spec, raw, meta, truth = plate
    functions = plate_illumination(meta, raw, BBBC021.channels, IlluminationParams())
    dmso = meta[meta.compound == "DMSO"]
    for channel in BBBC021.channels:
        before, after = [], []
        field = truth[f"{spec.plates()[0]}/{channel}"]
        for rel in dmso[f"file_{channel}"]:
            image = read_image(raw / rel)
            mask = _background_mask(image / field)
            b0 = _block_background(image, mask)
            b1 = _block_background(correct(image, functions[channel]), mask)
            before.append(b0.std() / b0.mean())
            after.append(b1.std() / b1.mean())
        assert np.mean(before) / np.mean(after) >= 5.0, (channel, np.mean(before), np.mean(after))


def test_running_mean_equals_numpy_mean():
    rng = np.random.default_rng(0)
    images = rng.random((5, 20, 30))
    running = RunningMean()
    for im in images:
        running.add(im)
    np.testing.assert_allclose(running.mean, images.mean(axis=0))
    with pytest.raises(ValueError, match="shape"):
        running.add(np.zeros((3, 3)))


def test_function_is_divided_by_its_robust_minimum():
    yy, xx = np.mgrid[0:64, 0:80]
    mean = 100 + 50 * np.exp(-((yy - 32) ** 2 + (xx - 40) ** 2) / 800)
    params = IlluminationParams(smoothing="gaussian", size=0.05, robust_percentile=2)
    function = illumination_function(mean, params)
    smoothed = smooth(mean, params)
    np.testing.assert_allclose(
        function, np.maximum(smoothed / np.percentile(smoothed, 2), 1), rtol=1e-5
    )
    with pytest.raises(ValueError, match="unknown illumination smoothing"):
        smooth(mean, IlluminationParams(smoothing="box"))


def test_running_mean_of_integer_images_is_exact_and_switches_to_float():
    from cellmoa.preprocess.illumination import RunningMean

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 65536, (8, 9), dtype=np.uint16) for _ in range(5)]
    mean = RunningMean()
    for image in images:
        mean.add(image)
    assert mean.total.dtype == np.uint32
    np.testing.assert_array_equal(mean.mean, np.mean(np.stack(images).astype(np.float64), axis=0))
    mean.add(np.full((8, 9), 0.5, np.float32))  # a float image: the sum carries on in float64
    assert mean.total.dtype == np.float64
    expected = (np.sum(np.stack(images).astype(np.float64), axis=0) + 0.5) / 6
    np.testing.assert_allclose(mean.mean, expected, rtol=1e-12)
    fresh = RunningMean()
    fresh.add(images[0])
    fresh.count = 65536  # past this many 16-bit images a uint32 sum could overflow
    fresh.add(images[1])
    assert fresh.total.dtype == np.float64
    np.testing.assert_array_equal(fresh.total, images[0].astype(np.float64) + images[1])


def test_illumination_qc_flags_implausible_functions():
    """Smooth shading passes; a steep function with cell-scale structure (a mean of few fields)
    and a plate with few fields are reported (issue 18)."""
    from cellmoa.preprocess.illumination import (
        IlluminationParams,
        IlluminationQC,
        illumination_function,
    )

    y, x = np.mgrid[0:256, 0:320] / 256.0
    shading = 3.0 - 2.0 * ((x - 0.62) ** 2 + (y - 0.5) ** 2)
    qc = IlluminationQC()
    ok = qc.check({"DAPI": shading / shading.min()}, n_fields=240)
    assert ok["warnings"].tolist() == [""] and ok.loc[0, "structure"] < 0.01
    # a mean of 3 fields of bright nuclei on a steep fall-off: max/min ~8 and structure
    rng = np.random.default_rng(0)
    mean = np.zeros((256, 320))
    steep = 1.0 + 7.0 * np.exp(-(((x - 0.6) ** 2 + (y - 0.5) ** 2) / 0.08))
    for _ in range(3):
        field = np.full((256, 320), 100.0)
        for cy, cx in rng.integers(0, [256, 320], size=(40, 2)):
            field[max(0, cy - 12) : cy + 12, max(0, cx - 12) : cx + 12] += 3000
        mean += field * steep / 3
    function = illumination_function(mean, IlluminationParams())
    bad = qc.check({"DAPI": function}, n_fields=3).loc[0]
    assert (
        "max/min" in bad["warnings"]
        and "structure" in bad["warnings"]
        and "only 3 fields" in bad["warnings"]
    )
    assert bad["max_min_ratio"] > 4 and bad["structure"] > 0.05
