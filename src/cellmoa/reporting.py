"""Tables for people: the summary across networks, written as TSV and printed aligned."""

from __future__ import annotations

import pandas as pd

from cellmoa import evaluation
from cellmoa.datasets import get_dataset

#: the published figure beside ours (the dataset adapter's ``reference_accuracy``: Kensert et
#: al. 2019 for BBBC021 with nsc folds)
REFERENCE_COLUMN = "reference_kensert2019_treatment_accuracy"


def summarize(
    predictions_by_network: dict[str, pd.DataFrame],
    scheme: str,
    dataset: str,
    nn_by_network: dict[str, dict[str, float]] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per network: treatments, correct, treatment accuracy with a seeded bootstrap 95%
    interval over treatments, field and crop accuracy, nearest-neighbour accuracy of the
    embeddings (NSC and NSCB), chance level, and the paper's figure as a reference."""
    adapter = get_dataset(dataset)
    published = adapter.reference_accuracy if scheme == adapter.reference_scheme else {}
    rows = []
    for network, predictions in predictions_by_network.items():
        treatments = evaluation.treatment_predictions(predictions)
        n_classes = len(evaluation.class_columns(predictions))
        n = len(treatments)
        correct = int(treatments["correct"].sum())
        low, high = evaluation.bootstrap_interval(treatments["correct"].to_numpy(), seed=seed)
        nn = (nn_by_network or {}).get(network, {})
        rows.append(
            {
                "Metadata_Network": network,
                "Metadata_Dataset": dataset,
                "Metadata_FoldScheme": scheme,
                "n_folds": int(predictions["Metadata_Fold"].nunique()) if "Metadata_Fold" in predictions else 0,
                "n_treatments": n,
                "n_correct": correct,
                "treatment_accuracy": correct / n if n else float("nan"),
                "treatment_accuracy_ci_low": low,
                "treatment_accuracy_ci_high": high,
                "field_accuracy": evaluation.field_accuracy(predictions),
                "well_accuracy": evaluation.well_accuracy(predictions),
                "crop_accuracy": evaluation.crop_accuracy(predictions),
                "nn_accuracy_nsc": nn.get("nsc", float("nan")),
                "nn_accuracy_nscb": nn.get("nscb", float("nan")),
                "chance_accuracy": 1.0 / n_classes if n_classes else float("nan"),
                REFERENCE_COLUMN: published.get(network, float("nan")),
            }
        )
    return pd.DataFrame(rows)


def per_moa_table(treatments_by_network: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Treatment accuracy per MoA (rows) and network (columns), with the number of treatments."""
    columns = {}
    counts = None
    for network, treatments in treatments_by_network.items():
        acc = evaluation.accuracy_by_moa(treatments).set_index("Metadata_MoA")
        columns[network] = acc["accuracy"]
        counts = acc["n_treatments"] if counts is None else counts
    table = pd.DataFrame(columns)
    table.insert(0, "n_treatments", counts)
    return table.reset_index()


def format_table(frame: pd.DataFrame) -> str:
    """A plain aligned text rendering (accuracies as percentages)."""
    shown = frame.copy()
    for col in shown.columns:
        if "accuracy" in col or col.endswith(("_ci_low", "_ci_high")) or col in _network_columns(frame):
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{100 * v:.1f}%")
    return shown.to_string(index=False)


def _network_columns(frame: pd.DataFrame) -> set[str]:
    """The per-network accuracy columns of a per-MoA table (floats beside Metadata_MoA)."""
    if "Metadata_MoA" not in frame.columns:
        return set()
    return {c for c in frame.columns if c not in ("Metadata_MoA", "n_treatments") and frame[c].dtype.kind == "f"}
