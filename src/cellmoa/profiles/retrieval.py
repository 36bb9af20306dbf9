"""Mean average precision (mAP) of MoA retrieval, computed with copairs (the field's library).

Treatment level: each treatment profile is a query; the other treatments are ranked by cosine
similarity. Positives are the treatments of the same MoA and another compound; negatives those of
another MoA. Under ``nscb`` both must also come from a disjoint set of batches (a treatment seen in
several batches shares a batch with any treatment of one of them). Treatments of the query's own
compound (and, for ``nscb``, of a shared batch) are in neither list, exactly as in 1-NN matching
(:mod:`cellmoa.profiles.nearest`). A query without positives has no AP (NaN) and is not in the mean.

copairs finds the pairs (``find_pairs``, and ``find_pairs_multilabel`` for the set-valued batches
of ``nscb``), computes the similarities and the average precision of each ranked list; for
``nsc`` the result is exactly :func:`copairs.map.average_precision`.

>>> import numpy as np, pandas as pd
>>> profiles = pd.DataFrame({"Metadata_Compound": ["a", "b", "c"],
...                          "Metadata_Concentration": [1.0] * 3,
...                          "Metadata_MoA": ["X", "X", "Y"],
...                          "f1": [1.0, 0.9, 0.0], "f2": [0.0, 0.1, 1.0]})
>>> average_precision(profiles, "nsc")["average_precision"].round(2).tolist()
[1.0, 1.0, nan]
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import pandas as pd

from cellmoa.columns import BATCH, BATCH_LIST, COMPOUND, CONCENTRATION, MOA
from cellmoa.validation import TableError, feature_columns

log = logging.getLogger(__name__)

SCHEMES = ("nsc", "nscb")
OUTPUT = [
    COMPOUND,
    CONCENTRATION,
    MOA,
    "average_precision",
    "normalized_average_precision",
    "n_positives",
    "n_ranked",
]


@contextlib.contextmanager
def _quiet_copairs():
    """Keep copairs' INFO messages (one per step) out of a job's log; its warnings stay."""
    logger = logging.getLogger("copairs")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def average_precision(profiles: pd.DataFrame, scheme: str = "nsc") -> pd.DataFrame:
    """Average precision of each treatment profile.

    Parameters
    ----------
    profiles : pandas.DataFrame
        Treatment profiles, one row per treatment
        (:func:`cellmoa.profiles.tables.treatment_profiles`).
    scheme : {"nsc", "nscb"}
        Which treatments are ranked (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`OUTPUT`, with ``n_positives`` and ``n_ranked`` the positives and the
        length of each treatment's ranked list.
    """
    with _quiet_copairs():
        return _average_precision(profiles, scheme)


def _average_precision(profiles: pd.DataFrame, scheme: str) -> pd.DataFrame:
    import copairs.compute
    from copairs.map import average_precision as copairs_ap
    from copairs.map.average_precision import build_rank_lists
    from copairs.map.normalization import normalize_ap
    from copairs.matching import UnpairedException, find_pairs_multilabel

    if scheme not in SCHEMES:
        raise ValueError(f"unknown matching scheme {scheme!r}; use 'nsc' or 'nscb'")
    feats = profiles[feature_columns(profiles)].to_numpy(dtype=np.float64)
    meta = profiles[[COMPOUND, CONCENTRATION, MOA]].reset_index(drop=True).copy()
    out = meta.copy()
    out["average_precision"] = np.nan
    out["normalized_average_precision"] = np.nan
    out["n_positives"] = 0
    out["n_ranked"] = 0
    if len(meta) < 2:
        return out[OUTPUT]
    meta[COMPOUND] = meta[COMPOUND].astype(str)
    meta[MOA] = meta[MOA].astype(str)
    if scheme == "nsc":
        try:
            result = copairs_ap(
                meta[[COMPOUND, MOA]],
                feats,
                pos_sameby=[MOA],
                pos_diffby=[COMPOUND],
                neg_sameby=[],
                neg_diffby=[MOA],
                distance="cosine",
                progress_bar=False,
            )
        except UnpairedException as e:
            log.warning("mAP (nsc): %s; no treatment has an AP", e)
            return out[OUTPUT]
        out["average_precision"] = result["average_precision"].to_numpy()
        out["normalized_average_precision"] = result["normalized_average_precision"].to_numpy()
        out["n_positives"] = result["n_pos_pairs"].to_numpy()
        out["n_ranked"] = result["n_total_pairs"].to_numpy()
    else:
        if BATCH not in profiles.columns:
            raise TableError(f"mAP under nscb needs the batch of every profile (a {BATCH} column)")
        meta[BATCH_LIST] = [sorted(map(str, b)) for b in profiles[BATCH]]
        pos = find_pairs_multilabel(
            meta, sameby=[MOA], diffby=[COMPOUND, BATCH_LIST], multilabel_col=BATCH_LIST
        )
        neg = find_pairs_multilabel(
            meta, sameby=[], diffby=[MOA, BATCH_LIST], multilabel_col=BATCH_LIST
        )
        pos = np.asarray(pos, dtype=np.uint32).reshape(-1, 2)
        neg = np.asarray(neg, dtype=np.uint32).reshape(-1, 2)
        if len(pos) == 0 or len(neg) == 0:
            log.warning(
                "mAP (nscb): no %s pairs in a disjoint batch; no treatment has an AP",
                "positive" if len(pos) == 0 else "negative",
            )
            return out[OUTPUT]
        similarity = copairs.compute.get_similarity_fn("cosine", progress_bar=False)
        pos_sims = similarity(feats, pos, 20000)
        neg_sims = similarity(feats, neg, 20000)
        paired, rel_k, counts = build_rank_lists(pos, neg, pos_sims, neg_sims)
        ap, configs = copairs.compute.ap_contiguous(rel_k, counts)
        out.loc[paired, "average_precision"] = ap
        out.loc[paired, "normalized_average_precision"] = normalize_ap(
            ap, configs[:, 0], configs[:, 1] - configs[:, 0]
        )
        out.loc[paired, "n_positives"] = configs[:, 0]
        out.loc[paired, "n_ranked"] = configs[:, 1]
    out.loc[out["n_positives"] == 0, ["average_precision", "normalized_average_precision"]] = np.nan
    out["n_positives"] = out["n_positives"].astype(int)
    out["n_ranked"] = out["n_ranked"].astype(int)
    return out[OUTPUT]


def mean_average_precision(ap: pd.DataFrame) -> tuple[float, int]:
    """(mAP over the treatments that have an AP, their number)."""
    scored = ap["average_precision"].dropna()
    return (float(scored.mean()) if len(scored) else float("nan")), int(len(scored))


def map_by_moa(
    ap: pd.DataFrame, null_size: int = 10000, seed: int = 0, threshold: float = 0.05
) -> pd.DataFrame:
    """Per-MoA mAP with copairs' permutation p-values and Benjamini-Hochberg correction.

    :func:`copairs.map.mean_average_precision`, grouping the treatments' APs by MoA.
    """
    from copairs.map import mean_average_precision as copairs_map

    scored = ap.dropna(subset=["average_precision"]).rename(
        columns={"n_positives": "n_pos_pairs", "n_ranked": "n_total_pairs"}
    )
    if scored.empty:
        return pd.DataFrame(
            columns=[
                MOA,
                "mean_average_precision",
                "p_value",
                "corrected_p_value",
                "below_corrected_p",
            ]
        )
    with _quiet_copairs():
        table = copairs_map(
            scored,
            sameby=[MOA],
            null_size=null_size,
            threshold=threshold,
            seed=seed,
            progress_bar=False,
        )
    keep = [MOA, "mean_average_precision", "p_value", "corrected_p_value", "below_corrected_p"]
    return table[keep].sort_values(MOA).reset_index(drop=True)
