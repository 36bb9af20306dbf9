"""The summary of a matching table: one row per scheme (and per kind of profiles).

For each matching scheme (``nsc``, ``nscb``) and, where the matches have it, each kind of
profiles (``raw``, ``postprocessed``; column ``Metadata_Profiles``): the 1-NN accuracy over the
scored treatments with the compound-bootstrap and Clopper-Pearson intervals
(:func:`cellmoa.intervals.accuracy_with_intervals`), the mAP of MoA retrieval
(:func:`cellmoa.profiles.retrieval.mean_average_precision`) and, for post-processed profiles,
the paired lift over the raw ones on the same treatments
(:func:`cellmoa.intervals.paired_difference`).

Examples
--------
>>> matches = pd.DataFrame({"Metadata_MatchScheme": ["nsc"] * 3,
...                         "Metadata_Compound": ["a", "b", "c"],
...                         "scored": [True, True, False], "correct": [1.0, 0.0, np.nan]})
>>> summary_by_scheme(matches)[["Metadata_MatchScheme", "n_treatments", "n", "accuracy"]]
  Metadata_MatchScheme  n_treatments  n  accuracy
0                  nsc             3  2       0.5
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellmoa.columns import COMPOUND, CONCENTRATION, MATCH_SCHEME, PROFILES
from cellmoa.intervals import accuracy_with_intervals, paired_difference
from cellmoa.profiles.retrieval import mean_average_precision


def summary_by_scheme(
    matches: pd.DataFrame, aps: pd.DataFrame | None = None, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """One row per scheme (and kind of profiles): accuracy with intervals, mAP and lift.

    Parameters
    ----------
    matches : pandas.DataFrame
        1-NN matches (:func:`cellmoa.profiles.nearest.match_and_rank`,
        :func:`cellmoa.profiles.nearest.fold_matches`): ``Metadata_MatchScheme``, optionally
        ``Metadata_Profiles``, ``Metadata_Compound``, ``scored`` and ``correct``.
    aps : pandas.DataFrame, optional
        The treatments' average precisions, with the same key columns.
    seed : int
        Seed of the compound bootstrap.
    level : float
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        Per scheme (and :data:`cellmoa.columns.PROFILES`, where the matches have it):
        ``n_treatments``, scored treatments (``n``), ``n_correct``, 1-NN ``accuracy`` with the
        compound-bootstrap interval (``ci_low``/``ci_high``) and the Clopper-Pearson one
        (``exact_ci_*``), ``mean_average_precision`` with ``n_map``, the number of treatments
        that have an AP; post-processed rows also the paired lift over the raw profiles on the
        same treatments (``lift``, ``lift_ci_low``/``lift_ci_high``, ``gained``, ``lost``,
        ``lift_p_value``: see :func:`cellmoa.intervals.paired_difference`).
    """
    rows = []
    keys = ([PROFILES] if PROFILES in matches.columns else []) + [MATCH_SCHEME]
    for key, group in matches.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        scored = group[group["scored"].astype(bool)]
        row = {**dict(zip(keys, key)), "n_treatments": len(group)}
        row.update(
            accuracy_with_intervals(scored["correct"].astype(float), scored[COMPOUND], level, seed)
        )
        if aps is not None and len(aps):
            mask = np.ones(len(aps), bool)
            for k, v in zip(keys, key):
                mask &= (aps[k] == v).to_numpy()
            m, n = mean_average_precision(aps[mask])
        else:
            m, n = float("nan"), 0
        row.update({"mean_average_precision": m, "n_map": n})
        if row.get(PROFILES) == "postprocessed":
            row.update(_lift(matches, row[MATCH_SCHEME], level, seed))
        rows.append(row)
    return pd.DataFrame(rows)


def _lift(matches: pd.DataFrame, scheme: str, level: float, seed: int) -> dict:
    """The post-processed profiles' accuracy minus the raw ones' on the same treatments.

    With its paired compound-bootstrap interval and McNemar p-value
    (:func:`cellmoa.intervals.paired_difference`).
    """
    keys = [COMPOUND, CONCENTRATION]
    mine = matches[matches[MATCH_SCHEME] == scheme]
    raw = mine[mine[PROFILES] == "raw"].set_index(keys)
    post = mine[mine[PROFILES] == "postprocessed"].set_index(keys)
    both = raw[["correct", "scored"]].join(
        post[["correct", "scored"]], lsuffix="_raw", rsuffix="_post", how="inner"
    )
    both = both[both["scored_raw"].astype(bool) & both["scored_post"].astype(bool)]
    return paired_difference(
        both["correct_raw"].astype(float),
        both["correct_post"].astype(float),
        both.index.get_level_values(COMPOUND),
        level=level,
        seed=seed,
    )
