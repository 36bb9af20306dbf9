"""Predicting with a trained model: per-crop class probabilities and penultimate-layer embeddings.

Both feed the crops through the evaluation pipeline (:func:`cellmoa.train.pipeline.make_dataset`,
no augmentation, the order of the crops kept).
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from cellmoa.columns import PROB_PREFIX, metadata_name
from cellmoa.files import atomic_path
from cellmoa.train.inputs import steps_per_epoch
from cellmoa.train.pipeline import make_dataset
from cellmoa.train.settings import TrainSettings

log = logging.getLogger(__name__)


def write_embeddings(
    embedder,
    tensors: Path,
    settings: TrainSettings,
    path: Path,
    fold: str,
    rows: np.ndarray | None = None,
) -> None:
    """Write the penultimate-layer (global-average-pooled) features of the tensors' crops.

    Every crop of the tensors file, or the crops where the boolean ``rows`` is true (the others
    are NaN), as ``/embeddings`` (N, D) float16 aligned row by row with the tensors'
    ``/images``.

    Parameters
    ----------
    embedder : keras.Model
        :func:`cellmoa.train.models.embedding_model` of the trained model.
    tensors : Path
        The tensors file.
    settings : TrainSettings
        The settings the model was trained with (its input pipeline).
    path : Path
        The embeddings file written (atomically).
    fold : str
        The held-out value of the model's fold (an attribute of the file).
    rows : numpy.ndarray of bool, optional
        The crops to embed; None = every crop.
    """
    with h5py.File(tensors, "r") as f:
        n = f["images"].shape[0]
    index = np.arange(n) if rows is None else np.flatnonzero(rows)
    ds = make_dataset(tensors, index, None, settings, training=False)
    steps = steps_per_epoch(len(index), settings.batch_size)
    embedded = (
        embedder.predict(ds, steps=steps, verbose=0)
        if len(index)
        else np.zeros((0, embedder.output_shape[-1]))
    )
    values = np.full((n, embedded.shape[1]), np.nan, np.float32)
    values[index] = embedded
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as out:
        out.create_dataset("embeddings", data=values.astype(np.float16))
        out.attrs["network"] = settings.network
        out.attrs["fold"] = fold
        out.attrs["tensors"] = str(tensors)
    log.info("wrote %d x %d embeddings to %s", values.shape[0], values.shape[1], path)


def predict_crops(model, tensors, metadata, indices, classes, settings) -> pd.DataFrame:
    """Per-crop class probabilities with the crops' metadata (columns prefixed ``Metadata_``)."""
    ds = make_dataset(tensors, indices, None, settings, training=False)
    steps = steps_per_epoch(len(indices), settings.batch_size)
    probs = (
        model.predict(ds, steps=steps, verbose=0) if len(indices) else np.zeros((0, len(classes)))
    )
    if probs.shape[1] == 1 and len(classes) == 2:  # sigmoid head: the probability of classes[1]
        probs = np.concatenate([1.0 - probs, probs], axis=1)
    table = metadata.iloc[indices].reset_index(drop=True)
    table.columns = [metadata_name(c) for c in table.columns]
    for i, c in enumerate(classes):
        table[f"{PROB_PREFIX}{c}"] = probs[:, i].astype(np.float64)
    table["predicted_moa"] = [classes[i] for i in probs.argmax(axis=1)] if len(indices) else []
    return table
