"""The input pipeline of training and prediction: crops read one by one from the HDF5 tensors,
resized to the network's input, augmented, mapped to pixels and passed through the network's own
``preprocess_input``.

Two implementations of the same steps: on the TensorFlow backend a tf.data pipeline (the
default, unchanged); on the other Keras backends (JAX, PyTorch), which must not need TensorFlow,
a generator of numpy batches made by reader threads (:func:`numpy_batches`). They apply the same
augmentations with the same probabilities but draw from different random streams, so one seed
gives other (equally valid) batches on the two.

Crops are read one at a time (h5py reads by index list are ~60x slower). Augmentation is
stateless and seeded: epoch ``e`` of a fold feeds the same batches, augmented the same way,
whether the run started at epoch 0 or resumed at ``e``. How z-scores become pixels is decided in
:mod:`cellmoa.preprocess.normalization`.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from cellmoa.preprocess.normalization import PIXEL_RANGE, pixels_to_z, z_to_pixels
from cellmoa.train import models


def channel_selection(input_channels, stored: list[str]) -> list[int] | None:
    """Indices of the stored channels that feed the network's 3 inputs (-1 = a zero channel), or
    None to feed the stored channels as they are."""
    if input_channels is None:
        return None
    if len(input_channels) != 3:
        raise ValueError(
            f"input_channels must name 3 channels (or null for a zero channel); got {input_channels}"
        )
    unknown = [c for c in input_channels if c is not None and c not in stored]
    if unknown:
        raise ValueError(
            f"input channel(s) {', '.join(unknown)} are not in the tensors' channels {', '.join(stored)}"
        )
    return [-1 if c is None else stored.index(c) for c in input_channels]


class CropReader:
    """Reads crops from an HDF5 file, opened lazily in the reading thread's process, one by one
    (h5py reads by index list are ~60x slower than the same samples read one at a time)."""

    def __init__(self, path: Path):
        self.path = str(path)
        self._file = None
        self._images = None

    def __call__(self, indices) -> np.ndarray:
        if self._images is None:
            self._file = h5py.File(self.path, "r")
            self._images = self._file["images"]
        return np.stack([self._images[int(i)] for i in indices])

    def layout(self) -> tuple[tuple[int, ...], np.dtype, list[str]]:
        """(shape of one crop, dtype, channel names) of the images, in one opening of the file."""
        with h5py.File(self.path, "r") as f:
            images = f["images"]
            return (
                tuple(images.shape[1:]),
                np.dtype(images.dtype),
                [str(c) for c in f.attrs.get("channels", [])],
            )


def network_input(settings, stored: list[str], n_stored: int) -> tuple[list[int] | None, int]:
    """How the stored channels feed the network: ``(selection, channels)``. ``channel_adapter:
    select`` (default): ``input_channels`` picks three (:func:`channel_selection`), or the stored
    channels feed it as they are, which must then be three. ``stem``: every stored channel feeds a
    network whose first convolution takes them all (:func:`cellmoa.train.models.widen_stem`)."""
    if getattr(settings, "channel_adapter", "select") == "stem":
        if n_stored < 3:
            raise ValueError(
                f"channel_adapter: stem widens a network to more than 3 channels; the tensors have {n_stored} "
                "(use channel_adapter: select with input_channels, which pads with zero channels)"
            )
        return None, n_stored
    select = channel_selection(settings.input_channels, stored)
    if select is None:
        require_three_channels(n_stored)
    return select, 3


def require_three_channels(n: int) -> None:
    """The networks take 3 channels: anything else is refused with the way to map them."""
    if n != 3:
        raise ValueError(
            f"networks take 3 channels; the tensors have {n} "
            "(pick three with training.input_channels, or feed them all with training.channel_adapter: stem)"
        )


#: The paper's augmentations: one of the 8 rotations/flips ("dihedral"); each with probability
#: 0.5: per-channel intensity jitter +-25% ("intensity"), 3 x 3 blur ("blur"), Gaussian noise of
#: sd 0.1 in z units ("noise").
AUGMENTATIONS = ("dihedral", "intensity", "blur", "noise")


def augmentations(setting) -> tuple[str, ...]:
    """The augmentations a config ``augment`` value selects (True = all, False = none, or a list)."""
    if setting is True:
        return AUGMENTATIONS
    if not setting:
        return ()
    unknown = sorted(set(setting) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(
            f"unknown augmentation(s) {', '.join(unknown)}; choose from {', '.join(AUGMENTATIONS)}"
        )
    return tuple(a for a in AUGMENTATIONS if a in setting)


def box_blur(images):
    """3 x 3 mean filter of a batch (N, H, W, C), edges mirrored: shifted sums, ~7x faster on the
    CPU than ``tf.nn.avg_pool2d``."""
    import tensorflow as tf

    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    return (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / 9.0


def augment_batch(images, seed, which=AUGMENTATIONS):
    """Apply the augmentations in ``which`` to a batch of square (N, S, S, C) images, each image
    drawing its own transform. Stateless: the same ``seed`` (2 integers) gives the same result.

    The 8 rotations/flips are every combination of a transpose, a left-right and an up-down flip,
    each with probability 0.5, so each of the 8 is equally likely. Every other augmentation is
    applied to an image with probability 0.5.
    """
    import tensorflow as tf

    n = tf.shape(images)[0]
    streams = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3)
    # one 0/1 coin per image and augmentation, as (N, 1, 1, 1) weights: x + coin * (f(x) - x)
    # blends cost a third of a broadcasting tf.where on the CPU
    coins = tf.cast(tf.random.stateless_uniform([n, 6], streams[0]) < 0.5, images.dtype)

    def apply(k, transformed, original):
        return original + tf.reshape(coins[:, k], [n, 1, 1, 1]) * (transformed - original)

    if "dihedral" in which:
        images = apply(0, tf.transpose(images, [0, 2, 1, 3]), images)
        images = apply(1, tf.reverse(images, [2]), images)
        images = apply(2, tf.reverse(images, [1]), images)
    if "intensity" in which:
        jitter = tf.random.stateless_uniform(
            [n, 1, 1, tf.shape(images)[-1]], streams[1], 0.75, 1.25
        )
        images = apply(3, images * jitter, images)
    if "blur" in which:
        images = apply(4, box_blur(images), images)
    if "noise" in which:
        noise = tf.random.stateless_normal(tf.shape(images), streams[2], stddev=0.1)
        images = apply(5, images + noise, images)
    return images


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which an epoch feeds ``n`` training crops: a permutation seeded by (seed, epoch),
    so a run resumed at any epoch feeds exactly what an uninterrupted run would have."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def make_dataset(
    tensors: Path,
    indices: np.ndarray,
    labels: np.ndarray | None,
    settings,
    training: bool,
    with_index: bool = False,
    epochs: range = range(1),
    class_weights: dict[int, float] | None = None,
):
    """A batched pipeline over ``indices`` of the tensors file: tf.data on the TensorFlow backend
    (``settings.backend``), else a generator of numpy batches (:func:`numpy_batches`).

    Yields ``(images, labels)`` (or ``images`` when ``labels`` is None); with ``with_index`` the
    crop indices are appended, so tests can see exactly what is fed. A training pipeline runs
    through ``epochs`` one after the other (``steps_per_epoch`` batches each), every epoch in its
    own order (:func:`epoch_order`) with augmentation seeded by (seed, absolute batch number): what
    epoch ``e`` feeds does not depend on where the run started. Evaluation keeps the order of ``indices``.
    ``class_weights`` (class -> weight; numpy pipeline only) appends each crop's weight to a
    training batch, as Keras does with ``fit(class_weight=...)``, which generators do not take.
    """
    if backend_of(settings) != "tensorflow":
        return numpy_batches(
            tensors, indices, labels, settings, training, with_index, epochs, class_weights
        )
    if class_weights is not None:
        raise ValueError("class weights are given to fit() on the TensorFlow pipeline")
    import tensorflow as tf

    reader = CropReader(tensors)
    shape, dtype, channels = reader.layout()
    select, n_input = network_input(settings, channels, shape[-1])
    size = int(settings.input_size)
    preprocess = models.preprocess_fn(settings.network, n_input)
    which = augmentations(settings.augment) if training else ()
    indices = np.asarray(indices, np.int64)
    label_arr = np.zeros(len(indices), np.int64) if labels is None else np.asarray(labels, np.int64)
    batch = settings.batch_size
    if training:
        steps = steps_per_epoch(len(indices), batch)
        orders = np.array([epoch_order(len(indices), settings.seed, e) for e in epochs], np.int64)
        orders = orders.reshape(len(epochs), len(indices))
        fed = tf.data.Dataset.from_tensor_slices((indices[orders], label_arr[orders])).flat_map(
            lambda idx, lab: tf.data.Dataset.from_tensor_slices((idx, lab)).batch(batch)
        )
        # augmentation seeds: (seed, absolute batch number), the same for an epoch wherever the run started
        first = np.int64(epochs.start * steps)
        seeds = tf.data.Dataset.range(first, first + len(epochs) * steps).map(
            lambda b: tf.stack([tf.constant(settings.seed + 1, tf.int64), b])
        )
        ds = tf.data.Dataset.zip(fed, seeds)
    else:
        ds = tf.data.Dataset.zip(
            tf.data.Dataset.from_tensor_slices((indices, label_arr)).batch(batch),
            tf.data.Dataset.from_tensors(tf.zeros([2], tf.int64)).repeat(),
        )

    def load(pair, seed):
        index, label = pair
        images = tf.numpy_function(reader, [index], tf.as_dtype(dtype), stateful=False)
        images.set_shape((None, *shape))
        images = tf.cast(images, tf.float32)
        if dtype == np.uint8:
            # 8-bit tensors (the paper's scaling) are pixels already: as z-like values they pass
            # the same augmentations and come back unchanged by 127.5 + pixel_scale * z
            images = pixels_to_z(images, settings.pixel_scale)
        images = tf.image.resize(images, (size, size), method="bilinear")
        if which:
            images = augment_batch(images, seed, which)
        pixels = tf.clip_by_value(z_to_pixels(images, settings.pixel_scale), *PIXEL_RANGE)
        if select is not None:
            # a zero channel is black (0), as the paper stacked BBBC014's two channels with zeros
            zeros = tf.zeros_like(pixels[..., :1])
            pixels = tf.concat(
                [zeros if i < 0 else pixels[..., i : i + 1] for i in select], axis=-1
            )
        pixels = preprocess(pixels)
        out = (pixels,) if labels is None else (pixels, label)
        if with_index:
            out = out + (index,)
        return out if len(out) > 1 else out[0]

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE
    )
    if getattr(settings, "threads", 0):
        # a job given n threads feeds itself with n threads too: tf.data's pool defaults to every
        # core, and two one-thread demo jobs on 2 cores then slowed each other by up to a quarter
        options = tf.data.Options()
        options.threading.private_threadpool_size = int(settings.threads)
        ds = ds.with_options(options)
    return ds


def backend_of(settings) -> str:
    """The Keras backend a job's settings name (``tensorflow`` unless given)."""
    return getattr(settings, "backend", None) or "tensorflow"


def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows (low, high) and the weight of the high one, of a bilinear resize along one
    axis with half-pixel centres and no antialiasing (``tf.image.resize(..., "bilinear")``)."""
    centre = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    centre = np.clip(centre, 0.0, n_in - 1)
    low = np.floor(centre).astype(np.int64)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, (centre - low).astype(np.float32)


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """A batch (N, H, W, C) resized to (N, size, size, C), float32, as ``tf.image.resize`` with
    ``method="bilinear"`` (half-pixel centres, no antialiasing) computes it, in numpy: rows then
    columns, each output value a blend of its two nearest source values."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    if (h, w) == (size, size):
        return images
    low, high, frac = _axis_weights(h, size)
    rows = images[:, low] + frac[None, :, None, None] * (images[:, high] - images[:, low])
    low, high, frac = _axis_weights(w, size)
    return rows[:, :, low] + frac[None, None, :, None] * (rows[:, :, high] - rows[:, :, low])


def box_blur_numpy(images: np.ndarray) -> np.ndarray:
    """:func:`box_blur` in numpy: 3 x 3 mean, edges mirrored (the edge value repeated)."""
    padded = np.pad(images, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="symmetric")
    rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    return (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / np.float32(9.0)


def augment_batch_numpy(images: np.ndarray, seed, which=AUGMENTATIONS) -> np.ndarray:
    """:func:`augment_batch` in numpy, for the backends without TensorFlow: the same
    augmentations, each applied to an image with probability 0.5 (the 8 rotations/flips equally
    likely), drawn from ``numpy.random.default_rng(seed)``: the same ``seed`` (a sequence of
    integers) gives the same batch."""
    images = np.array(images, np.float32)
    n = images.shape[0]
    rng = np.random.default_rng([int(s) for s in np.ravel(seed)])
    coins = rng.random((n, 6)) < 0.5
    jitter = rng.uniform(0.75, 1.25, (n, 1, 1, images.shape[-1])).astype(np.float32)
    if "dihedral" in which:
        # square crops: a transpose keeps the shape, so each image can take its own
        images[coins[:, 0]] = np.swapaxes(images[coins[:, 0]], 1, 2)
        images[coins[:, 1]] = images[coins[:, 1], :, ::-1]
        images[coins[:, 2]] = images[coins[:, 2], ::-1]
    if "intensity" in which:
        images[coins[:, 3]] *= jitter[coins[:, 3]]
    if "blur" in which and coins[:, 4].any():
        images[coins[:, 4]] = box_blur_numpy(images[coins[:, 4]])
    if "noise" in which and coins[:, 5].any():
        hit = coins[:, 5]
        images[hit] += rng.normal(0.0, 0.1, images[hit].shape).astype(np.float32)
    return images


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
    """The pipeline of :func:`make_dataset` without TensorFlow: a generator of numpy batches
    (what Keras' ``fit`` and ``predict`` take on every backend), made ahead in order by
    ``settings.threads`` reader threads (every core when 0), each with its own HDF5 handle.

    A batch is ``(images, labels[, weights][, indices])``, or ``(images,)`` without labels; batch ``b`` (counted from the
    first epoch) is augmented with the seed ``(seed + 1, b)``, so an epoch feeds the same whatever
    epoch the run started at, as on tf.data.
    """
    import os
    import threading
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    path = Path(tensors)
    shape, dtype, channels = CropReader(path).layout()
    select, n_input = network_input(settings, channels, shape[-1])
    size = int(settings.input_size)
    preprocess = models.preprocess_fn(settings.network, n_input)
    which = augmentations(settings.augment) if training else ()
    indices = np.asarray(indices, np.int64)
    label_arr = np.zeros(len(indices), np.int64) if labels is None else np.asarray(labels, np.int64)
    batch = int(settings.batch_size)
    if training:
        steps = steps_per_epoch(len(indices), batch)
        first = epochs.start * steps
        plan = []
        for e in epochs:
            order = epoch_order(len(indices), settings.seed, e)
            plan += [order[k : k + batch] for k in range(0, len(indices), batch)]
        plan = [(first + b, rows) for b, rows in enumerate(plan)]
    else:
        plan = [
            (None, np.arange(k, min(k + batch, len(indices))))
            for k in range(0, len(indices), batch)
        ]
    weights = None
    if class_weights is not None:
        weights = np.array([class_weights.get(int(label), 0.0) for label in label_arr], np.float32)
    local = threading.local()

    def load(item):
        number, rows = item
        reader = getattr(local, "reader", None)
        if reader is None:
            reader = local.reader = CropReader(path)
        images = reader(indices[rows]).astype(np.float32)
        if dtype == np.uint8:
            images = pixels_to_z(images, settings.pixel_scale)
        images = resize_bilinear(images, size)
        if which:
            images = augment_batch_numpy(images, (settings.seed + 1, number), which)
        pixels = np.clip(z_to_pixels(images, settings.pixel_scale), *PIXEL_RANGE).astype(np.float32)
        if select is not None:
            pixels = np.stack(
                [
                    np.zeros(pixels.shape[:-1], np.float32) if i < 0 else pixels[..., i]
                    for i in select
                ],
                -1,
            )
        pixels = np.asarray(preprocess(pixels), np.float32)
        out = (pixels,) if labels is None else (pixels, label_arr[rows])
        if weights is not None:
            out = out + (weights[rows],)
        if with_index:
            out = out + (indices[rows],)
        return out  # Keras takes only tuples from a generator, (images,) included

    workers = int(getattr(settings, "threads", 0) or os.cpu_count() or 1)

    def generate():
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

    return generate()
