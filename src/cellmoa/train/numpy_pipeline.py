"""The numpy input pipeline, on the Keras backends that must not need TensorFlow (JAX, PyTorch).

A generator of numpy batches (what Keras' ``fit`` and ``predict`` take on every backend), made
ahead in order by reader threads, each with its own HDF5 handle. It takes the steps of the
tf.data pipeline (:mod:`cellmoa.train.tf_pipeline`) in numpy: :func:`resize_bilinear` computes
what ``tf.image.resize`` does, :func:`~cellmoa.train.augment.augment_batch_numpy` augments.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cellmoa.preprocess.normalization import PIXEL_RANGE, pixels_to_z, z_to_pixels
from cellmoa.train.augment import augment_batch_numpy
from cellmoa.train.inputs import CropReader, InputSpec, epoch_order, index_arrays, steps_per_epoch


def numpy_batches(
    tensors: Path,
    indices: np.ndarray,
    labels: np.ndarray | None,
    settings,
    training: bool,
    with_index: bool = False,
    epochs: range = range(1),
    class_weights: dict[int, float] | None = None,
):
    """The pipeline of :func:`cellmoa.train.pipeline.make_dataset` without TensorFlow.

    Batches are made ahead in order by ``settings.threads`` reader threads (every core when 0).
    A batch is ``(images, labels[, weights][, indices])``, or ``(images,)`` without labels;
    batch ``b`` (counted from the first epoch) is augmented with the seed ``(seed + 1, b)``, so
    an epoch feeds the same whatever epoch the run started at, as on tf.data.
    """
    path = Path(tensors)
    spec = InputSpec.read(path, settings, training)
    indices, label_arr = index_arrays(indices, labels)
    batch = int(settings.batch_size)
    if training:
        plan = training_plan(len(indices), batch, settings.seed, epochs)
    else:
        plan = [
            (None, np.arange(k, min(k + batch, len(indices))))
            for k in range(0, len(indices), batch)
        ]
    weights = None
    if class_weights is not None:
        weights = np.array([class_weights.get(int(label), 0.0) for label in label_arr], np.float32)
    load = _BatchLoader(
        path, spec, settings.seed, indices, label_arr, labels is not None, weights, with_index
    )
    workers = int(getattr(settings, "threads", 0) or os.cpu_count() or 1)
    return made_ahead(load, plan, workers)


def training_plan(n: int, batch: int, seed: int, epochs: range) -> list[tuple[int, np.ndarray]]:
    """(absolute batch number, positions in the fold's crops) of every batch through ``epochs``.

    Examples
    --------
    >>> [(b, len(rows)) for b, rows in training_plan(5, 2, 0, range(1, 2))]
    [(3, 2), (4, 2), (5, 1)]
    """
    first = epochs.start * steps_per_epoch(n, batch)
    plan = []
    for e in epochs:
        order = epoch_order(n, seed, e)
        plan += [order[k : k + batch] for k in range(0, n, batch)]
    return [(first + b, rows) for b, rows in enumerate(plan)]


class _BatchLoader:
    """Makes one batch of the plan, in a reader thread with its own :class:`CropReader`."""

    def __init__(
        self, path, spec: InputSpec, seed, indices, label_arr, with_labels, weights, with_index
    ):
        self.path, self.spec, self.seed = path, spec, seed
        self.indices, self.label_arr, self.with_labels = indices, label_arr, with_labels
        self.weights, self.with_index = weights, with_index
        self.local = threading.local()

    def __call__(self, item) -> tuple:
        number, rows = item
        spec = self.spec
        reader = getattr(self.local, "reader", None)
        if reader is None:
            reader = self.local.reader = CropReader(self.path)
        images = reader(self.indices[rows]).astype(np.float32)
        if spec.dtype == np.uint8:
            images = pixels_to_z(images, spec.pixel_scale)
        images = resize_bilinear(images, spec.size)
        if spec.which:
            images = augment_batch_numpy(images, (self.seed + 1, number), spec.which)
        pixels = np.clip(z_to_pixels(images, spec.pixel_scale), *PIXEL_RANGE).astype(np.float32)
        if spec.select is not None:
            zero = np.zeros(pixels.shape[:-1], np.float32)
            pixels = np.stack([zero if i < 0 else pixels[..., i] for i in spec.select], -1)
        pixels = np.asarray(spec.preprocess(pixels), np.float32)
        out = (pixels, self.label_arr[rows]) if self.with_labels else (pixels,)
        if self.weights is not None:
            out = out + (self.weights[rows],)
        if self.with_index:
            out = out + (self.indices[rows],)
        return out  # Keras takes only tuples from a generator, (images,) included


def made_ahead(load, plan, workers: int):
    """Yield ``load(item)`` for every item of ``plan`` in order, up to 2 x ``workers`` ahead."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cellmoa-reader") as pool:
        pending = deque()
        items = iter(plan)
        for item in items:
            pending.append(pool.submit(load, item))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done = pending.popleft().result()
            nxt = next(items, None)
            if nxt is not None:
                pending.append(pool.submit(load, nxt))
            yield done


def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows (low, high) and the weight of the high one, of a bilinear resize on one axis.

    Half-pixel centres and no antialiasing, as ``tf.image.resize(..., "bilinear")``.
    """
    centre = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    centre = np.clip(centre, 0.0, n_in - 1)
    low = np.floor(centre).astype(np.int64)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, (centre - low).astype(np.float32)


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """A batch (N, H, W, C) resized to (N, size, size, C), float32, in numpy.

    As ``tf.image.resize`` with ``method="bilinear"`` (half-pixel centres, no antialiasing)
    computes it: rows then columns, each output value a blend of its two nearest source values.

    Examples
    --------
    >>> resize_bilinear(np.ones((2, 3, 5, 1)), 4).shape
    (2, 4, 4, 1)
    """
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    if (h, w) == (size, size):
        return images
    low, high, frac = _axis_weights(h, size)
    rows = images[:, low] + frac[None, :, None, None] * (images[:, high] - images[:, low])
    low, high, frac = _axis_weights(w, size)
    return rows[:, :, low] + frac[None, None, :, None] * (rows[:, :, high] - rows[:, :, low])
