"""The input pipeline of training and prediction, on whichever Keras backend a job runs.

Crops are read one by one from the HDF5 tensors, resized to the network's input, augmented,
mapped to pixels and passed through the network's own ``preprocess_input``. Two implementations
of the same steps: on the TensorFlow backend a tf.data pipeline
(:mod:`cellmoa.train.tf_pipeline`, the default); on the other Keras backends (JAX, PyTorch),
which must not need TensorFlow, a generator of numpy batches made by reader threads
(:mod:`cellmoa.train.numpy_pipeline`). They apply the same augmentations
(:mod:`cellmoa.train.augment`) with the same probabilities but draw from different random
streams, so one seed gives other (equally valid) batches on the two.

With ``training.inputs: memory`` (the default) training batches come instead from the fold's
crops held in memory at the network's input size, gathered by index and augmented on the device
(:mod:`cellmoa.train.memory`, :mod:`cellmoa.train.device_augment`) on every backend; evaluation
(one pass) always streams.

Crops are read one at a time (h5py reads by index list are ~60x slower). Augmentation is
stateless and seeded: epoch ``e`` of a fold feeds the same batches, augmented the same way,
whether the run started at epoch 0 or resumed at ``e``. How z-scores become pixels is decided in
:mod:`cellmoa.preprocess.normalization`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cellmoa.train.inputs import backend_of
from cellmoa.train.memory import memory_batches
from cellmoa.train.numpy_pipeline import numpy_batches
from cellmoa.train.tf_pipeline import tf_dataset


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
    """A batched pipeline over ``indices`` of the tensors file.

    Training with ``settings.inputs == "memory"``: batches from the memory cache
    (:func:`~cellmoa.train.memory.memory_batches`). Else streamed: tf.data on the TensorFlow
    backend (``settings.backend``), a generator of numpy batches
    (:func:`~cellmoa.train.numpy_pipeline.numpy_batches`) on the others.

    Parameters
    ----------
    tensors : Path
        The tensors file.
    indices : numpy.ndarray
        The crops to feed (rows of ``/images``).
    labels : numpy.ndarray or None
        Their class numbers; None yields images alone.
    settings : TrainSettings
        Network, input size, batch size, seed, augmentation, backend, threads.
    training : bool
        Shuffle and augment (training), or keep the order of ``indices`` (evaluation).
    with_index : bool
        Append the crop indices to each batch, so tests can see exactly what is fed.
    epochs : range
        The epochs a training pipeline runs through, one after the other
        (``steps_per_epoch`` batches each), every epoch in its own order
        (:func:`~cellmoa.train.inputs.epoch_order`) with augmentation seeded by (seed, absolute
        batch number): what epoch ``e`` feeds does not depend on where the run started.
    class_weights : dict of int to float, optional
        Class -> weight (numpy pipeline only): each crop's weight is appended to a training
        batch, as Keras does with ``fit(class_weight=...)``, which generators do not take.

    Returns
    -------
    tf.data.Dataset or generator
        ``(images, labels)`` batches, or ``images`` when ``labels`` is None (``(images,)`` from
        the generator).
    """
    if training and getattr(settings, "inputs", "stream") == "memory":
        if class_weights is not None and backend_of(settings) == "tensorflow":
            raise ValueError("class weights are given to fit() on the TensorFlow pipeline")
        return memory_batches(tensors, indices, labels, settings, with_index, epochs, class_weights)
    if backend_of(settings) != "tensorflow":
        return numpy_batches(
            tensors, indices, labels, settings, training, with_index, epochs, class_weights
        )
    if class_weights is not None:
        raise ValueError("class weights are given to fit() on the TensorFlow pipeline")
    return tf_dataset(tensors, indices, labels, settings, training, with_index, epochs)
