"""The paper's augmentations, in TensorFlow (the tf.data pipeline) and in numpy (the others).

Both apply the same augmentations with the same probabilities but draw from different random
streams, so one seed gives other (equally valid) batches on the two. Both are stateless and
seeded: the same seed gives the same batch, which is what lets a resumed fold feed exactly what
an uninterrupted one would have.
"""

from __future__ import annotations

import numpy as np

#: The paper's augmentations: one of the 8 rotations/flips ("dihedral"); each with probability
#: 0.5: per-channel intensity jitter +-25% ("intensity"), 3 x 3 blur ("blur"), Gaussian noise of
#: sd 0.1 in z units ("noise").
AUGMENTATIONS = ("dihedral", "intensity", "blur", "noise")


def augmentations(setting) -> tuple[str, ...]:
    """The augmentations a config ``augment`` value selects.

    Parameters
    ----------
    setting : bool or list of str
        True (all of :data:`AUGMENTATIONS`), False (none), or a list of their names.

    Returns
    -------
    tuple of str
        The selected augmentations, in the order of :data:`AUGMENTATIONS`.

    Examples
    --------
    >>> augmentations(["noise", "dihedral"])
    ('dihedral', 'noise')
    >>> augmentations(False)
    ()
    """
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
    """3 x 3 mean filter of a batch (N, H, W, C), edges mirrored.

    Shifted sums, ~7x faster on the CPU than ``tf.nn.avg_pool2d``.
    """
    import tensorflow as tf  # lazily: importing cellmoa.train must not import TensorFlow

    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    return (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / 9.0


def augment_batch(images, seed, which=AUGMENTATIONS):
    """Apply the augmentations in ``which`` to a batch of square (N, S, S, C) images.

    Each image draws its own transform. Stateless: the same ``seed`` (2 integers) gives the same
    result. The 8 rotations/flips are every combination of a transpose, a left-right and an
    up-down flip, each with probability 0.5, so each of the 8 is equally likely. Every other
    augmentation is applied to an image with probability 0.5.
    """
    import tensorflow as tf  # lazily: importing cellmoa.train must not import TensorFlow

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


def box_blur_numpy(images: np.ndarray) -> np.ndarray:
    """:func:`box_blur` in numpy: 3 x 3 mean, edges mirrored (the edge value repeated).

    Examples
    --------
    >>> box_blur_numpy(np.ones((1, 4, 4, 1), np.float32)).shape
    (1, 4, 4, 1)
    """
    padded = np.pad(images, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="symmetric")
    rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    return (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / np.float32(9.0)


def augment_batch_numpy(images: np.ndarray, seed, which=AUGMENTATIONS) -> np.ndarray:
    """:func:`augment_batch` in numpy, for the backends without TensorFlow.

    The same augmentations, each applied to an image with probability 0.5 (the 8 rotations/flips
    equally likely), drawn from ``numpy.random.default_rng(seed)``: the same ``seed`` (a sequence
    of integers) gives the same batch.
    """
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
