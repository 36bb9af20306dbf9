"""Nearest-neighbour MoA matching of treatment profiles (Ljosa et al. 2013; Ando et al. 2017).

Works on any profile table: ``Metadata_*`` columns plus numeric feature columns, one row per
crop, cell, field or well (CNN embeddings from cellmoa, or CellProfiler/pycytominer profiles
alike).

1. per treatment (compound, concentration) the mean profile
   (:func:`cellmoa.profiles.tables.treatment_profiles`);
2. each treatment takes the MoA of its nearest other treatment by cosine similarity, excluding
   treatments of the same compound ("nsc"), or of the same compound or a shared batch ("nscb");
   equal similarities go to the neighbour first in (compound, concentration) order;
3. accuracy = correct treatments / scored treatments, where NSC scores every treatment that has
   a candidate neighbour, and NSCB only those whose MoA has at least one other compound in a
   disjoint batch (the others cannot be right: BBBC021's Cholesterol-lowering and Kinase
   inhibitors were imaged in one week each, so NSCB is over 92 of the 103 treatments, as in the
   literature). The number scored is in every table.

Examples
--------
>>> profiles = pd.DataFrame({"Metadata_Compound": ["a", "b", "c"],
...                          "Metadata_Concentration": [1.0] * 3,
...                          "Metadata_MoA": ["X", "X", "Y"],
...                          "f1": [1.0, 0.9, 0.0], "f2": [0.0, 0.1, 1.0]})
>>> nearest_neighbours(profiles, "nsc")[["neighbour_compound", "correct"]].values.tolist()
[['b', True], ['a', True], ['b', False]]
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cellmoa import validation
from cellmoa.columns import (
    BATCH,
    COMPOUND,
    CONCENTRATION,
    FOLD,
    IS_CONTROL,
    MATCH_SCHEME,
    MOA,
    PROFILES,
    metadata_columns,
)
from cellmoa.profiles.chains import postprocess as run_chain
from cellmoa.profiles.retrieval import average_precision, map_by_moa
from cellmoa.profiles.summary import summary_by_scheme
from cellmoa.profiles.tables import fold_profiles, treatment_profiles, unit_rows

log = logging.getLogger(__name__)

SCHEMES = ("nsc", "nscb")
#: the columns of the table of what each post-processing step did in each fold
NOTES = [FOLD, "step", "what"]


def _no_neighbour(base: dict) -> dict:
    """The row of a treatment without any candidate neighbour (never scored)."""
    return {
        **base,
        "neighbour_compound": None,
        "neighbour_concentration": np.nan,
        "neighbour_moa": None,
        "similarity": np.nan,
        "positive_available": False,
        "scored": False,
        "correct": np.nan,
    }


def nearest_neighbours(profiles: pd.DataFrame, scheme: str = "nsc") -> pd.DataFrame:
    """For every treatment its nearest eligible neighbour.

    Parameters
    ----------
    profiles : pandas.DataFrame
        Treatment profiles (:func:`cellmoa.profiles.tables.treatment_profiles`); ``nscb`` needs
        their ``Metadata_Batch`` sets.
    scheme : {"nsc", "nscb"}
        Which treatments are eligible neighbours (see the module's rule 2).

    Returns
    -------
    pandas.DataFrame
        One row per treatment: its compound, concentration and MoA, the neighbour's
        (``neighbour_compound``, ``neighbour_concentration``, ``neighbour_moa``), their cosine
        ``similarity``, ``positive_available``, ``scored`` (whether the treatment counts, see
        the module's rule 3) and ``correct`` (NaN where not scored).

    Raises
    ------
    cellmoa.validation.TableError
        For ``nscb`` without a ``Metadata_Batch`` column.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown matching scheme {scheme!r}; use 'nsc' or 'nscb'")
    if scheme == "nscb" and BATCH not in profiles.columns:
        raise validation.TableError(
            f"nscb matching needs the batch of every row: the table has no {BATCH} column "
            "(name the batch column with --batch-column, or use --scheme nsc)"
        )
    x = unit_rows(profiles[validation.feature_columns(profiles)].to_numpy(dtype=np.float64))
    similarity = x @ x.T
    compounds = profiles[COMPOUND].to_numpy()
    moas = profiles[MOA].to_numpy()
    concentrations = profiles[CONCENTRATION].to_numpy()
    batches = list(profiles[BATCH]) if scheme == "nscb" else None
    rows = []
    for i in range(len(profiles)):
        eligible = compounds != compounds[i]
        if batches is not None:
            eligible &= np.array([not (batches[i] & b) for b in batches])
        candidates = np.flatnonzero(eligible)
        positive = bool((moas[candidates] == moas[i]).any())
        scored = positive if scheme == "nscb" else len(candidates) > 0
        base = {COMPOUND: compounds[i], CONCENTRATION: concentrations[i], MOA: moas[i]}
        if len(candidates) == 0:
            rows.append(_no_neighbour(base))
            continue
        # the first of equals: (compound, concentration) order
        j = candidates[np.argmax(similarity[i, candidates])]
        rows.append(
            {
                **base,
                "neighbour_compound": compounds[j],
                "neighbour_concentration": concentrations[j],
                "neighbour_moa": moas[j],
                "similarity": float(similarity[i, j]),
                "positive_available": positive,
                "scored": scored,
                "correct": bool(moas[j] == moas[i]) if scored else np.nan,
            }
        )
    return pd.DataFrame(rows)


def nearest_neighbour_accuracy(
    table: pd.DataFrame, scheme: str = "nsc", control: str | None = None
) -> float:
    """Treatment-level 1-NN accuracy of a profile table.

    Parameters
    ----------
    table : pandas.DataFrame
        A profile table (:func:`cellmoa.profiles.tables.treatment_profiles` averages it).
    scheme : {"nsc", "nscb"}
        The matching scheme.
    control : str, optional
        The control compound, left out.

    Returns
    -------
    float
        Correct over scored treatments; NaN if no treatment is scored.
    """
    matches = nearest_neighbours(treatment_profiles(table, control=control), scheme)
    scored = matches.loc[matches["scored"], "correct"]
    return float(scored.astype(float).mean()) if len(scored) else float("nan")


def match_and_rank(profiles: pd.DataFrame, schemes=SCHEMES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """1-NN matches and average precisions of every treatment profile.

    Parameters
    ----------
    profiles : pandas.DataFrame
        Treatment profiles.
    schemes : sequence of str
        The matching schemes.

    Returns
    -------
    matches, average_precisions : pandas.DataFrame
        One block of rows per scheme (column ``Metadata_MatchScheme``) of
        :func:`nearest_neighbours` and :func:`cellmoa.profiles.retrieval.average_precision`.
    """
    matches, aps = [], []
    for scheme in schemes:
        m = nearest_neighbours(profiles, scheme)
        m.insert(0, MATCH_SCHEME, scheme)
        matches.append(m)
        ap = average_precision(profiles, scheme)
        ap.insert(0, MATCH_SCHEME, scheme)
        aps.append(ap)
    return pd.concat(matches, ignore_index=True), pd.concat(aps, ignore_index=True)


def held_out_rows(
    profiles: pd.DataFrame, compound: str, name: str, schemes=SCHEMES
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The matches and average precisions of one fold's held-out compound.

    Parameters
    ----------
    profiles : pandas.DataFrame
        Treatment profiles made with the fold's model.
    compound : str
        The compound the fold held out: only its treatments' rows are kept.
    name : str
        Which profiles these are (``raw``, ``postprocessed``), in the column
        ``Metadata_Profiles``.
    schemes : sequence of str
        The matching schemes.

    Returns
    -------
    matches, average_precisions : pandas.DataFrame
        The rows of :func:`match_and_rank` of ``compound``'s treatments.
    """
    m, ap = match_and_rank(profiles, schemes)
    out = []
    for table in (m, ap):
        table = table[table[COMPOUND] == compound].copy()
        table.insert(0, PROFILES, name)
        out.append(table)
    return out[0], out[1]


def assemble(matches: list, aps: list, notes: list):
    """The folds' matches, average precisions and post-processing notes, each as one table.

    Parameters
    ----------
    matches, aps, notes : list of pandas.DataFrame
        Per fold (and kind of profiles): matches, average precisions and what each
        post-processing step did (with a ``Metadata_Fold`` column).

    Returns
    -------
    tuple of pandas.DataFrame
        The three lists concatenated (empty tables where there are none; the notes with the
        columns :data:`NOTES`).
    """
    if not matches:
        return pd.DataFrame(), pd.DataFrame(), pd.DataFrame(columns=NOTES)
    notes = pd.concat(notes, ignore_index=True)[NOTES] if notes else pd.DataFrame(columns=NOTES)
    return pd.concat(matches, ignore_index=True), pd.concat(aps, ignore_index=True), notes


def fold_matches(
    metadata: pd.DataFrame,
    embeddings_by_compound: dict[str, np.ndarray],
    schemes=SCHEMES,
    chain: list | None = None,
    control: str | None = None,
):
    """Nearest-neighbour matches and average precisions of each held-out compound's treatments.

    Each compound's treatments are matched with the embeddings of the model of its own fold
    (which never trained on that compound), from the raw profiles and, with a post-processing
    ``chain``, from the post-processed ones too (column :data:`cellmoa.columns.PROFILES`).

    Parameters
    ----------
    metadata : pandas.DataFrame
        The tensors' crop metadata.
    embeddings_by_compound : dict of str to numpy.ndarray
        Held-out compound -> its fold model's crop embeddings (aligned with ``metadata``).
    schemes : sequence of str
        The matching schemes.
    chain : list, optional
        Post-processing steps (:func:`cellmoa.profiles.chains.parse_chain`).
    control : str, optional
        The control compound.

    Returns
    -------
    matches, average_precisions, notes : pandas.DataFrame
        The matches, the average precisions, and what each post-processing step did in each
        fold (:func:`assemble`).
    """
    matches, aps, notes = [], [], []
    for compound, embeddings in embeddings_by_compound.items():
        variants, done = fold_profiles(
            metadata, embeddings, chain, control, f"embeddings of fold {compound}"
        )
        if chain:
            notes.append(done.assign(**{FOLD: compound}))
        for name, profiles in variants:
            m, ap = held_out_rows(profiles, compound, name, schemes)
            matches.append(m)
            aps.append(ap)
    return assemble(matches, aps, notes)


def postprocessed_rows(table, features, nan_policy, control, chain, source):
    """A profile table's rows put through a post-processing ``chain``, controls included.

    Parameters
    ----------
    table : pandas.DataFrame
        Profile rows with ``Metadata_Compound``, ``Metadata_Concentration``, ``Metadata_MoA``.
    features : list of str or None
        The feature columns (None: :func:`cellmoa.validation.select_features` picks them).
    nan_policy : {"error", "drop"}
        What to do with non-finite features.
    control : str or None
        The control compound (or MoA): the rows the chain's steps fit on.
    chain : list
        Steps of :func:`cellmoa.profiles.chains.parse_chain`.
    source : str
        The table's name in messages.

    Returns
    -------
    rows, features, notes
        The rows (``Metadata_IsControl`` added), their features and what each step did.
    """
    validation.require_columns(table, [COMPOUND, CONCENTRATION, MOA], source)
    features = validation.select_features(table, source, features, nan_policy)
    rows = table[metadata_columns(table.columns) + features].copy()
    if control:
        is_control = rows[COMPOUND].astype(str).eq(control) | rows[MOA].astype(str).eq(control)
        rows[IS_CONTROL] = is_control.astype(int).to_numpy()
    return run_chain(rows, features, chain, source)


def evaluate_profiles(
    table: pd.DataFrame,
    schemes=SCHEMES,
    control: str | None = None,
    features=None,
    nan_policy: str = "error",
    seed: int = 0,
    source: str = "profiles",
    postprocess: list | None = None,
) -> dict[str, pd.DataFrame]:
    """Score any profile table the way cellmoa scores its embeddings.

    Parameters
    ----------
    table : pandas.DataFrame
        A profile table (``Metadata_*`` columns and features, one row per cell, well or crop).
    schemes : sequence of str
        The matching schemes.
    control : str, optional
        The control compound: left out of the treatments, and the samples post-processing is
        fit on.
    features : list of str, optional
        The feature columns (default: the numeric columns not named ``Metadata_*``, logged).
    nan_policy : {"error", "drop"}
        What to do with non-finite features.
    seed : int
        Seed of the bootstrap and of copairs' permutations.
    source : str
        The table's name in messages.
    postprocess : list, optional
        Steps of :func:`cellmoa.profiles.chains.parse_chain`, run on the rows, controls
        included, before they are averaged into treatments.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``profiles`` (one per treatment), ``matches`` (1-NN per scheme), ``average_precision``
        (per treatment and scheme), ``map_by_moa`` (copairs' per-MoA mAP with p-values, per
        scheme), ``summary`` (one row per scheme, see
        :func:`cellmoa.profiles.summary.summary_by_scheme`) and ``postprocessing`` (what each
        step did).
    """
    notes = pd.DataFrame(columns=["step", "what"])
    if postprocess:
        table, features, notes = postprocessed_rows(
            table, features, nan_policy, control, postprocess, source
        )
    profiles = treatment_profiles(
        table, features=features, control=control, nan_policy=nan_policy, source=source
    )
    log.info(
        "%s: %d treatments of %d compounds and %d MoAs",
        source,
        len(profiles),
        profiles[COMPOUND].nunique(),
        profiles[MOA].nunique(),
    )
    matches, aps = match_and_rank(profiles, schemes)
    per_moa = []
    for scheme in schemes:
        t = map_by_moa(aps[aps[MATCH_SCHEME] == scheme].drop(columns=MATCH_SCHEME), seed=seed)
        t.insert(0, MATCH_SCHEME, scheme)
        per_moa.append(t)
    shown = profiles.copy()
    if BATCH in shown.columns:
        shown[BATCH] = [";".join(sorted(b)) for b in shown[BATCH]]
    return {
        "profiles": shown,
        "matches": matches,
        "average_precision": aps,
        "map_by_moa": pd.concat(per_moa, ignore_index=True),
        "summary": summary_by_scheme(matches, aps, seed=seed),
        "postprocessing": notes,
    }
