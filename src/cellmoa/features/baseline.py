"""The classical baseline: CellProfiler well profiles scored exactly as the networks are.

The rule ``baseline`` turns the plates' well profiles (:mod:`~cellmoa.features.jobs`) into what a
network's training job writes, so that every table downstream (accuracy with both intervals,
nearest-neighbour NSC/NSCB, mAP, the summary, the report) treats ``CellProfiler`` as one more row:

- :func:`screen_profiles`: the wells' features cleaned (a feature missing in any well, or constant
  over the screen, is dropped) and standardised by the control wells of the screen (the mean and
  standard deviation of the DMSO wells' profiles; features in z-scores of the controls, so that
  they share a scale);
- :func:`crop_profiles`: every crop of ``results/tensors/all.h5`` given its well's profile (the
  "embeddings" the matching averages back to wells and treatments; the configured
  ``profiles.postprocess`` applies to them as to a network's);
- :func:`fold_predictions`: per leave-one-compound-out fold (the same folds, from
  :func:`cellmoa.train.folds.select_fold`), a logistic regression (scikit-learn, features
  standardised on the fold's training wells, classes weighted by their frequency) trained on the
  training compounds' well profiles predicts the held-out compound's wells; each crop of a well
  carries its well's probabilities, so that the crop-to-treatment aggregate is the mean over its
  wells, as for the networks.

Examples
--------
>>> meta = pd.DataFrame({"plate": ["P"] * 6, "well": ["A", "A", "B", "C", "D", "E"],
...     "compound": ["c1", "c1", "c2", "c3", "c4", "DMSO"],
...     "moa": ["m1", "m1", "m1", "m2", "m2", "DMSO"],
...     "is_control": [0, 0, 0, 0, 0, 1], "annotated": [1, 1, 1, 1, 1, 0]})
>>> wells = pd.DataFrame({"Metadata_Plate": ["P"] * 5, "Metadata_Well": list("ABCDE"),
...                       "f": [1.0, 1.2, -1.0, -1.1, 0.0], "g": [0.5, 0.4, 0.3, 0.1, 0.2]})
>>> values, names = crop_profiles(meta, wells)
>>> values.shape, names
((6, 2), ['f', 'g'])
>>> fold_predictions(meta, values, "c1")["predicted_moa"].tolist()
['m1', 'm1']
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cellmoa.columns import FOLD, NETWORK, PLATE, PROB_PREFIX, WELL, metadata_name
from cellmoa.files import atomic_path
from cellmoa.train.folds import select_fold

log = logging.getLogger(__name__)

#: the baseline's name where a network's would stand (tables, file names, the report)
BASELINE = "CellProfiler"


def screen_profiles(wells: pd.DataFrame, is_control: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The wells' features cleaned and in z-scores of the control wells (the module docstring).

    Parameters
    ----------
    wells : pandas.DataFrame
        One row per well, ``Metadata_*`` columns and features.
    is_control : numpy.ndarray of bool
        Which rows are control wells (all rows stand in where there are none).

    Returns
    -------
    tuple
        (wells x features float32, the feature names kept).
    """
    names = [c for c in wells.columns if not c.startswith("Metadata_")]
    values = wells[names].to_numpy(np.float64)
    finite = np.isfinite(values).all(axis=0)
    varies = np.nanstd(values, axis=0) > 0
    keep = finite & varies
    if (~keep).any():
        log.info(
            "%d of %d features dropped: %d missing in some well, %d constant",
            int((~keep).sum()), len(names), int((~finite).sum()), int((finite & ~varies).sum()),
        )  # fmt: skip
    values, names = values[:, keep], [n for n, k in zip(names, keep) if k]
    reference = values[is_control] if is_control.sum() >= 2 else values
    mean, std = reference.mean(axis=0), reference.std(axis=0)
    std = np.where(std > 0, std, values.std(axis=0))
    return ((values - mean) / std).astype(np.float32), names


def crop_profiles(metadata: pd.DataFrame, wells: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Every crop's well profile (:func:`screen_profiles`), aligned with the tensors row by row.

    A crop whose well has no profile (every field of the well flagged by the segmentation QC)
    gets NaN, and is named in the log.

    Parameters
    ----------
    metadata : pandas.DataFrame
        The tensors' crop metadata (:func:`cellmoa.preprocess.tensors.read_crop_metadata`).
    wells : pandas.DataFrame
        The well profiles of every plate (``Metadata_Plate``, ``Metadata_Well``, features).

    Returns
    -------
    tuple
        (crops x features float32, the feature names).
    """
    keys = metadata[["plate", "well"]].astype(str).agg("/".join, axis=1)
    well_keys = wells[PLATE].astype(str) + "/" + wells[WELL].astype(str)
    controls = set(keys[metadata["is_control"].astype(bool)])
    values, names = screen_profiles(wells, well_keys.isin(controls).to_numpy())
    position = pd.Series(np.arange(len(wells)), index=well_keys)
    row = keys.map(position)
    missing = sorted(set(keys[row.isna()]))
    if missing:
        log.warning("%d well(s) without a CellProfiler profile (no usable field): %s",
                    len(missing), ", ".join(missing[:20]))  # fmt: skip
    out = np.full((len(metadata), len(names)), np.nan, np.float32)
    found = row.notna().to_numpy()
    out[found] = values[row[found].astype(int).to_numpy()]
    return out, names


def fold_predictions(
    metadata: pd.DataFrame, profiles: np.ndarray, held_out: str, scheme: str = "nsc", c: float = 1.0
) -> pd.DataFrame:
    """One fold's predictions of its held-out crops, in a network's ``predictions.tsv`` layout.

    Parameters
    ----------
    metadata : pandas.DataFrame
        The tensors' crop metadata.
    profiles : numpy.ndarray
        The crops' well profiles (:func:`crop_profiles`).
    held_out : str
        The compound the fold holds out (:func:`cellmoa.train.folds.select_fold`).
    scheme : str
        The fold scheme.
    c : float
        The inverse regularisation strength of the logistic regression.

    Returns
    -------
    pandas.DataFrame
        ``Metadata_Network`` (``CellProfiler``), ``Metadata_Fold``, the crops' metadata,
        ``prob_<MoA>`` per class and ``predicted_moa``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fold = select_fold(metadata, held_out, scheme)
    train = fold.train_index[np.isfinite(profiles[fold.train_index]).all(axis=1)]
    wells = metadata.iloc[train].assign(row=train).drop_duplicates(["plate", "well"])
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    )
    model.fit(profiles[wells["row"].to_numpy()], wells["moa"].to_numpy())
    test = fold.test_index
    probs = np.zeros((len(test), len(fold.classes)))
    scorable = np.isfinite(profiles[test]).all(axis=1)
    if scorable.any():
        fitted = model.predict_proba(profiles[test[scorable]])
        for j, name in enumerate(model.classes_):
            probs[scorable, fold.classes.index(name)] = fitted[:, j]
    probs[~scorable] = 1.0 / len(fold.classes)  # no profile: no evidence for any class
    table = metadata.iloc[test].reset_index(drop=True)
    table.columns = [metadata_name(col) for col in table.columns]
    for j, name in enumerate(fold.classes):
        table[f"{PROB_PREFIX}{name}"] = probs[:, j]
    table["predicted_moa"] = [fold.classes[k] for k in probs.argmax(axis=1)]
    table.insert(0, FOLD, held_out)
    table.insert(0, NETWORK, BASELINE)
    return table


def write_embeddings(profiles: np.ndarray, path, fold: str, tensors: str) -> None:
    """The crops' profiles in a network's ``embeddings.h5`` layout.

    ``/embeddings`` (N, D) aligned row by row with the tensors' ``/images``, float32 (z-scores of
    the controls can exceed float16's range), and the ``network``, ``fold`` and ``tensors``
    attributes.
    """
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as out:
        out.create_dataset("embeddings", data=profiles.astype(np.float32), compression="gzip")
        out.attrs.update({"network": BASELINE, "fold": fold, "tensors": str(tensors)})
