"""Conformal prediction sets of MoAs, calibrated on held-out probabilities.

Split conformal prediction (Vovk et al. 2005) with adaptive prediction sets (Romano et al. 2020).

The calibration scores come from treatments whose MoA is known and whose probabilities were made
by a model that never saw their compound (cellmoa's leave-one-compound-out folds), so they behave
like the scores of a new compound's treatments. Two scores:

- ``lac`` (least ambiguous set-valued classifier): 1 - p(true MoA); sets are the MoAs whose
  probability is at least 1 - q. The smallest sets on average.
- ``aps`` (adaptive prediction sets): the total probability of the MoAs at least as probable as
  the true one; sets are the most probable MoAs until their total reaches q. Larger where the
  model is unsure, smaller where it is sure (deterministic, non-randomised variant: coverage is
  at least the nominal level, a little above it).

The treatments of one compound are not exchangeable with each other (they share the compound's
deviation from its MoA), so calibration is at the compound level: every compound weighs the same
(its treatments share a weight of 1) and the conformal quantile is taken over compounds, with the
``(n + 1)`` correction counted in compounds. With ``n`` calibration compounds the guarantee is
that a new compound's treatment lands in its set with probability at least ``coverage`` (over
draws of compounds), provided the new compound's MoA is one of the calibrated ones: a compound
of an MoA the models never learned has no right answer in any set, which is why a small top
probability or an empty set flags it as possibly novel.

>>> probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
>>> scores = nonconformity(probs, np.array([0, 1, 1, 2]), "lac")
>>> scores.round(2).tolist()
[0.3, 0.6, 0.2, 0.6]
>>> q = conformal_quantile(scores, ["a", "b", "c", "d"], coverage=0.5)
>>> prediction_sets(np.array([[0.45, 0.45, 0.1]]), q, "lac").tolist()
[[True, True, False]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellmoa.columns import COMPOUND

METHODS = ("lac", "aps")


def _check(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown conformal score {method!r}; use one of {', '.join(METHODS)}")


def nonconformity(probabilities: np.ndarray, labels: np.ndarray, method: str = "aps") -> np.ndarray:
    """Nonconformity score of each row's true class (column index in ``labels``).

    Higher means the model found the truth less plausible.
    """
    _check(method)
    p = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    if p.ndim != 2 or len(p) != len(labels):
        raise ValueError(f"{len(labels)} labels for probabilities of shape {p.shape}")
    true = p[np.arange(len(p)), labels]
    if method == "lac":
        return 1.0 - true
    return np.where(p >= true[:, None], p, 0.0).sum(axis=1)


def conformal_quantile(scores, compounds, coverage: float = 0.9) -> float:
    """The compound-level split-conformal threshold.

    Each compound's treatments share a weight of 1, and the threshold is the smallest score whose
    weighted share of compounds at or below it reaches ``ceil((n + 1) * coverage) / n`` (``n``
    compounds). ``inf`` when there are too few compounds for that level (every set is then every
    MoA).

    Examples
    --------
    >>> conformal_quantile([0.1, 0.2, 0.9], ["a", "a", "b"], coverage=0.3)
    0.2
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be between 0 and 1, not {coverage}")
    scores = np.asarray(scores, dtype=np.float64)
    compounds = np.asarray(compounds)
    if len(scores) != len(compounds) or len(scores) == 0:
        raise ValueError(
            f"{len(scores)} scores for {len(compounds)} compounds (need at least one, aligned)"
        )
    frame = pd.DataFrame({"c": compounds, "s": scores})
    frame["w"] = 1.0 / frame.groupby("c")["c"].transform("size")
    n = frame["c"].nunique()
    level = np.ceil((n + 1) * coverage) / n
    if level > 1.0:
        return float("inf")
    frame = frame.sort_values("s", kind="stable")
    cumulative = frame["w"].cumsum().to_numpy() / n
    index = int(np.searchsorted(cumulative, level - 1e-12))
    return float(frame["s"].to_numpy()[min(index, len(frame) - 1)])


def prediction_sets(probabilities: np.ndarray, threshold: float, method: str = "aps") -> np.ndarray:
    """Boolean (rows, classes): the classes in each row's set at ``threshold``."""
    _check(method)
    p = np.asarray(probabilities, dtype=np.float64)
    if method == "lac":
        return p >= 1.0 - threshold - 1e-12
    # a class is in the set when its own APS score (the mass of the classes at least as
    # probable as it) is within the threshold: the same rule as the calibration score
    mass = (p[:, None, :] * (p[:, None, :] >= p[:, :, None])).sum(axis=2)
    return mass <= threshold + 1e-12


def leave_one_compound_out(
    probabilities: np.ndarray,
    labels: np.ndarray,
    compounds,
    coverage: float = 0.9,
    method: str = "aps",
) -> pd.DataFrame:
    """Honest coverage on the calibration treatments themselves.

    Each compound's treatments get the sets of a threshold calibrated on the other compounds.
    One row per treatment: ``Metadata_Compound``, ``threshold``, ``covered`` (the true class is
    in the set), ``set_size``.
    """
    scores = nonconformity(probabilities, labels, method)
    compounds = np.asarray(compounds)
    rows = []
    for compound in pd.unique(compounds):
        mine = compounds == compound
        q = (
            conformal_quantile(scores[~mine], compounds[~mine], coverage)
            if (~mine).any()
            else float("inf")
        )
        sets = prediction_sets(np.asarray(probabilities)[mine], q, method)
        truth = np.asarray(labels)[mine]
        for s, t in zip(sets, truth):
            rows.append(
                {
                    COMPOUND: compound,
                    "threshold": q,
                    "covered": bool(s[t]),
                    "set_size": int(s.sum()),
                }
            )
    return pd.DataFrame(rows)
