"""training.inputs: memory: the crop cache, the device augmentation against the CPU reference, and
what the memory mode feeds (the same epochs after a resume, the streamed values within float16)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.train import memory
from cellmoa.train.augment import augment_batch_numpy
from cellmoa.train.device_augment import augment_ops, batch_draws
from cellmoa.train.folds import select_fold
from cellmoa.train.inputs import InputSpec, steps_per_epoch
from cellmoa.train.pipeline import make_dataset
from cellmoa.train.settings import TrainSettings
from tests.helpers.paths import ROOT

ALL = ("dihedral", "intensity", "blur", "noise")


def _np(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def _settings(**kw):
    values = dict(network="ResNet50", input_size=32, weights=None, batch_size=5, seed=5)
    values.update(kw)
    return TrainSettings(**values)


def _device(images, seed, which):
    """The device augmentation (this process's Keras backend) with the draws of ``seed``."""
    return _np(augment_ops(images, *batch_draws(seed, len(images), images.shape[-1]), which))


def _dihedral_index(out, image):
    """Which of the 8 rotations/flips of ``image`` ``out`` is (exactly), or -1."""
    for k in range(4):
        rotated = np.rot90(image, k)
        for f, candidate in enumerate((rotated, rotated[:, ::-1])):
            if np.array_equal(out, candidate):
                return 2 * k + f
    return -1


@pytest.mark.unit
def test_the_device_dihedral_group_is_exactly_the_references():
    """For one seed the device turns and flips every image exactly as the CPU reference does, and
    the 8 rotations/flips come out equally often."""
    image = np.random.default_rng(0).normal(size=(12, 12, 3)).astype(np.float32)
    batch = np.repeat(image[None], 64, axis=0)
    seen = np.zeros(8, int)
    for seed in range(4):
        device = _device(batch, (seed, 1), ("dihedral",))
        np.testing.assert_array_equal(device, augment_batch_numpy(batch, (seed, 1), ("dihedral",)))
        for out in device:
            seen[_dihedral_index(out, image)] += 1
    assert seen.sum() == 256 and (seen > 16).all(), seen


@pytest.mark.unit
def test_the_device_jitter_and_blur_are_the_references_and_the_noise_is_distributed_alike():
    images = np.random.default_rng(1).normal(size=(32, 16, 16, 3)).astype(np.float32)
    for seed in [(2, 0), (2, 1)]:
        np.testing.assert_allclose(
            _device(images, seed, ("dihedral", "intensity", "blur")),
            augment_batch_numpy(images, seed, ("dihedral", "intensity", "blur")),
            atol=1e-6,
        )
    # noise: the same images hit (the shared draws), a field of the same distribution
    from scipy import stats

    device, reference = [], []
    for b in range(8):
        seed = (3, b)
        coins = batch_draws(seed, 32, 3)[0][:, 5]
        d = _device(images, seed, ("noise",)) - images
        r = augment_batch_numpy(images, seed, ("noise",)) - images
        assert (np.abs(d).max(axis=(1, 2, 3)) > 0).tolist() == coins.tolist()
        assert (np.abs(r).max(axis=(1, 2, 3)) > 0).tolist() == coins.tolist()
        device.append(d[coins].ravel())
        reference.append(r[coins].ravel())
    device, reference = np.concatenate(device), np.concatenate(reference)
    assert abs(device.std() - 0.1) < 0.002 and abs(device.mean()) < 0.002
    assert stats.ks_2samp(device[::7], reference[::7]).statistic < 0.02
    # the whole chain: the same images changed in the same ways, noise apart
    both = _device(images, (4, 4), ALL) - augment_batch_numpy(images, (4, 4), ALL)
    assert 0.05 < both.std() < 0.2


@pytest.mark.unit
def test_the_memory_mode_feeds_the_streamed_values_within_float16(tiny_tensors):
    """Without noise, a memory-mode batch is the numpy pipeline's batch (the same order, the same
    draws), up to the float16 cache."""
    meta = read_crop_metadata(tiny_tensors)
    fold = select_fold(meta, "nocodazole", "nsc")
    labels = np.arange(len(fold.train_index)) % 2
    which = ["dihedral", "intensity", "blur"]
    fed = {
        mode: list(
            make_dataset(
                tiny_tensors,
                fold.train_index,
                labels,
                _settings(backend="jax", inputs=mode, augment=which),
                training=True,
                with_index=True,
            )
        )
        for mode in ("memory", "stream")
    }
    assert len(fed["memory"]) == len(fed["stream"]) == steps_per_epoch(len(labels), 5)
    for a, b in zip(fed["memory"], fed["stream"]):
        np.testing.assert_array_equal(_np(a[-1]), _np(b[-1]))
        np.testing.assert_array_equal(_np(a[1]), _np(b[1]))
        # ResNet50's preprocess_input works in pixel levels: float16 z (<= 2**-11 relative, |z|
        # a few here) times pixel_scale 16 stays under a tenth of a level
        np.testing.assert_allclose(_np(a[0]), _np(b[0]), atol=0.1)
        assert _np(a[0]).dtype == np.float32


@pytest.mark.unit
def test_the_cache_is_filled_once_and_grown_for_the_next_fold(tiny_tensors):
    memory.release()
    spec = InputSpec.read(tiny_tensors, _settings(), training=True)
    first = memory.crop_cache(tiny_tensors, np.arange(10, 30), spec, 2)
    assert memory.crop_cache(tiny_tensors, np.arange(12, 20), spec, 2) is first
    grown = memory.crop_cache(tiny_tensors, np.arange(0, 15), spec, 2)
    assert list(grown.indices) == list(range(30)) and grown.images.dtype == np.float16
    np.testing.assert_array_equal(grown.images[grown.positions(np.arange(10, 30))], first.images)
    assert grown.images.shape == (30, 32, 32, spec.shape[-1])
    with pytest.raises(KeyError):
        grown.positions([31])
    memory.release()


@pytest.mark.unit
def test_a_cache_that_does_not_fit_is_refused_before_anything_is_read(tiny_tensors, monkeypatch):
    memory.release()
    spec = InputSpec.read(tiny_tensors, _settings(input_size=224), training=True)
    monkeypatch.setattr(memory, "available_memory", lambda: 2**20)
    monkeypatch.setattr(memory, "fill", lambda *a: pytest.fail("read before the check"))
    with pytest.raises(MemoryError, match=r"training.inputs: stream"):
        memory.crop_cache(tiny_tensors, np.arange(40), spec, 2)
    assert memory.cache_bytes(4832, 299, 3) == 4832 * 299 * 299 * 3 * 2  # 2.59 GB


@pytest.mark.unit
def test_the_input_mode_is_checked_and_changes_outputs():
    with pytest.raises(ValueError, match="inputs must be memory or stream"):
        _settings(inputs="disk")
    assert _settings().inputs == "memory"
    assert _settings(inputs="stream").output_settings()["inputs"] == "stream"


JAX_RUN = """
import json, sys
import numpy as np
from cellmoa.train.augment import augment_batch_numpy
from cellmoa.train.device_augment import augment_ops, batch_draws
from cellmoa.train.pipeline import make_dataset
from cellmoa.train.settings import TrainSettings
import keras
images = np.random.default_rng(0).normal(size=(16, 12, 12, 3)).astype(np.float32)
draws = batch_draws((1, 2), 16, 3)
dihedral = np.array_equal(
    np.asarray(augment_ops(images, *draws, ("dihedral",))),
    augment_batch_numpy(images, (1, 2), ("dihedral",)))
settings = TrainSettings(network="ResNet50", input_size=32, weights=None, batch_size=5, seed=5,
                         backend="jax")
index, labels = np.arange(3, 23), np.arange(20) % 2
def fed(epochs):
    return [tuple(np.asarray(x) for x in b) for b in make_dataset(
        sys.argv[1], index, labels, settings, training=True, with_index=True, epochs=epochs)]
whole, again, resumed = fed(range(3)), fed(range(3)), fed(range(2, 3))
same = all(np.array_equal(x, y) for a, b in zip(whole, again) for x, y in zip(a, b))
resume = all(np.array_equal(x, y) for a, b in zip(whole[8:], resumed) for x, y in zip(a, b))
print("RESULT " + json.dumps(dict(backend=keras.backend.backend(), dihedral=dihedral,
      same=same, resume=resume and len(resumed) == 4, device=str(type(whole[0][0])))))
"""


@pytest.mark.workflow
def test_on_jax_the_memory_mode_is_seeded_and_resumes_the_same_epochs(tiny_tensors):
    """On the JAX backend (a process of its own, without TensorFlow's pipeline): the device
    augmentation turns and flips exactly as the reference, a seed feeds the same batches twice,
    and a run resumed at epoch 2 feeds what an uninterrupted one does."""
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", JAX_RUN, str(tiny_tensors)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT ")[-1])
    assert result == dict(
        backend="jax", dihedral=True, same=True, resume=True, device=result["device"]
    )
