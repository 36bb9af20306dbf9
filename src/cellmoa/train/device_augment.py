"""The paper's augmentations in ``keras.ops``, run where the model runs (the memory input mode).

The memory input mode (:mod:`cellmoa.train.memory`) serves batches of cached crops by index
gathering alone; everything else (augmentation, z-scores to pixels, channel selection, the
network's ``preprocess_input``) is :func:`network_batch`, a ``keras.ops`` function compiled once
per batch shape and run on the backend's device (a GPU where there is one), the same code on
TensorFlow, JAX and PyTorch.

What each image draws (which of the 8 rotations/flips, which of intensity, blur and noise, the
per-channel jitter factors) is :func:`batch_draws`: numpy draws seeded by the batch's seed, the
very draws of the CPU reference :func:`~cellmoa.train.augment.augment_batch_numpy`. So for one
seed the device applies exactly the reference's rotations/flips, jitter and blur on every backend;
only the noise field comes from the backend's own stateless generator (seeded by the batch too:
the same on every run of one backend, another equally distributed field on another backend).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from cellmoa.preprocess.normalization import PIXEL_RANGE, z_to_pixels
from cellmoa.train.augment import AUGMENTATIONS

#: standard deviation of the Gaussian noise, in z units (as the CPU reference)
NOISE_SD = 0.1


def batch_draws(seed, n: int, channels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the ``n`` images of a batch draw: ``(coins, jitter, noise_seed)``.

    The first draws of :func:`~cellmoa.train.augment.augment_batch_numpy` from the same seed:
    ``coins`` (n, 6) bool (transpose, left-right flip, up-down flip, intensity, blur, noise),
    ``jitter`` (n, 1, 1, channels) float32 in [0.75, 1.25]; then two integers seeding the
    device's noise field.

    Examples
    --------
    >>> coins, jitter, noise_seed = batch_draws((1, 3), 4, 3)
    >>> coins.shape, jitter.shape, noise_seed.dtype
    ((4, 6), (4, 1, 1, 3), dtype('uint32'))
    """
    rng = np.random.default_rng([int(s) for s in np.ravel(seed)])
    coins = rng.random((n, 6)) < 0.5
    jitter = rng.uniform(0.75, 1.25, (n, 1, 1, channels)).astype(np.float32)
    noise_seed = rng.integers(0, 2**31 - 1, 2).astype(np.uint32)
    return coins, jitter, noise_seed


def box_blur_ops(images):
    """3 x 3 mean of a batch (N, H, W, C), edges mirrored: ``box_blur_numpy`` in ``keras.ops``."""
    from keras import ops  # lazily: importing cellmoa.train must not import Keras

    padded = ops.concatenate([images[:, :1], images, images[:, -1:]], axis=1)
    padded = ops.concatenate([padded[:, :, :1], padded, padded[:, :, -1:]], axis=2)
    rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    return (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / 9.0


def _normal(shape, noise_seed):
    """Standard normal values from the backend's stateless generator, seeded by ``noise_seed``."""
    import keras  # lazily: importing cellmoa.train must not import Keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # lazily: only on the TensorFlow backend

        # keras.random takes no seed tensor on TensorFlow; its stateless op does
        return tf.random.stateless_normal(shape, tf.cast(noise_seed, tf.int32))
    if backend == "jax":
        return keras.random.normal(shape, seed=keras.ops.convert_to_tensor(noise_seed, "uint32"))
    # PyTorch runs eagerly: the seed is a host value
    seed = np.asarray(noise_seed).astype(np.int64)
    return keras.random.normal(shape, seed=int(seed[0] * 2**31 + seed[1]) & 0xFFFFFFFF)


def augment_ops(images, coins, jitter, noise_seed, which=AUGMENTATIONS):
    """Apply the augmentations in ``which`` to a square batch (N, S, S, C) of z-scores.

    ``keras.ops`` on any backend, drawn by :func:`batch_draws`: each rotation/flip, jitter and
    blur is what :func:`~cellmoa.train.augment.augment_batch_numpy` applies for the same seed
    (selected with ``where``, so the rotations/flips are exact); the noise comes from the device.
    """
    from keras import ops  # lazily: importing cellmoa.train must not import Keras

    x = ops.cast(images, "float32")

    def pick(k, transformed, original):
        return ops.where(ops.reshape(coins[:, k], (-1, 1, 1, 1)), transformed, original)

    if "dihedral" in which:
        x = pick(0, ops.transpose(x, (0, 2, 1, 3)), x)
        x = pick(1, ops.flip(x, axis=2), x)
        x = pick(2, ops.flip(x, axis=1), x)
    if "intensity" in which:
        x = pick(3, x * jitter, x)
    if "blur" in which:
        x = pick(4, box_blur_ops(x), x)
    if "noise" in which:
        x = pick(5, x + NOISE_SD * _normal(ops.shape(x), noise_seed), x)
    return x


def network_batch(spec) -> Callable:
    """``f(images, coins, jitter, noise_seed)``: cached z-scores to the network's inputs.

    Augments (``spec.which``; none for an empty tuple), maps z-scores to pixels clipped to
    [0, 255], selects the network's channels (``spec.select``, -1 a black channel) and applies the
    network's ``preprocess_input`` (``spec.preprocess``), as the streaming pipelines do. Compiled
    on JAX (``jax.jit``) and TensorFlow (``tf.function``; called inside tf.data it is traced
    there), eager on PyTorch.

    Parameters
    ----------
    spec : InputSpec
        What the pipeline makes of the crops (:class:`~cellmoa.train.inputs.InputSpec`).

    Returns
    -------
    callable
        The batch function, on the backend's tensors.
    """
    import keras  # lazily: importing cellmoa.train must not import Keras
    from keras import ops  # lazily: as above

    def run(images, coins, jitter, noise_seed):
        images, coins, jitter = (ops.convert_to_tensor(v) for v in (images, coins, jitter))
        x = augment_ops(images, coins, jitter, noise_seed, spec.which) if spec.which else images
        pixels = ops.clip(z_to_pixels(ops.cast(x, "float32"), spec.pixel_scale), *PIXEL_RANGE)
        if spec.select is not None:
            zero = ops.zeros_like(pixels[..., :1])
            pixels = ops.concatenate(
                [zero if i < 0 else pixels[..., i : i + 1] for i in spec.select], axis=-1
            )
        return spec.preprocess(pixels)

    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # lazily: only on the JAX backend

        return jax.jit(run)
    if backend == "tensorflow":
        import tensorflow as tf  # lazily: only on the TensorFlow backend

        return tf.function(run, reduce_retracing=True)
    return run
