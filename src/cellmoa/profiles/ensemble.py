"""Nearest-neighbour matching of the networks' ensemble.

In each fold, every network's treatment profiles (raw, and post-processed network by network)
are scaled to unit length and concatenated (:func:`cellmoa.profiles.tables.concatenate_profiles`),
so that the ensemble's cosine similarity of two treatments is the mean of the networks'; the
held-out compound's treatments are then matched and ranked as one network's would be
(:func:`cellmoa.profiles.nearest.fold_matches`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellmoa.columns import FOLD
from cellmoa.profiles.nearest import SCHEMES, assemble, held_out_rows
from cellmoa.profiles.tables import concatenate_profiles, fold_profiles


def _check_folds(embeddings_by_network: dict[str, dict[str, np.ndarray]]) -> list[str]:
    """The folds every network has (in the first network's order), refusing differing folds."""
    networks = list(embeddings_by_network)
    folds = list(embeddings_by_network[networks[0]])
    for network in networks[1:]:
        theirs = list(embeddings_by_network[network])
        if theirs != folds:
            raise ValueError(f"ensemble: {network} has folds {theirs}, {networks[0]} {folds}")
    return folds


def ensemble_fold_matches(
    metadata: pd.DataFrame,
    embeddings_by_network: dict[str, dict[str, np.ndarray]],
    schemes=SCHEMES,
    chain: list | None = None,
    control: str | None = None,
):
    """:func:`cellmoa.profiles.nearest.fold_matches` of the networks' ensemble.

    Parameters
    ----------
    metadata : pandas.DataFrame
        The tensors' crop metadata.
    embeddings_by_network : dict of str to dict of str to numpy.ndarray
        Network -> fold compound -> crop embeddings; every network needs the same folds.
    schemes : sequence of str
        The matching schemes.
    chain : list, optional
        Post-processing steps, run network by network before the profiles are concatenated.
    control : str, optional
        The control compound.

    Returns
    -------
    matches, average_precisions, notes : pandas.DataFrame
        As :func:`cellmoa.profiles.nearest.fold_matches`; each note's step is prefixed with its
        network.

    Raises
    ------
    ValueError
        When the networks' folds differ.
    """
    networks = list(embeddings_by_network)
    folds = _check_folds(embeddings_by_network)
    matches, aps, notes = [], [], []
    for compound in folds:
        per_network = {}
        for network in networks:
            source = f"{network} embeddings of fold {compound}"
            variants, done = fold_profiles(
                metadata, embeddings_by_network[network][compound], chain, control, source
            )
            if chain:
                notes.append(done.assign(**{FOLD: compound}, step=network + ": " + done["step"]))
            for name, profiles in variants:
                per_network.setdefault(name, {})[network] = profiles
        for name, profiles in per_network.items():
            m, ap = held_out_rows(concatenate_profiles(profiles), compound, name, schemes)
            matches.append(m)
            aps.append(ap)
    return assemble(matches, aps, notes)
