"""The tf.data input pipeline, on the TensorFlow backend.

Crops read one by one by a :class:`~cellmoa.train.inputs.CropReader` in ``tf.numpy_function``,
resized (bilinear), augmented (:func:`~cellmoa.train.augment.augment_batch`), mapped to pixels,
their channels selected and passed through the network's own ``preprocess_input``. TensorFlow is
imported when a pipeline is made, never when this module is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cellmoa.preprocess.normalization import PIXEL_RANGE, pixels_to_z, z_to_pixels
from cellmoa.train.augment import augment_batch
from cellmoa.train.inputs import CropReader, InputSpec, epoch_order, index_arrays, steps_per_epoch


def tf_dataset(
    tensors: Path,
    indices: np.ndarray,
    labels: np.ndarray | None,
    settings,
    training: bool,
    with_index: bool = False,
    epochs: range = range(1),
):
    """A batched tf.data pipeline over ``indices`` of the tensors file.

    See :func:`cellmoa.train.pipeline.make_dataset` for what it yields.
    """
    import tensorflow as tf  # lazily: importing cellmoa.train must not import TensorFlow

    reader = CropReader(tensors)
    spec = InputSpec.read(tensors, settings, training)
    indices, label_arr = index_arrays(indices, labels)
    batch = settings.batch_size
    if training:
        ds = _training_batches(indices, label_arr, batch, settings.seed, epochs)
    else:
        ds = tf.data.Dataset.zip(
            tf.data.Dataset.from_tensor_slices((indices, label_arr)).batch(batch),
            tf.data.Dataset.from_tensors(tf.zeros([2], tf.int64)).repeat(),
        )
    load = _batch_loader(reader, spec, labels is not None, with_index)
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


def _training_batches(indices, label_arr, batch: int, seed: int, epochs: range):
    """((indices, labels), augmentation seed) batches through ``epochs``, each in its own order."""
    import tensorflow as tf  # lazily: importing cellmoa.train must not import TensorFlow

    steps = steps_per_epoch(len(indices), batch)
    orders = np.array([epoch_order(len(indices), seed, e) for e in epochs], np.int64)
    orders = orders.reshape(len(epochs), len(indices))
    fed = tf.data.Dataset.from_tensor_slices((indices[orders], label_arr[orders])).flat_map(
        lambda idx, lab: tf.data.Dataset.from_tensor_slices((idx, lab)).batch(batch)
    )
    # augmentation seeds: (seed, absolute batch number), the same for an epoch wherever the run
    # started
    first = np.int64(epochs.start * steps)
    seeds = tf.data.Dataset.range(first, first + len(epochs) * steps).map(
        lambda b: tf.stack([tf.constant(seed + 1, tf.int64), b])
    )
    return tf.data.Dataset.zip(fed, seeds)


def _batch_loader(reader: CropReader, spec: InputSpec, with_labels: bool, with_index: bool):
    """The map function of the pipeline: a batch of indices (and labels) to network inputs."""
    import tensorflow as tf  # lazily: importing cellmoa.train must not import TensorFlow

    def load(pair, seed):
        index, label = pair
        images = tf.numpy_function(reader, [index], tf.as_dtype(spec.dtype), stateful=False)
        images.set_shape((None, *spec.shape))
        images = tf.cast(images, tf.float32)
        if spec.dtype == np.uint8:
            # 8-bit tensors (the paper's scaling) are pixels already: as z-like values they pass
            # the same augmentations and come back unchanged by 127.5 + pixel_scale * z
            images = pixels_to_z(images, spec.pixel_scale)
        images = tf.image.resize(images, (spec.size, spec.size), method="bilinear")
        if spec.which:
            images = augment_batch(images, seed, spec.which)
        pixels = tf.clip_by_value(z_to_pixels(images, spec.pixel_scale), *PIXEL_RANGE)
        if spec.select is not None:
            # a zero channel is black (0), as the paper stacked BBBC014's two channels with zeros
            zeros = tf.zeros_like(pixels[..., :1])
            pixels = tf.concat(
                [zeros if i < 0 else pixels[..., i : i + 1] for i in spec.select], axis=-1
            )
        pixels = spec.preprocess(pixels)
        out = (pixels, label) if with_labels else (pixels,)
        if with_index:
            out = out + (index,)
        return out if len(out) > 1 else out[0]

    return load
