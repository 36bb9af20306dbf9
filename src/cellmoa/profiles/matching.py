"""Nearest-neighbour MoA evaluation of profiles (Ljosa et al. 2013; Ando et al. 2017).

Works on any profile table: ``Metadata_*`` columns plus numeric feature columns, one row per crop,
cell, field or well (CNN embeddings from cellmoa, or CellProfiler/pycytominer profiles alike).

1. per treatment (compound, concentration) the mean profile, after the checks of
   :mod:`cellmoa.validation` (keys filled in, concentrations as rounded numbers, finite features or
   the ``features_with_nan`` policy, controls left out);
2. each treatment takes the MoA of its nearest other treatment by cosine similarity, excluding
   treatments of the same compound ("nsc"), or of the same compound or a shared batch ("nscb");
   equal similarities go to the neighbour first in (compound, concentration) order;
3. accuracy = correct treatments / scored treatments, where NSC scores every treatment that has a
   candidate neighbour, and NSCB only those whose MoA has at least one other compound in a disjoint
   batch (the others cannot be right: BBBC021's Cholesterol-lowering and Kinase inhibitors were
   imaged in one week each, so NSCB is over 92 of the 103 treatments, as in the literature). The
   number scored is in every table.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cellmoa import validation
from cellmoa.intervals import accuracy_with_intervals, paired_difference
from cellmoa.profiles.postprocessing import IS_CONTROL, postprocess
from cellmoa.profiles.postprocessing import postprocess as run_chain
from cellmoa.profiles.retrieval import average_precision, map_by_moa, mean_average_precision
from cellmoa.train.folds import unannotated as unannotated_rows

log = logging.getLogger(__name__)

COMPOUND = "Metadata_Compound"
CONCENTRATION = "Metadata_Concentration"
MOA = "Metadata_MoA"
BATCH = "Metadata_Batch"
SCHEMES = ("nsc", "nscb")


def treatment_profiles(
    table: pd.DataFrame,
    features=None,
    control: str | None = None,
    nan_policy: str = "error",
    source: str = "profiles",
) -> pd.DataFrame:
    """Mean feature vector per treatment, with its MoA and (where the table has a
    ``Metadata_Batch`` column) the set of batches it was seen in. ``features`` lists the feature
    columns (default: the numeric columns not named ``Metadata_*``, logged); rows of ``control``
    are left out; ``nan_policy`` is ``error`` or ``drop`` (see :func:`cellmoa.validation.select_features`).

    >>> t = pd.DataFrame({"Metadata_Compound": ["a", "a", "DMSO"], "Metadata_Concentration": ["0.3", "0.300000", 0],
    ...                   "Metadata_MoA": ["X", "X", "DMSO"], "f": [1.0, 3.0, 9.0]})
    >>> treatment_profiles(t, control="DMSO")[["Metadata_Compound", "Metadata_Concentration", "f"]].values.tolist()
    [['a', 0.3, 2.0]]
    """
    validation.require_columns(table, [COMPOUND, CONCENTRATION, MOA], source)
    table = validation.drop_controls(table, control, source)
    keys = [COMPOUND, CONCENTRATION, MOA] + ([BATCH] if BATCH in table.columns else [])
    validation.check_keys(table, keys, source)
    if table.empty:
        raise validation.TableError(
            f"{source}: no treatment rows left"
            + (f" once the {control} controls are out" if control else "")
        )
    features = validation.select_features(table, source, features, nan_policy)
    table = table.copy()
    table[CONCENTRATION] = validation.concentration_values(table[CONCENTRATION], source)
    validation.check_one_moa(table, [COMPOUND, CONCENTRATION], MOA, source)
    group = [COMPOUND, CONCENTRATION, MOA]
    out = table.groupby(group, sort=True)[features].mean().reset_index()
    if BATCH in table.columns:
        batches = table.groupby(group, sort=True)[BATCH].agg(lambda b: frozenset(map(str, b)))
        out[BATCH] = batches.to_numpy()
    out.attrs["features"] = list(features)
    return out


def nearest_neighbours(profiles: pd.DataFrame, scheme: str = "nsc") -> pd.DataFrame:
    """For every treatment its nearest eligible neighbour: one row per treatment with the
    neighbour's compound, concentration, MoA, the cosine similarity, ``scored`` (whether the
    treatment counts, see the module's rule 3) and ``correct`` (NaN where not scored)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown matching scheme {scheme!r}; use 'nsc' or 'nscb'")
    if scheme == "nscb" and BATCH not in profiles.columns:
        raise validation.TableError(
            "nscb matching needs the batch of every row: the table has no Metadata_Batch column "
            "(name the batch column with --batch-column, or use --scheme nsc)"
        )
    x = profiles[validation.feature_columns(profiles)].to_numpy(dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0, 1.0, norms)
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
            rows.append(
                {
                    **base,
                    "neighbour_compound": None,
                    "neighbour_concentration": np.nan,
                    "neighbour_moa": None,
                    "similarity": np.nan,
                    "positive_available": False,
                    "scored": False,
                    "correct": np.nan,
                }
            )
            continue
        j = candidates[
            np.argmax(similarity[i, candidates])
        ]  # first of equals: (compound, concentration) order
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
    """Treatment-level 1-NN accuracy of a profile table (NaN if no treatment is scored)."""
    matches = nearest_neighbours(treatment_profiles(table, control=control), scheme)
    scored = matches.loc[matches["scored"], "correct"]
    return float(scored.astype(float).mean()) if len(scored) else float("nan")


#: the MoA label the profiles of unannotated treatments carry (never a real MoA's name)
UNANNOTATED = "(unannotated)"

#: which profiles a match was made with: "raw" (mean embeddings) or "postprocessed"
#: (``profiles.postprocess`` applied to well profiles, controls included, before averaging)
PROFILES = "Metadata_Profiles"


def embedding_table(
    metadata: pd.DataFrame,
    embeddings: np.ndarray,
    controls: bool = False,
    unannotated: bool = False,
) -> pd.DataFrame:
    """A profile table from cellmoa tensors metadata (one row per crop) and crop embeddings: the
    annotated treatment crops, with ``controls`` the control crops too (``Metadata_IsControl`` =
    1), with ``unannotated`` the crops of unannotated compounds too (their ``Metadata_MoA`` is
    :data:`UNANNOTATED`)."""
    if len(metadata) != len(embeddings):
        raise ValueError(
            f"{len(embeddings)} embeddings for {len(metadata)} crops: they must be aligned row by row"
        )
    is_control = (
        metadata["is_control"].to_numpy(dtype=bool)
        if "is_control" in metadata.columns
        else np.zeros(len(metadata), bool)
    )
    is_unannotated = unannotated_rows(metadata)
    keep = (np.ones(len(metadata), bool) if controls else ~is_control) & (
        unannotated | ~is_unannotated
    )
    metadata = metadata[keep].copy()
    if unannotated:
        metadata.loc[is_unannotated[keep], "moa"] = UNANNOTATED
    table = pd.DataFrame(
        {
            "Metadata_Plate": metadata["plate"].to_numpy(),
            "Metadata_Well": metadata["well"].to_numpy(),
            COMPOUND: metadata["compound"].to_numpy(),
            CONCENTRATION: metadata["concentration"].to_numpy(),
            MOA: metadata["moa"].to_numpy(),
            BATCH: metadata["batch"].to_numpy(),
        }
    )
    if controls:
        table[IS_CONTROL] = is_control[keep].astype(int)
    values = np.asarray(embeddings, dtype=np.float32)[keep]
    features = pd.DataFrame(values, columns=[f"f{i}" for i in range(values.shape[1])])
    return pd.concat([table, features], axis=1)


def well_profiles(table: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The mean profile of each well (rows grouped by every ``Metadata_*`` column)."""
    meta = [c for c in table.columns if str(c).startswith("Metadata_")]
    return table.groupby(meta, sort=True, as_index=False)[features].mean()


def match_and_rank(profiles: pd.DataFrame, schemes=SCHEMES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """1-NN matches and average precisions of every treatment profile, one block of rows per
    scheme (column ``Metadata_MatchScheme``)."""
    matches, aps = [], []
    for scheme in schemes:
        m = nearest_neighbours(profiles, scheme)
        m.insert(0, "Metadata_MatchScheme", scheme)
        matches.append(m)
        ap = average_precision(profiles, scheme)
        ap.insert(0, "Metadata_MatchScheme", scheme)
        aps.append(ap)
    return pd.concat(matches, ignore_index=True), pd.concat(aps, ignore_index=True)


def fold_profiles(
    metadata: pd.DataFrame,
    embeddings: np.ndarray,
    chain: list | None = None,
    control: str | None = None,
    source: str = "embeddings",
    unannotated: bool = False,
):
    """Treatment profiles of one fold model's embeddings: ``[("raw", profiles)]`` and, with a
    post-processing ``chain``, ``("postprocessed", profiles)`` from the well profiles (controls
    included) put through the chain before averaging; returns (variants, what each step did).
    With ``unannotated`` the unannotated treatments are profiled too (MoA :data:`UNANNOTATED`;
    they take no part in fitting the chain, which is fit on the controls)."""
    raw = embedding_table(metadata, embeddings, unannotated=unannotated)
    variants = [("raw", treatment_profiles(raw, source=source))]
    notes = pd.DataFrame(columns=["step", "what"])
    if chain:
        wells = embedding_table(metadata, embeddings, controls=True, unannotated=unannotated)
        features = [c for c in wells.columns if not str(c).startswith("Metadata_")]
        wells, features, notes = postprocess(
            well_profiles(wells, features), features, chain, source
        )
        variants.append(
            (
                "postprocessed",
                treatment_profiles(wells, features=features, control=control, source=source),
            )
        )
    return variants, notes


def concatenate_profiles(profiles_by_network: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ensemble's treatment profiles: each network's profiles scaled to unit length and put
    side by side, so that the ensemble's cosine similarity of two treatments is the mean of the
    networks' (every network weighs the same, whatever its embedding's size or scale).

    >>> a = pd.DataFrame({"Metadata_Compound": ["x", "y"], "Metadata_Concentration": [1.0, 1.0],
    ...                   "Metadata_MoA": ["A", "B"], "f0": [3.0, 0.0], "f1": [4.0, 2.0]})
    >>> a.attrs["features"] = ["f0", "f1"]
    >>> both = concatenate_profiles({"n1": a, "n2": a})
    >>> both.attrs["features"], float(both.loc[0, "n1_f0"])
    (['n1_f0', 'n1_f1', 'n2_f0', 'n2_f1'], 0.6)
    """
    keys = [COMPOUND, CONCENTRATION, MOA]
    out = None
    names: list[str] = []
    for network, profiles in profiles_by_network.items():
        features = validation.feature_columns(profiles)
        x = profiles[features].to_numpy(np.float64)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        block = pd.DataFrame(
            x / np.where(norms == 0, 1.0, norms), columns=[f"{network}_{c}" for c in features]
        )
        meta = profiles[keys + ([BATCH] if BATCH in profiles.columns else [])].reset_index(
            drop=True
        )
        part = pd.concat([meta, block], axis=1)
        if out is None:
            out = part
        else:
            n = len(out)
            out = out.merge(
                part.drop(columns=[BATCH], errors="ignore"),
                on=keys,
                how="inner",
                validate="one_to_one",
            )
            if len(out) != n or len(out) != len(part):
                raise validation.TableError(
                    f"ensemble: {network}'s treatments differ from the other networks'"
                )
        names += list(block.columns)
    out.attrs["features"] = names
    return out


def _held_out_rows(
    profiles: pd.DataFrame, compound: str, name: str, schemes
) -> tuple[pd.DataFrame, pd.DataFrame]:
    m, ap = match_and_rank(profiles, schemes)
    out = []
    for table in (m, ap):
        table = table[table[COMPOUND] == compound].copy()
        table.insert(0, PROFILES, name)
        out.append(table)
    return out[0], out[1]


def _assemble(matches, aps, notes):
    columns = ["Metadata_Fold", "step", "what"]
    if not matches:
        return pd.DataFrame(), pd.DataFrame(), pd.DataFrame(columns=columns)
    notes = pd.concat(notes, ignore_index=True)[columns] if notes else pd.DataFrame(columns=columns)
    return pd.concat(matches, ignore_index=True), pd.concat(aps, ignore_index=True), notes


def fold_matches(
    metadata: pd.DataFrame,
    embeddings_by_compound: dict[str, np.ndarray],
    schemes=SCHEMES,
    chain: list | None = None,
    control: str | None = None,
):
    """Nearest-neighbour matches and average precisions of each held-out compound's treatments,
    each computed with the embeddings of the model of its own fold (which never trained on that
    compound), from the raw profiles and, with a post-processing ``chain``, from the
    post-processed ones too (column :data:`PROFILES`). Returns (matches, average precisions,
    what each post-processing step did in each fold)."""
    matches, aps, notes = [], [], []
    for compound, embeddings in embeddings_by_compound.items():
        variants, done = fold_profiles(
            metadata, embeddings, chain, control, f"embeddings of fold {compound}"
        )
        if chain:
            notes.append(done.assign(Metadata_Fold=compound))
        for name, profiles in variants:
            m, ap = _held_out_rows(profiles, compound, name, schemes)
            matches.append(m)
            aps.append(ap)
    return _assemble(matches, aps, notes)


def ensemble_fold_matches(
    metadata: pd.DataFrame,
    embeddings_by_network: dict[str, dict[str, np.ndarray]],
    schemes=SCHEMES,
    chain: list | None = None,
    control: str | None = None,
):
    """:func:`fold_matches` of the networks' ensemble: in each fold, every network's treatment
    profiles (raw, and post-processed network by network) concatenated by
    :func:`concatenate_profiles`. ``embeddings_by_network`` maps network -> fold compound ->
    embeddings; every network needs the same folds."""
    networks = list(embeddings_by_network)
    folds = list(embeddings_by_network[networks[0]])
    for network in networks[1:]:
        if list(embeddings_by_network[network]) != folds:
            raise ValueError(
                f"ensemble: {network} has folds {list(embeddings_by_network[network])}, {networks[0]} {folds}"
            )
    matches, aps, notes = [], [], []
    for compound in folds:
        per_network = {}
        for network in networks:
            source = f"{network} embeddings of fold {compound}"
            variants, done = fold_profiles(
                metadata, embeddings_by_network[network][compound], chain, control, source
            )
            if chain:
                notes.append(
                    done.assign(Metadata_Fold=compound, step=network + ": " + done["step"])
                )
            for name, profiles in variants:
                per_network.setdefault(name, {})[network] = profiles
        for name, profiles in per_network.items():
            m, ap = _held_out_rows(concatenate_profiles(profiles), compound, name, schemes)
            matches.append(m)
            aps.append(ap)
    return _assemble(matches, aps, notes)


def summary_by_scheme(
    matches: pd.DataFrame, aps: pd.DataFrame | None = None, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """One row per scheme (and :data:`PROFILES`, where the matches have it): treatments, scored
    treatments (``n``), correct, 1-NN accuracy with the
    compound-bootstrap interval (``ci_low``/``ci_high``) and the Clopper-Pearson one
    (``exact_ci_*``), and the mAP with the number of treatments that have an AP; post-processed
    rows also the paired lift over the raw profiles on the same treatments (``lift``,
    ``lift_ci_low``/``lift_ci_high``, ``gained``, ``lost``, ``lift_p_value``: see
    :func:`cellmoa.intervals.paired_difference`)."""
    rows = []
    keys = ([PROFILES] if PROFILES in matches.columns else []) + ["Metadata_MatchScheme"]
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
            row.update(_lift(matches, row["Metadata_MatchScheme"], level, seed))
        rows.append(row)
    return pd.DataFrame(rows)


def _lift(matches: pd.DataFrame, scheme: str, level: float, seed: int) -> dict:
    """The post-processed profiles' accuracy minus the raw ones' on the same treatments, with its
    paired compound-bootstrap interval and McNemar p-value (:func:`cellmoa.intervals.paired_difference`)."""
    keys = [COMPOUND, CONCENTRATION]
    mine = matches[matches["Metadata_MatchScheme"] == scheme]
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
    """Score any profile table the way cellmoa scores its embeddings: ``profiles`` (one per
    treatment), ``matches`` (1-NN per scheme), ``average_precision`` (per treatment and scheme),
    ``map_by_moa`` (copairs' per-MoA mAP with p-values, per scheme) and ``summary`` (one row per
    scheme, see :func:`summary_by_scheme`). ``postprocess`` (steps of
    :func:`cellmoa.profiles.postprocessing.parse_chain`) runs on the rows, controls included, before they
    are averaged into treatments; what each step did is the ``postprocessing`` table."""
    notes = pd.DataFrame(columns=["step", "what"])
    if postprocess:
        validation.require_columns(table, [COMPOUND, CONCENTRATION, MOA], source)
        features = validation.select_features(table, source, features, nan_policy)
        meta = [c for c in table.columns if str(c).startswith("Metadata_")]
        rows = table[meta + features].copy()
        if control:
            is_control = rows[COMPOUND].astype(str).eq(control) | rows[MOA].astype(str).eq(control)
            rows[IS_CONTROL] = is_control.astype(int).to_numpy()
        rows, features, notes = run_chain(rows, features, postprocess, source)
    profiles = treatment_profiles(
        table if not postprocess else rows,
        features=features,
        control=control,
        nan_policy=nan_policy,
        source=source,
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
        t = map_by_moa(
            aps[aps["Metadata_MatchScheme"] == scheme].drop(columns="Metadata_MatchScheme"),
            seed=seed,
        )
        t.insert(0, "Metadata_MatchScheme", scheme)
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
