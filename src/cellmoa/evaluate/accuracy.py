"""Treatment-level prediction and accuracy, as in Kensert et al. (2019).

Per treatment (cell line, compound, concentration): the median of the crop probabilities within
each replicate (crops and fields together), then the median across replicates, then the argmax.
Accuracy = correct treatments / treatments. Crop-level accuracy is the argmax of each crop;
field- and well-level accuracy the argmax of the median of a field's (a well's) crops.

The replicate rule is the paper's, and it reproduces the paper's numbers; in BBBC021 it means a
replicate is the ``Replicate`` number of the image table, not a plate: a replicate whose wells sit
on several plates is pooled before its median, and a treatment imaged in more replicates than
others (taxol 0.3 uM, a positive control on every plate, unless ``preprocessing.restrictions``
keeps only its Week1 wells as the paper did) weighs each replicate, not each well, equally.

Rules every table follows (checked by :mod:`cellmoa.validation`, never repaired silently):

- the ``prob_<moa>`` columns must be finite: a NaN would win ``argmax``;
- compound, concentration, MoA, replicate (and cell line, where present) must be filled in;
- concentrations are compared rounded to 6 significant digits (``0.3`` = ``0.300000``);
- rows of the ``control`` compound are left out (logged);
- ties between class probabilities go to the MoA first in alphabetical order, whatever the order
  of the columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellmoa import validation
from cellmoa.columns import (
    CELL_LINE,
    CONCENTRATION,
    CROP_KEYS,
    FIELD,
    FOLD,
    MOA,
    NETWORK,
    PROB_PREFIX,
    REPLICATE,
    TREATMENT,
    WELL_KEYS,
    metadata_columns,
)
from cellmoa.intervals import exact_interval


def class_columns(predictions: pd.DataFrame) -> list[str]:
    """The ``prob_<moa>`` columns, sorted by MoA name (the order ties are broken in)."""
    cols = [c for c in predictions.columns if str(c).startswith(PROB_PREFIX)]
    if not cols:
        raise validation.TableError(f"the predictions have no '{PROB_PREFIX}<moa>' columns")
    return sorted(cols, key=lambda c: c[len(PROB_PREFIX) :])


def predicted_classes(probabilities: np.ndarray, prob_cols: list[str]) -> np.ndarray:
    """The argmax class of each row; ties go to the alphabetically first MoA.

    Parameters
    ----------
    probabilities : numpy.ndarray
        (rows, classes) probabilities.
    prob_cols : list of str
        Their ``prob_<moa>`` columns, as :func:`class_columns` sorts them.

    Returns
    -------
    numpy.ndarray
        The predicted MoA of each row.

    Examples
    --------
    >>> predicted_classes(np.array([[0.5, 0.5], [0.2, 0.8]]), ["prob_B", "prob_A"]).tolist()
    ['A', 'A']
    """
    classes = np.array([c[len(PROB_PREFIX) :] for c in prob_cols])
    order = np.argsort(classes, kind="stable")
    return classes[order][np.asarray(probabilities)[:, order].argmax(axis=1)]


def treatment_keys(predictions: pd.DataFrame) -> list[str]:
    """The columns that name a treatment: (cell line,) compound, concentration.

    The cell line is optional, for tables of single-cell-line datasets written without it.
    """
    return [c for c in TREATMENT if c != CELL_LINE or c in predictions.columns]


def checked_predictions(
    predictions: pd.DataFrame,
    keys: list[str],
    control: str | None = None,
    source: str = "predictions",
) -> pd.DataFrame:
    """The prediction table after the checks of this module's rules.

    Required columns (``keys``, MoA and the probabilities), filled-in keys, finite
    probabilities, concentrations as rounded numbers, controls left out.
    """
    prob_cols = class_columns(predictions)
    validation.require_columns(predictions, keys + [MOA], source)
    table = validation.drop_controls(predictions, control, source)
    validation.check_keys(table, keys + [MOA], source)
    validation.check_finite(table, prob_cols, source, "probability")
    if CONCENTRATION in keys:
        table = table.copy()
        table[CONCENTRATION] = validation.concentration_values(table[CONCENTRATION], source)
    return table


def median_of_replicates(table: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """The paper's treatment aggregate of ``columns``.

    The median over each replicate's rows, then the median over the replicates; indexed by
    ``keys`` (sorted).

    Examples
    --------
    >>> t = pd.DataFrame({"c": ["a"] * 4, "Metadata_Replicate": [1, 1, 2, 2],
    ...                   "p": [0.1, 0.3, 0.8, 0.8]})
    >>> median_of_replicates(t, ["c"], ["p"])["p"].tolist()
    [0.5]
    """
    per_replicate = table.groupby(keys + [REPLICATE], sort=True)[columns].median()
    return per_replicate.groupby(level=keys, sort=True).median()


def treatment_predictions(
    predictions: pd.DataFrame, control: str | None = None, source: str = "predictions"
) -> pd.DataFrame:
    """One row per treatment: true MoA, predicted MoA, correct, and the aggregated probabilities."""
    prob_cols = class_columns(predictions)
    keys = treatment_keys(predictions)
    out_cols = keys + [MOA, "n_replicates", "n_crops", "predicted_moa", "correct"] + prob_cols
    validation.require_columns(
        predictions,
        keys + [MOA, REPLICATE],
        source,
        "the paper's rule takes the median within each replicate, then across replicates",
    )
    if predictions.empty:
        return pd.DataFrame(columns=out_cols)
    table = checked_predictions(predictions, keys + [REPLICATE], control, source)
    if table.empty:
        raise validation.TableError(
            f"{source}: no treatment rows left once the {control} control rows are out"
        )
    validation.check_one_moa(table, keys, MOA, source)
    per_treatment = median_of_replicates(table, keys + [MOA], prob_cols)
    counts = table.groupby(keys + [MOA], sort=True).agg(
        n_replicates=(REPLICATE, "nunique"), n_crops=(REPLICATE, "size")
    )
    out = counts.join(per_treatment).reset_index()
    out["predicted_moa"] = (
        predicted_classes(out[prob_cols].to_numpy(), prob_cols) if len(out) else []
    )
    out["correct"] = out["predicted_moa"] == out[MOA]
    return out[out_cols]


def _grouped_accuracy(
    predictions: pd.DataFrame, keys: list[str], control: str | None = None
) -> tuple[float, int]:
    """(accuracy, number of groups); a group's prediction is the argmax of its crops' median."""
    prob_cols = class_columns(predictions)
    if predictions.empty:
        return float("nan"), 0
    table = checked_predictions(predictions, keys, control)
    groups = table.groupby(keys + [MOA])[prob_cols].median().reset_index()
    if groups.empty:
        return float("nan"), 0
    predicted = predicted_classes(groups[prob_cols].to_numpy(), prob_cols)
    return float(np.mean(predicted == groups[MOA].to_numpy())), len(groups)


def field_accuracy(predictions: pd.DataFrame, control: str | None = None) -> float:
    """Accuracy per field of view: the median of its crops' probabilities, then the argmax."""
    return _grouped_accuracy(predictions, FIELD, control)[0]


def well_accuracy(predictions: pd.DataFrame, control: str | None = None) -> float:
    """Accuracy per well: the median of all its crops' probabilities (all fields), the argmax."""
    return _grouped_accuracy(predictions, WELL_KEYS, control)[0]


def accuracy_by_fold(predictions: pd.DataFrame, control: str | None = None) -> pd.DataFrame:
    """Crop-, well- and treatment-level accuracy per fold.

    One row per fold plus an ``all`` row: Metadata_Fold, n_crops, crop_accuracy, n_wells,
    well_accuracy, n_treatments, treatment_accuracy.
    """
    rows = []
    parts = list(predictions.groupby(FOLD, sort=True)) + [("all", predictions)]
    for fold, part in parts:
        well, n_wells = _grouped_accuracy(part, WELL_KEYS, control)
        treatments = treatment_predictions(part, control)
        rows.append(
            {
                FOLD: fold,
                "n_crops": len(part),
                "crop_accuracy": crop_accuracy(part, control),
                "n_wells": n_wells,
                "well_accuracy": well,
                "n_treatments": len(treatments),
                "treatment_accuracy": float(treatments["correct"].mean())
                if len(treatments)
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def crop_accuracy(predictions: pd.DataFrame, control: str | None = None) -> float:
    """Accuracy of each crop's own argmax."""
    prob_cols = class_columns(predictions)
    if predictions.empty:
        return float("nan")
    table = checked_predictions(predictions, [], control)
    if table.empty:
        return float("nan")
    predicted = predicted_classes(table[prob_cols].to_numpy(), prob_cols)
    return float(np.mean(predicted == table[MOA].to_numpy()))


def accuracy_by_moa(treatments: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per-MoA treatment accuracy plus an ``all`` row.

    Columns Metadata_MoA, n_treatments, n_correct, accuracy and its Clopper-Pearson interval
    (exact_ci_low, exact_ci_high).
    """
    grouped = treatments.groupby(MOA, sort=True)["correct"].agg(
        n_treatments="size", n_correct="sum"
    )
    grouped = grouped.reset_index()
    total = pd.DataFrame(
        {
            MOA: ["all"],
            "n_treatments": [len(treatments)],
            "n_correct": [int(treatments["correct"].sum())],
        }
    )
    table = pd.concat([grouped, total], ignore_index=True)
    table["n_correct"] = table["n_correct"].astype(int)
    table["accuracy"] = table["n_correct"] / table["n_treatments"].where(table["n_treatments"] > 0)
    ci = [exact_interval(k, n, level) for k, n in zip(table["n_correct"], table["n_treatments"])]
    table["exact_ci_low"] = [c[0] for c in ci]
    table["exact_ci_high"] = [c[1] for c in ci]
    return table


def ensemble_treatments(treatments_by_network: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ensemble's treatment table: probabilities averaged over the networks, then the argmax.

    Each treatment's probabilities (rows of :func:`treatment_predictions`) are averaged over the
    networks, then the argmax taken (ties as everywhere here). Every network must have scored the
    same treatments with the same classes.
    """
    tables = list(treatments_by_network.values())
    if not tables:
        raise ValueError("no networks to ensemble")
    prob_cols = class_columns(tables[0])
    keys = treatment_keys(tables[0]) + [MOA]
    for name, t in treatments_by_network.items():
        if class_columns(t) != prob_cols or len(t) != len(tables[0]):
            raise validation.TableError(
                f"{name}: its treatments or classes differ from the other networks'; "
                "an ensemble needs the same folds and classes"
            )
    stacked = pd.concat(tables, ignore_index=True)
    out = stacked.groupby(keys, sort=True)[prob_cols].mean()
    counts = stacked.groupby(keys, sort=True)[["n_replicates", "n_crops"]].first()
    out = counts.join(out).reset_index()
    out["predicted_moa"] = predicted_classes(out[prob_cols].to_numpy(), prob_cols)
    out["correct"] = out["predicted_moa"] == out[MOA]
    return out[keys + ["n_replicates", "n_crops", "predicted_moa", "correct"] + prob_cols]


def ensemble_crops(predictions_by_network: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ensemble's crop table: each crop's probabilities averaged over the networks.

    Crops are matched by fold, plate, well, site and crop; the table gives the ensemble's crop-,
    field- and well-level accuracy.
    """
    tables = list(predictions_by_network.values())
    prob_cols = class_columns(tables[0])
    meta = [c for c in metadata_columns(tables[0].columns) if c != NETWORK]
    keys = [c for c in CROP_KEYS if c in meta]
    stacked = pd.concat([t[meta + prob_cols] for t in tables], ignore_index=True)
    n = stacked.groupby(keys, sort=True).size()
    if (n != len(tables)).any():
        raise validation.TableError(
            f"the networks' crops do not pair up by {', '.join(keys)}; "
            "an ensemble needs the same folds"
        )
    other = [c for c in meta if c not in keys]
    out = stacked.groupby(keys, sort=True).agg(
        {**dict.fromkeys(other, "first"), **dict.fromkeys(prob_cols, "mean")}
    )
    return out.reset_index()
