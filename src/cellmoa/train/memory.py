"""The memory input mode (``training.inputs: memory``): a fold's crops held at the network's size.

Once per job the training crops are read from the tensors file (one by one, in reader threads),
resized to the network's input as the streaming pipelines resize them and kept in one float16
array (:class:`CropCache`). Every batch is then an index gather from that array (on the CPU)
followed by :func:`~cellmoa.train.device_augment.network_batch` (augmentation, pixels,
``preprocess_input``) on the backend's device, so the CPU no longer reads, resizes or augments.

The cache stores z-scores as float16: a relative error of at most 2**-11 against the streamed
float32 values (<= 0.004 z at |z| <= 8, i.e. <= 0.06 of a pixel level at ``pixel_scale`` 16,
below the 8-bit quantum and far below the augmentation noise of sd 0.1 z = 1.6 levels). Its
size, ``crops x size x size x channels x 2`` bytes (BBBC021's 4,832 annotated crops: 1.45 GB at
224 px, 2.59 GB at 299 px), plus the fill's working memory is checked against the memory
available before anything is read: a cache that does not fit is an error (use
``training.inputs: stream``), never a silent fall-back, since the two modes feed different
(equally valid) batches. A job's folds share one cache, grown to the union of their crops where
that fits. Evaluation (predictions, embeddings: one pass) always streams.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellmoa.preprocess.normalization import pixels_to_z
from cellmoa.train.device_augment import batch_draws, network_batch
from cellmoa.train.inputs import CropReader, InputSpec, backend_of, index_arrays
from cellmoa.train.numpy_pipeline import made_ahead, resize_bilinear, training_plan

log = logging.getLogger(__name__)

#: what the cache stores (z-scores at the network's input size)
CACHE_DTYPE = np.dtype(np.float16)
#: crops read and resized by one fill task
FILL_CHUNK = 16
#: the share of the available memory a cache and its fill may take
MEMORY_SHARE = 0.8


def cache_bytes(n: int, size: int, channels: int) -> int:
    """Bytes of a cache of ``n`` crops of ``size`` x ``size`` x ``channels``.

    Examples
    --------
    >>> round(cache_bytes(4832, 224, 3) / 1e9, 2)
    1.45
    """
    return int(n) * int(size) ** 2 * int(channels) * CACHE_DTYPE.itemsize


def fill_bytes(crop_shape: tuple[int, ...], size: int, workers: int) -> int:
    """Working memory of a fill: per reader thread a chunk of crops as float32, thrice over."""
    per_crop = int(np.prod(crop_shape)) + size * crop_shape[1] * crop_shape[-1]
    return int(workers) * FILL_CHUNK * per_crop * 4 * 3


def available_memory() -> int | None:
    """Bytes this process may still take: ``MemAvailable``, bounded by a cgroup's limit."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            cap = Path(limit).read_text().strip()
            if cap != "max" and int(cap) < 2**60:
                found.append(int(cap) - int(Path(usage).read_text().strip()))
        except (OSError, ValueError):
            continue
    return min(found) if found else None


@dataclass
class CropCache:
    """Crops of one tensors file at one input size, in memory."""

    #: (file, its modification time, size, the pixel scale of 8-bit tensors)
    key: tuple
    #: the cached crops' indices (rows of ``/images``), sorted
    indices: np.ndarray
    #: their images (len(indices), size, size, channels), z-scores as :data:`CACHE_DTYPE`
    images: np.ndarray

    def positions(self, crops) -> np.ndarray:
        """Rows of :attr:`images` holding the crops ``crops``."""
        crops = np.asarray(crops, np.int64)
        at = np.searchsorted(self.indices, crops)
        if len(crops) and (at.max() >= len(self.indices) or (self.indices[at] != crops).any()):
            raise KeyError("crops not in the cache")
        return at

    def holds(self, crops) -> bool:
        """Whether every crop of ``crops`` is cached."""
        return bool(np.isin(np.asarray(crops, np.int64), self.indices).all())


#: the process's cache (one: a job trains one network at one size)
_HELD: dict[str, CropCache] = {}


def _cache_key(tensors: Path, spec: InputSpec) -> tuple:
    path = Path(tensors).resolve()
    scale = spec.pixel_scale if spec.dtype == np.uint8 else None
    return (str(path), path.stat().st_mtime_ns, spec.size, scale)


def check_memory(n: int, spec: InputSpec, workers: int, held_bytes: int = 0) -> int:
    """Peak bytes of filling a cache of ``n`` crops; an error where the machine has not got them.

    Raises
    ------
    MemoryError
        Where the peak (the cache, ``held_bytes`` of a cache kept meanwhile, the fill's working
        memory) exceeds :data:`MEMORY_SHARE` of the available memory, with both figures.
    """
    peak = cache_bytes(n, spec.size, spec.shape[-1]) + held_bytes
    peak += fill_bytes(spec.shape, spec.size, workers)
    free = available_memory()
    if free is not None and peak > MEMORY_SHARE * (free + held_bytes):
        raise MemoryError(
            f"training.inputs: memory needs {peak / 2**30:.2f} GiB to hold {n} crops at "
            f"{spec.size} px ({spec.shape[-1]} channels, float16) and this machine has "
            f"{free / 2**30:.2f} GiB available ({MEMORY_SHARE:.0%} may be used): set "
            "training.inputs: stream, or give the job more memory"
        )
    return peak


def fill(
    tensors: Path, indices: np.ndarray, spec: InputSpec, workers: int, out: np.ndarray, rows
) -> None:
    """Write the crops ``indices``, read and resized to ``spec.size``, to ``out[rows]``.

    As the streaming pipelines compute them: 8-bit pixels to z-scores, a bilinear resize
    (:func:`~cellmoa.train.numpy_pipeline.resize_bilinear`); ``workers`` reader threads, each
    with its own HDF5 handle, ``FILL_CHUNK`` crops at a time (no second copy of the cache).
    """
    rows = np.asarray(rows, np.int64)
    local = threading.local()

    def load(start: int) -> None:
        reader = getattr(local, "reader", None)
        if reader is None:
            reader = local.reader = CropReader(tensors)
        images = reader(indices[start : start + FILL_CHUNK]).astype(np.float32)
        if spec.dtype == np.uint8:
            images = pixels_to_z(images, spec.pixel_scale)
        out[rows[start : start + FILL_CHUNK]] = resize_bilinear(images, spec.size)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cellmoa-fill") as pool:
        list(pool.map(load, range(0, len(indices), FILL_CHUNK)))


def crop_cache(tensors: Path, indices, spec: InputSpec, workers: int) -> CropCache:
    """The process's cache holding the crops ``indices``, filled (or grown) where needed.

    A held cache of the same file and size is reused, or grown to the union with ``indices``
    where that fits (a job's next fold); else it is dropped and the crops filled anew.
    """
    key = _cache_key(tensors, spec)
    held = _HELD.get("cache")
    if held is not None and held.key == key and held.holds(indices):
        return held
    if held is None or held.key != key:
        _HELD.clear()
        held = None
    wanted = np.unique(np.asarray(indices, np.int64))
    if held is not None:
        union = np.union1d(wanted, held.indices)
        try:
            check_memory(len(union), spec, workers, held.images.nbytes)
            wanted = union
        except MemoryError:
            _HELD.clear()
            held = None
    peak = check_memory(len(wanted), spec, workers)
    free = available_memory()
    log.info(
        "inputs: memory: caching %d crops at %d px (%.2f GiB; peak estimate %.2f GiB of %s "
        "available)",
        len(wanted),
        spec.size,
        cache_bytes(len(wanted), spec.size, spec.shape[-1]) / 2**30,
        peak / 2**30,
        "?" if free is None else f"{free / 2**30:.2f} GiB",
    )
    start = time.perf_counter()
    images = np.empty((len(wanted), spec.size, spec.size, spec.shape[-1]), CACHE_DTYPE)
    missing = wanted
    if held is not None:
        images[np.searchsorted(wanted, held.indices)] = held.images
        missing = np.setdiff1d(wanted, held.indices)
        _HELD.clear()
    fill(tensors, missing, spec, workers, images, np.searchsorted(wanted, missing))
    cache = _HELD["cache"] = CropCache(key, wanted, images)
    log.info(
        "inputs: memory: %d crops read and resized in %.1f s (%d kept from the last fold)",
        len(missing),
        time.perf_counter() - start,
        len(wanted) - len(missing),
    )
    return cache


def release() -> None:
    """Drop the process's cache."""
    _HELD.clear()


def memory_batches(
    tensors: Path,
    indices: np.ndarray,
    labels: np.ndarray | None,
    settings,
    with_index: bool = False,
    epochs: range = range(1),
    class_weights: dict[int, float] | None = None,
):
    """The training pipeline of :func:`cellmoa.train.pipeline.make_dataset` from the memory cache.

    The order of every epoch and the seed of every batch (``(seed + 1, absolute batch number)``)
    are the numpy pipeline's, so a resumed epoch feeds what an uninterrupted one does. Batches are
    gathered ahead by ``settings.threads`` threads (every core when 0) and made network inputs by
    :func:`~cellmoa.train.device_augment.network_batch`. On TensorFlow a tf.data pipeline (class
    weights go to ``fit``), else a generator of ``(images, labels[, weights][, indices])`` with
    the images on the backend's device.
    """
    path = Path(tensors)
    spec = InputSpec.read(path, settings, training=True)
    indices, label_arr = index_arrays(indices, labels)
    workers = int(getattr(settings, "threads", 0) or os.cpu_count() or 1)
    cache = crop_cache(path, indices, spec, workers)
    at = cache.positions(indices)
    plan = training_plan(len(indices), int(settings.batch_size), settings.seed, epochs)
    weights = None
    if class_weights is not None:
        weights = np.array([class_weights.get(int(label), 0.0) for label in label_arr], np.float32)
    channels, seed = spec.shape[-1], int(settings.seed)

    def gather(item) -> tuple:
        number, rows = item
        draws = batch_draws((seed + 1, number), len(rows), channels)
        extras = (label_arr[rows],) if labels is not None else ()
        if weights is not None:
            extras += (weights[rows],)
        if with_index:
            extras += (indices[rows],)
        return (cache.images[at[rows]], *draws, *extras)

    to_network = network_batch(spec)
    if backend_of(settings) == "tensorflow":
        extras = [label_arr.dtype] * (labels is not None) + [np.float32] * (weights is not None)
        extras += [indices.dtype] * with_index
        return _tf_memory_dataset(gather, plan, workers, to_network, spec, settings, extras)

    def batches():
        for images, coins, jitter, noise_seed, *extras in made_ahead(gather, plan, workers):
            yield (to_network(images, coins, jitter, noise_seed), *extras)

    return batches()


def _tf_memory_dataset(gather, plan, workers: int, to_network, spec: InputSpec, settings, extras):
    """The memory mode's tf.data pipeline: gathered batches made network inputs in a map.

    ``extras``: the dtypes of what follows the images in a batch (labels, weights, indices).
    """
    import tensorflow as tf  # lazily: importing cellmoa.train must not import TensorFlow

    signature = (
        tf.TensorSpec((None, spec.size, spec.size, spec.shape[-1]), tf.float16),
        tf.TensorSpec((None, 6), tf.bool),
        tf.TensorSpec((None, 1, 1, spec.shape[-1]), tf.float32),
        tf.TensorSpec((2,), tf.uint32),
        *(tf.TensorSpec((None,), tf.as_dtype(dtype)) for dtype in extras),
    )
    ds = tf.data.Dataset.from_generator(
        lambda: made_ahead(gather, plan, workers), output_signature=signature
    )

    def make(images, coins, jitter, noise_seed, *extras):
        out = (to_network(images, coins, jitter, noise_seed), *extras)
        return out if len(out) > 1 else out[0]

    ds = ds.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    if getattr(settings, "threads", 0):
        options = tf.data.Options()
        options.threading.private_threadpool_size = int(settings.threads)
        ds = ds.with_options(options)
    return ds
