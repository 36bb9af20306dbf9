"""Tables for people: the summary across networks, written as TSV and printed aligned."""

from __future__ import annotations

import pandas as pd

from cellmoa.columns import (
    COMPOUND,
    DATASET,
    ENSEMBLE,
    FOLD,
    FOLD_SCHEME,
    MATCH_SCHEME,
    MOA,
    NETWORK,
    PROFILES,
)
from cellmoa.data.datasets import get_dataset
from cellmoa.evaluate import accuracy
from cellmoa.intervals import accuracy_with_intervals

#: the published figure beside ours (the dataset adapter's ``reference_accuracy``: Kensert et
#: al. 2019 for BBBC021 with nsc folds)
REFERENCE_COLUMN = "reference_kensert2019_treatment_accuracy"


#: the two intervals of every accuracy, named in the table captions and the README
INTERVALS = (
    "ci_low/ci_high: 95% percentile bootstrap resampling compounds (a compound's treatments move "
    "together; 2,000 resamples, seeded); exact_ci_low/exact_ci_high: Clopper-Pearson 95% over the "
    "scored treatments"
)


def summarize(
    predictions_by_network: dict[str, pd.DataFrame],
    scheme: str,
    dataset: str,
    matching_by_network: dict[str, pd.DataFrame] | None = None,
    seed: int = 0,
    control: str | None = None,
    baselines: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The summary across networks: one row per network (and the ensemble, and the baselines).

    Each row: treatments, correct, treatment accuracy with its compound-bootstrap and
    Clopper-Pearson 95% intervals (:data:`INTERVALS`), field, well and crop accuracy, the
    nearest-neighbour accuracy (NSC and NSCB, each with the number of treatments scored and its
    intervals) and mAP of MoA retrieval of the embeddings (``matching_by_network``: the tables of
    :func:`cellmoa.profiles.summary.summary_by_scheme`), chance level, and the paper's figure as
    a reference. With more than one network, a row ``Ensemble``: the networks' treatment
    probabilities averaged (see :func:`_ensemble_row`), and its matching from
    ``matching_by_network["Ensemble"]`` where given (the networks' treatment profiles
    concatenated, :func:`cellmoa.profiles.tables.concatenate_profiles`). Then one row per
    ``baselines`` entry (the CellProfiler baseline, :mod:`cellmoa.features.baseline`), scored
    like a network and never part of the ensemble.
    """
    adapter = get_dataset(dataset)
    published = adapter.reference_accuracy if scheme == adapter.reference_scheme else {}
    # the configured adapter's control (a loaddata screen names its own); else the dataset's
    control = adapter.control if control is None else control
    matching = matching_by_network or {}
    rows = [
        _network_row(name, predictions, scheme, dataset, matching.get(name), control, seed)
        | {REFERENCE_COLUMN: published.get(name, float("nan"))}
        for name, predictions in predictions_by_network.items()
    ]
    if len(predictions_by_network) > 1:
        row = _ensemble_row(predictions_by_network, rows[0], control, seed)
        if matching.get(ENSEMBLE) is not None:
            row.update(_all_matching_columns(matching[ENSEMBLE]))
        rows.append(row)
    for name, predictions in (baselines or {}).items():
        row = _network_row(name, predictions, scheme, dataset, matching.get(name), control, seed)
        rows.append(row | {REFERENCE_COLUMN: float("nan")})
    return pd.DataFrame(rows)


def _network_row(name, predictions, scheme, dataset, matching, control, seed) -> dict:
    """One network's (or baseline's) summary row, without the paper's reference."""
    treatments = accuracy.treatment_predictions(predictions, control, source=f"{name} predictions")
    n_classes = len(accuracy.class_columns(predictions))
    row = {
        NETWORK: name,
        DATASET: dataset,
        FOLD_SCHEME: scheme,
        "n_folds": int(predictions[FOLD].nunique()) if FOLD in predictions else 0,
        **_accuracy_columns(treatments, predictions, control, seed),
    }
    row.update(_all_matching_columns(matching))
    row["chance_accuracy"] = 1.0 / n_classes if n_classes else float("nan")
    return row


def _all_matching_columns(matching: pd.DataFrame | None) -> dict:
    """The raw (no prefix) and post-processed (``pp_``) matching columns of one network."""
    if matching is not None and len(matching) and PROFILES in matching.columns:
        variants = [("", matching[matching[PROFILES] == "raw"])]
        post = matching[matching[PROFILES] == "postprocessed"]
        if len(post):
            variants.append(("pp_", post))
    else:
        variants = [("", matching)]
    out = {}
    for prefix, table in variants:
        out.update(_matching_columns(table, prefix))
    return out


def _ensemble_row(
    predictions_by_network: dict[str, pd.DataFrame], template: dict, control, seed: int
) -> dict:
    """The summary row of the networks' ensemble.

    Treatment probabilities averaged over the networks (accuracy and intervals), crop
    probabilities averaged for field/well/crop accuracy; nearest-neighbour columns empty here
    (filled by :func:`summarize` from the ensemble's matches).
    """
    treatments = accuracy.ensemble_treatments(
        {n: accuracy.treatment_predictions(p, control) for n, p in predictions_by_network.items()}
    )
    crops = accuracy.ensemble_crops(predictions_by_network)
    row = {
        key: (float("nan") if isinstance(value, float) else 0 if isinstance(value, int) else value)
        for key, value in template.items()
    }
    row.update(
        {
            NETWORK: ENSEMBLE,
            "n_folds": template["n_folds"],
            **_accuracy_columns(treatments, crops, control, seed),
            "chance_accuracy": template["chance_accuracy"],
        }
    )
    return row


def _matching_columns(matching: pd.DataFrame | None, prefix: str = "") -> dict:
    """NSC and NSCB columns of the summary from a ``summary_by_scheme`` table.

    The table is :func:`cellmoa.profiles.summary.summary_by_scheme`'s; ``prefix`` is ``pp_`` for
    the post-processed profiles.
    """
    by_scheme = matching.set_index(MATCH_SCHEME) if matching is not None and len(matching) else None
    out = {}
    for nn in ("nsc", "nscb"):
        values = (
            by_scheme.loc[nn]
            if by_scheme is not None and nn in by_scheme.index
            else pd.Series(dtype=float)
        )
        out.update(
            {
                f"{prefix}nn_{nn}_n": int(values.get("n", 0)),
                f"{prefix}nn_{nn}_accuracy": values.get("accuracy", float("nan")),
                f"{prefix}nn_{nn}_ci_low": values.get("ci_low", float("nan")),
                f"{prefix}nn_{nn}_ci_high": values.get("ci_high", float("nan")),
                f"{prefix}nn_{nn}_exact_ci_low": values.get("exact_ci_low", float("nan")),
                f"{prefix}nn_{nn}_exact_ci_high": values.get("exact_ci_high", float("nan")),
                f"{prefix}map_{nn}": values.get("mean_average_precision", float("nan")),
                f"{prefix}map_{nn}_n": int(values.get("n_map", 0)),
            }
        )
        if prefix:
            out.update(
                {
                    f"{prefix}nn_{nn}_{k}": values.get(k, float("nan"))
                    for k in ("lift", "lift_ci_low", "lift_ci_high", "lift_p_value")
                }
            )
    return out


def _accuracy_columns(treatments: pd.DataFrame, crops: pd.DataFrame, control, seed: int) -> dict:
    """Treatment accuracy with both intervals, and field, well and crop accuracy."""
    acc = accuracy_with_intervals(
        treatments["correct"].astype(float),
        treatments[COMPOUND],
        seed=seed,
        prefix="treatment_",
    )
    return {
        "n_treatments": acc["treatment_n"],
        "n_correct": acc["treatment_n_correct"],
        "treatment_accuracy": acc["treatment_accuracy"],
        "treatment_accuracy_ci_low": acc["treatment_ci_low"],
        "treatment_accuracy_ci_high": acc["treatment_ci_high"],
        "treatment_accuracy_exact_ci_low": acc["treatment_exact_ci_low"],
        "treatment_accuracy_exact_ci_high": acc["treatment_exact_ci_high"],
        "field_accuracy": accuracy.field_accuracy(crops, control),
        "well_accuracy": accuracy.well_accuracy(crops, control),
        "crop_accuracy": accuracy.crop_accuracy(crops, control),
    }


def _pct(v) -> str:
    """A fraction as a percentage with one decimal; empty for NaN."""
    return "" if pd.isna(v) else f"{100 * v:.1f}"


def _range(row, name: str) -> str:
    """The interval ``<name>_low``-``<name>_high`` of a summary row, in percent."""
    return f"{_pct(row[name + '_low'])}-{_pct(row[name + '_high'])}"


def compact_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary on one screen (percentages).

    Per network the treatment accuracy with its compound-bootstrap and Clopper-Pearson
    intervals, crop accuracy, NSC and NSCB 1-NN accuracy with the treatments scored, mAP, and the
    paper's figure.
    """
    rows = []
    for _, r in summary.iterrows():
        row = {
            "network": r[NETWORK],
            "treatments": f"{int(r['n_correct'])}/{int(r['n_treatments'])}",
            "accuracy %": _pct(r["treatment_accuracy"]),
            "bootstrap 95%": _range(r, "treatment_accuracy_ci"),
            "exact 95%": _range(r, "treatment_accuracy_exact_ci"),
            "crop %": _pct(r["crop_accuracy"]),
        }
        for prefix, label in (("", ""), ("pp_", "post-processed ")):
            if prefix and f"{prefix}nn_nsc_n" not in summary.columns:
                continue
            for nn in ("nsc", "nscb"):
                n = int(r.get(f"{prefix}nn_{nn}_n", 0) or 0)
                row[f"{label}{nn.upper()} % (n)"] = (
                    f"{_pct(r.get(f'{prefix}nn_{nn}_accuracy'))} ({n})" if n else ""
                )
                value = r.get(f"{prefix}map_{nn}")
                row[f"{label}mAP {nn}"] = "" if value is None or pd.isna(value) else f"{value:.3f}"
                lift = r.get(f"{prefix}nn_{nn}_lift")
                if prefix and lift is not None and not pd.isna(lift):
                    low, high = (
                        r.get(f"{prefix}nn_{nn}_lift_ci_low"),
                        r.get(f"{prefix}nn_{nn}_lift_ci_high"),
                    )
                    row[f"{nn.upper()} lift (95%)"] = (
                        f"{100 * lift:+.1f} ({100 * low:+.1f} to {100 * high:+.1f})"
                    )
        row["paper %"] = _pct(r.get(REFERENCE_COLUMN))
        rows.append(row)
    return pd.DataFrame(rows)


def per_moa_table(treatments_by_network: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Treatment accuracy per MoA (rows) and network (columns), with the number of treatments."""
    columns = {}
    counts = None
    for network, treatments in treatments_by_network.items():
        acc = accuracy.accuracy_by_moa(treatments).set_index(MOA)
        columns[network] = acc["accuracy"]
        counts = acc["n_treatments"] if counts is None else counts
    table = pd.DataFrame(columns)
    table.insert(0, "n_treatments", counts)
    return table.reset_index()


def format_table(frame: pd.DataFrame) -> str:
    """A plain aligned text rendering (accuracies as percentages)."""
    shown = frame.copy()
    for col in shown.columns:
        if col.startswith(("map_", "pp_map_")) or col == "mean_average_precision":
            if shown[col].dtype.kind == "f":
                shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
        elif (
            "accuracy" in col
            or col.endswith(("ci_low", "ci_high"))
            or col in _network_columns(frame)
        ):
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{100 * v:.1f}%")
    return shown.to_string(index=False)


def _network_columns(frame: pd.DataFrame) -> set[str]:
    """The per-network accuracy columns of a per-MoA table (floats beside Metadata_MoA)."""
    if MOA not in frame.columns:
        return set()
    return {
        c for c in frame.columns if c not in (MOA, "n_treatments") and frame[c].dtype.kind == "f"
    }
