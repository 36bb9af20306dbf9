"""Treatment-level prediction and accuracy, as in Kensert et al. (2019).

Per treatment (cell line, compound, concentration): the median of the crop probabilities within
each replicate (crops and fields together), then the median across replicates, then the argmax.
Accuracy = correct treatments / treatments. Crop-level accuracy is the argmax of each crop;
field- and well-level accuracy the argmax of the median of a field's (a well's) crops.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PROB_PREFIX = "prob_"
TREATMENT = ["Metadata_CellLine", "Metadata_Compound", "Metadata_Concentration"]
FIELD = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
WELL = ["Metadata_Plate", "Metadata_Well"]


def class_columns(predictions: pd.DataFrame) -> list[str]:
    cols = [c for c in predictions.columns if c.startswith(PROB_PREFIX)]
    if not cols:
        raise ValueError(f"the predictions have no '{PROB_PREFIX}<moa>' columns")
    return cols


def treatment_keys(predictions: pd.DataFrame) -> list[str]:
    """The columns that name a treatment: (cell line,) compound, concentration. The cell line is
    optional, for tables of single-cell-line datasets written without it."""
    return [c for c in TREATMENT if c != "Metadata_CellLine" or c in predictions.columns]


def treatment_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per treatment: true MoA, predicted MoA, correct, and the aggregated probabilities."""
    prob_cols = class_columns(predictions)
    classes = [c[len(PROB_PREFIX):] for c in prob_cols]
    keys = treatment_keys(predictions)
    out_cols = keys + ["Metadata_MoA", "n_replicates", "n_crops", "predicted_moa", "correct"] + prob_cols
    if predictions.empty:
        return pd.DataFrame(columns=out_cols)
    per_replicate = predictions.groupby(keys + ["Metadata_MoA", "Metadata_Replicate"], sort=True)[prob_cols].median()
    per_treatment = per_replicate.groupby(level=keys + ["Metadata_MoA"], sort=True).median()
    counts = predictions.groupby(keys + ["Metadata_MoA"], sort=True).agg(
        n_replicates=("Metadata_Replicate", "nunique"), n_crops=("Metadata_Replicate", "size")
    )
    table = counts.join(per_treatment).reset_index()
    table["predicted_moa"] = [classes[i] for i in table[prob_cols].to_numpy().argmax(axis=1)]
    table["correct"] = table["predicted_moa"] == table["Metadata_MoA"]
    return table[out_cols]


def _grouped_accuracy(predictions: pd.DataFrame, keys: list[str]) -> tuple[float, int]:
    """(accuracy, number of groups) where a group's prediction is the argmax of the median of its
    crops' probabilities."""
    prob_cols = class_columns(predictions)
    classes = np.array([c[len(PROB_PREFIX):] for c in prob_cols])
    if predictions.empty:
        return float("nan"), 0
    missing = [k for k in keys if k not in predictions.columns]
    if missing:
        raise ValueError(f"the predictions lack the column(s) {', '.join(missing)}")
    groups = predictions.groupby(keys + ["Metadata_MoA"])[prob_cols].median().reset_index()
    predicted = classes[groups[prob_cols].to_numpy().argmax(axis=1)]
    return float(np.mean(predicted == groups["Metadata_MoA"].to_numpy())), len(groups)


def field_accuracy(predictions: pd.DataFrame) -> float:
    """Accuracy per field of view: the median of its crops' probabilities, then the argmax."""
    return _grouped_accuracy(predictions, FIELD)[0]


def well_accuracy(predictions: pd.DataFrame) -> float:
    """Accuracy per well: the median of all its crops' probabilities (all fields), then the argmax."""
    return _grouped_accuracy(predictions, WELL)[0]


def accuracy_by_fold(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per fold plus an ``all`` row: Metadata_Fold, n_crops, crop_accuracy, n_wells,
    well_accuracy, n_treatments, treatment_accuracy."""
    rows = []
    parts = list(predictions.groupby("Metadata_Fold", sort=True)) + [("all", predictions)]
    for fold, part in parts:
        well, n_wells = _grouped_accuracy(part, WELL)
        treatments = treatment_predictions(part)
        rows.append(
            {
                "Metadata_Fold": fold,
                "n_crops": len(part),
                "crop_accuracy": crop_accuracy(part),
                "n_wells": n_wells,
                "well_accuracy": well,
                "n_treatments": len(treatments),
                "treatment_accuracy": float(treatments["correct"].mean()) if len(treatments) else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def bootstrap_interval(correct, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``correct`` (resampling treatments). Seeded."""
    values = np.asarray(correct, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def crop_accuracy(predictions: pd.DataFrame) -> float:
    prob_cols = class_columns(predictions)
    classes = np.array([c[len(PROB_PREFIX):] for c in prob_cols])
    if predictions.empty:
        return float("nan")
    predicted = classes[predictions[prob_cols].to_numpy().argmax(axis=1)]
    return float(np.mean(predicted == predictions["Metadata_MoA"].to_numpy()))


def accuracy_by_moa(treatments: pd.DataFrame) -> pd.DataFrame:
    """Per-MoA treatment accuracy plus an ``all`` row: Metadata_MoA, n_treatments, n_correct, accuracy."""
    grouped = treatments.groupby("Metadata_MoA", sort=True)["correct"].agg(n_treatments="size", n_correct="sum")
    grouped = grouped.reset_index()
    total = pd.DataFrame(
        {"Metadata_MoA": ["all"], "n_treatments": [len(treatments)], "n_correct": [int(treatments["correct"].sum())]}
    )
    table = pd.concat([grouped, total], ignore_index=True)
    table["n_correct"] = table["n_correct"].astype(int)
    table["accuracy"] = table["n_correct"] / table["n_treatments"].where(table["n_treatments"] > 0)
    return table
