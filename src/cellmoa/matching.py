"""Nearest-neighbour MoA evaluation of profiles (Ljosa et al. 2013; Ando et al. 2017).

Works on any profile table: ``Metadata_*`` columns plus numeric feature columns, one row per crop,
cell, field or well (CNN embeddings from cellmoa, or CellProfiler/pycytominer profiles alike).

1. per treatment (compound, concentration) the mean profile;
2. each treatment takes the MoA of its nearest other treatment by cosine similarity, excluding
   treatments of the same compound ("nsc"), or of the same compound or a shared batch ("nscb");
3. accuracy = treatments whose neighbour has their MoA / treatments with an eligible neighbour.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COMPOUND = "Metadata_Compound"
CONCENTRATION = "Metadata_Concentration"
MOA = "Metadata_MoA"
BATCH = "Metadata_Batch"


def feature_columns(table: pd.DataFrame) -> list[str]:
    """Numeric columns that are not metadata."""
    cols = [c for c in table.columns if not c.startswith("Metadata_") and pd.api.types.is_numeric_dtype(table[c])]
    if not cols:
        raise ValueError("the profile table has no numeric feature columns besides Metadata_*")
    return cols


def treatment_profiles(table: pd.DataFrame) -> pd.DataFrame:
    """Mean feature vector per treatment, with its MoA and the set of batches it was seen in."""
    for col in (COMPOUND, CONCENTRATION, MOA):
        if col not in table.columns:
            raise ValueError(f"the profile table needs a {col} column")
    features = feature_columns(table)
    keys = [COMPOUND, CONCENTRATION, MOA]
    means = table.groupby(keys, sort=True)[features].mean()
    out = means.reset_index()
    if BATCH in table.columns:
        batches = table.groupby(keys, sort=True)[BATCH].agg(lambda b: frozenset(map(str, b)))
        out[BATCH] = batches.to_numpy()
    else:
        out[BATCH] = [frozenset()] * len(out)
    return out


def nearest_neighbours(profiles: pd.DataFrame, scheme: str = "nsc") -> pd.DataFrame:
    """For every treatment its nearest eligible neighbour: one row per treatment with the
    neighbour's compound, concentration, MoA, the cosine similarity and ``correct``."""
    if scheme not in ("nsc", "nscb"):
        raise ValueError(f"unknown matching scheme {scheme!r}; use 'nsc' or 'nscb'")
    features = [c for c in feature_columns(profiles)]
    x = profiles[features].to_numpy(dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0, 1.0, norms)
    similarity = x @ x.T
    compounds = profiles[COMPOUND].to_numpy()
    batches = list(profiles[BATCH])
    rows = []
    for i in range(len(profiles)):
        eligible = compounds != compounds[i]
        if scheme == "nscb":
            eligible &= np.array([not (batches[i] & b) for b in batches])
        candidates = np.flatnonzero(eligible)
        base = {COMPOUND: compounds[i], CONCENTRATION: profiles[CONCENTRATION].iloc[i], MOA: profiles[MOA].iloc[i]}
        if len(candidates) == 0:
            rows.append({**base, "neighbour_compound": None, "neighbour_concentration": np.nan,
                         "neighbour_moa": None, "similarity": np.nan, "correct": np.nan})
            continue
        j = candidates[np.argmax(similarity[i, candidates])]
        rows.append({
            **base,
            "neighbour_compound": compounds[j],
            "neighbour_concentration": profiles[CONCENTRATION].iloc[j],
            "neighbour_moa": profiles[MOA].iloc[j],
            "similarity": float(similarity[i, j]),
            "correct": bool(profiles[MOA].iloc[j] == profiles[MOA].iloc[i]),
        })
    return pd.DataFrame(rows)


def nearest_neighbour_accuracy(table: pd.DataFrame, scheme: str = "nsc") -> float:
    """Treatment-level 1-NN accuracy of a profile table (NaN if no treatment has a neighbour)."""
    matches = nearest_neighbours(treatment_profiles(table), scheme)
    scored = matches["correct"].dropna()
    return float(scored.mean()) if len(scored) else float("nan")


def embedding_table(metadata: pd.DataFrame, embeddings: np.ndarray) -> pd.DataFrame:
    """A profile table from cellmoa tensors metadata (one row per crop) and crop embeddings."""
    if len(metadata) != len(embeddings):
        raise ValueError(f"{len(embeddings)} embeddings for {len(metadata)} crops: they must be aligned row by row")
    table = pd.DataFrame({
        COMPOUND: metadata["compound"].to_numpy(),
        CONCENTRATION: metadata["concentration"].to_numpy(),
        MOA: metadata["moa"].to_numpy(),
        BATCH: metadata["batch"].to_numpy(),
    })
    features = pd.DataFrame(np.asarray(embeddings, dtype=np.float32), columns=[f"f{i}" for i in range(embeddings.shape[1])])
    return pd.concat([table, features], axis=1)


def fold_matches(metadata: pd.DataFrame, embeddings_by_compound: dict[str, np.ndarray], schemes=("nsc", "nscb")) -> pd.DataFrame:
    """Nearest-neighbour matches of each held-out compound's treatments, each computed with the
    embeddings of the model of its own fold (which never trained on that compound)."""
    rows = []
    for compound, embeddings in embeddings_by_compound.items():
        profiles = treatment_profiles(embedding_table(metadata, embeddings))
        for scheme in schemes:
            matches = nearest_neighbours(profiles, scheme)
            matches = matches[matches[COMPOUND] == compound].copy()
            matches.insert(0, "Metadata_MatchScheme", scheme)
            rows.append(matches)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def accuracy_by_scheme(matches: pd.DataFrame) -> dict[str, float]:
    out = {}
    for scheme, group in matches.groupby("Metadata_MatchScheme"):
        scored = group["correct"].dropna()
        out[scheme] = float(scored.astype(float).mean()) if len(scored) else float("nan")
    return out
