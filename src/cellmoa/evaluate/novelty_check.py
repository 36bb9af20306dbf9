"""How well a profile model flags MoAs nobody annotated: every MoA hidden in turn.

The measurement behind ``cellmoa predict-profiles``' ``novelty_by_moa.tsv`` and the novelty
figures of docs/benchmarks.md (:mod:`cellmoa.evaluate.profile_calls`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellmoa.columns import COMPOUND, MOA
from cellmoa.evaluate.profile_calls import predict_profiles


def _held_out_p_values(typicality: np.ndarray, compounds: np.ndarray) -> np.ndarray:
    """Each treatment's novelty p-value among the other compounds' treatments.

    The conformal p-value of :meth:`Calibration.novelty_p_values`, its own compound left out.
    """
    frame = pd.DataFrame({"c": compounds, "s": typicality})
    frame["w"] = 1.0 / frame.groupby("c")["c"].transform("size")
    out = np.empty(len(frame))
    for i, (c, s) in enumerate(zip(frame["c"], frame["s"])):
        others = frame[frame["c"] != c]
        out[i] = (1.0 + others.loc[others["s"] <= s, "w"].sum()) / (others["c"].nunique() + 1.0)
    return out


def hidden_moa_check(
    annotated: pd.DataFrame, coverage: float = 0.9, score: str = "lac", **model_settings
) -> pd.DataFrame:
    """How well novel MoAs are flagged: every MoA hidden in turn, its treatments called new.

    Parameters
    ----------
    annotated : pandas.DataFrame
        Annotated treatment profiles (as for :class:`ProfileModel`).
    coverage : float
        Nominal coverage (the novelty rule flags at ``p <= 1 - coverage``).
    score : {"lac", "aps"}
        Nonconformity score of the sets.
    **model_settings
        As for :func:`predict_profiles`.

    Returns
    -------
    pandas.DataFrame
        One row per hidden MoA (with at least two other MoAs and three other compounds left):
        ``hidden_moa``, ``n_compounds``, ``n_treatments``, ``flagged`` (its treatments flagged
        ``novel`` by any rule), ``flagged_fraction``, ``known_flagged_fraction`` (the other
        MoAs' treatments, each held out with its compound, flagged by the novelty p-value rule:
        at most about ``1 - coverage`` by construction), ``auroc`` (of the novelty score, the
        hidden MoA's treatments against the known ones' held-out scores), ``auroc_nearest`` (the
        same for the naive score, one minus the similarity to the nearest annotated treatment);
        then a row ``(pooled)`` over every hidden MoA's experiment.
    """
    from sklearn.metrics import roc_auc_score

    rows, pooled = [], []
    for moa in sorted(annotated[MOA].astype(str).unique()):
        result = _hide(annotated, moa, coverage, score, model_settings)
        if result is not None:
            rows.append(result[0])
            pooled.append(result[1])
    table = pd.DataFrame(rows)
    if rows:
        labels, scores, naive = (np.concatenate(parts) for parts in zip(*pooled))
        total = table[["n_treatments", "flagged"]].sum()
        pooled = {
            "hidden_moa": "(pooled)",
            "n_compounds": int(table["n_compounds"].sum()),
            "n_treatments": int(total["n_treatments"]),
            "flagged": int(total["flagged"]),
            "flagged_fraction": float(total["flagged"] / total["n_treatments"]),
            "known_flagged_fraction": float(table["known_flagged_fraction"].mean()),
            "auroc": float(roc_auc_score(labels, scores)),
            "auroc_nearest": float(roc_auc_score(labels, naive)),
        }
        table = pd.concat([table, pd.DataFrame([pooled])], ignore_index=True)
    return table


def _hide(annotated: pd.DataFrame, moa: str, coverage: float, score: str, settings: dict):
    """One MoA hidden: its row of :func:`hidden_moa_check` and (labels, scores, naive scores).

    None where too few MoAs or compounds are left to call it against.
    """
    from sklearn.metrics import roc_auc_score

    is_hidden = annotated[MOA].astype(str).eq(moa).to_numpy()
    known = annotated[~is_hidden]
    if known[MOA].nunique() < 2 or known[COMPOUND].nunique() < 3:
        return None
    hidden = annotated[is_hidden].drop(columns=MOA)
    out = predict_profiles(
        known, hidden, coverage, score, neighbours=0, levels=(coverage,), **settings
    )
    calls, loco = out["predictions"], out["annotated"]
    novel = calls["novel"].to_numpy(bool)
    known_scores = loco["novelty_score"].to_numpy(np.float64)
    p_known = _held_out_p_values(-known_scores, loco[COMPOUND].astype(str).to_numpy())
    labels = np.r_[np.ones(len(calls)), np.zeros(len(loco))]
    scores = np.r_[calls["novelty_score"].to_numpy(np.float64), known_scores]
    naive = (
        1.0
        - np.r_[
            calls["nearest_similarity"].to_numpy(np.float64),
            loco["nearest_similarity"].to_numpy(np.float64),
        ]
    )
    row = {
        "hidden_moa": moa,
        "n_compounds": int(annotated.loc[is_hidden, COMPOUND].nunique()),
        "n_treatments": int(is_hidden.sum()),
        "flagged": int(novel.sum()),
        "flagged_fraction": float(novel.mean()),
        "known_flagged_fraction": float((p_known <= 1.0 - coverage).mean()),
        "auroc": float(roc_auc_score(labels, scores)),
        "auroc_nearest": float(roc_auc_score(labels, naive)),
    }
    return row, (labels, scores, naive)
