"""The nearest annotated treatments of each unannotated treatment (cosine of the profiles)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellmoa import validation
from cellmoa.columns import COMPOUND, COMPOUND_DOSE, CONCENTRATION, MOA
from cellmoa.profiles.tables import UNANNOTATED


def nearest_annotated(
    profiles: pd.DataFrame, k: int = 3, unannotated_label: str = UNANNOTATED
) -> pd.DataFrame:
    """For every unannotated treatment profile its ``k`` most similar annotated treatments.

    Parameters
    ----------
    profiles : pandas.DataFrame
        Treatment profiles (:func:`cellmoa.profiles.tables.fold_profiles` with
        ``unannotated=True``), the unannotated ones with ``Metadata_MoA`` = ``unannotated_label``.
    k : int
        How many neighbours.
    unannotated_label : str
        The MoA label of the unannotated treatments.

    Returns
    -------
    pandas.DataFrame
        One row per unannotated treatment, keyed by compound and concentration: columns
        ``neighbour_<i>_compound``, ``_concentration``, ``_moa``, ``_similarity`` (cosine;
        i = 1..k, most similar first).

    Examples
    --------
    >>> p = pd.DataFrame({"Metadata_Compound": ["a", "b", "new"],
    ...                   "Metadata_Concentration": [1.0, 1.0, 2.0],
    ...                   "Metadata_MoA": ["X", "Y", "(unannotated)"],
    ...                   "f1": [1.0, 0.0, 0.9], "f2": [0.0, 1.0, 0.1]})
    >>> near = nearest_annotated(p, k=1)
    >>> near[["Metadata_Compound", "neighbour_1_compound", "neighbour_1_moa"]].values.tolist()
    [['new', 'a', 'X']]
    """
    x = profiles[validation.feature_columns(profiles)].to_numpy(np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    new = (profiles[MOA] == unannotated_label).to_numpy()
    known = np.flatnonzero(~new)
    similarity = x[new] @ x[known].T
    rows = []
    for i, row in enumerate(profiles.loc[new, COMPOUND_DOSE].itertuples(index=False)):
        out = {COMPOUND: row[0], CONCENTRATION: row[1]}
        order = np.argsort(-similarity[i], kind="stable")[:k]
        for rank in range(k):
            j = known[order[rank]] if rank < len(order) else None
            out[f"neighbour_{rank + 1}_compound"] = (
                profiles[COMPOUND].iloc[j] if j is not None else None
            )
            out[f"neighbour_{rank + 1}_concentration"] = (
                profiles[CONCENTRATION].iloc[j] if j is not None else np.nan
            )
            out[f"neighbour_{rank + 1}_moa"] = profiles[MOA].iloc[j] if j is not None else None
            out[f"neighbour_{rank + 1}_similarity"] = (
                float(similarity[i, order[rank]]) if j is not None else np.nan
            )
        rows.append(out)
    return pd.DataFrame(
        rows,
        columns=[COMPOUND, CONCENTRATION]
        + [
            f"neighbour_{r}_{c}"
            for r in range(1, k + 1)
            for c in ("compound", "concentration", "moa", "similarity")
        ],
    )
