"""Tables for people: the summary across networks, written as TSV and printed aligned."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cellmoa import evaluation

#: Kensert et al. (2019), BBBC021, leave-one-compound-out, treatment-level accuracy (103 treatments).
PAPER_ACCURACY = {"ResNet50": 0.971, "InceptionV3": 0.971, "InceptionResNetV2": 0.951}


def summarize(predictions_by_network: dict[str, pd.DataFrame], scheme: str, dataset: str) -> pd.DataFrame:
    """One row per network: treatments, correct, treatment accuracy, crop accuracy, chance level."""
    rows = []
    for network, predictions in predictions_by_network.items():
        treatments = evaluation.treatment_predictions(predictions)
        n_classes = len(evaluation.class_columns(predictions))
        n = len(treatments)
        correct = int(treatments["correct"].sum())
        rows.append(
            {
                "network": network,
                "dataset": dataset,
                "fold_scheme": scheme,
                "n_folds": int(predictions["Metadata_Fold"].nunique()) if "Metadata_Fold" in predictions else 0,
                "n_treatments": n,
                "n_correct": correct,
                "treatment_accuracy": correct / n if n else float("nan"),
                "crop_accuracy": evaluation.crop_accuracy(predictions),
                "chance_accuracy": 1.0 / n_classes if n_classes else float("nan"),
                "paper_treatment_accuracy": PAPER_ACCURACY.get(network, float("nan")) if dataset == "bbbc021" and scheme == "nsc" else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def format_table(frame: pd.DataFrame) -> str:
    """A plain aligned text rendering (floats as percentages where they are accuracies)."""
    shown = frame.copy()
    for col in shown.columns:
        if "accuracy" in col:
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{100 * v:.1f}%")
    return shown.to_string(index=False)


def read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])
