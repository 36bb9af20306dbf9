"""MoA predictions for the treatments of unannotated compounds: what a screen is run for.

Each prediction comes with a conformal prediction set and a ``novel`` flag. The all-compound
fold's model (trained on every annotated compound) predicts the unannotated treatments; the
leave-one-compound-out folds calibrate it (:class:`cellmoa.evaluate.calibration.Calibration`).
For a chosen coverage (``prediction.coverage``) each new treatment gets the set of MoAs that
holds its true MoA with at least that probability, provided its MoA is one of the annotated
ones. A compound of an MoA nobody annotated has no right answer in any set, so it is flagged
``novel`` when:

- its set is empty (no MoA probable enough), or
- its top probability is below every annotated treatment's top probability in calibration, or
- its nearest annotated treatment (cosine similarity of the post-processed profiles) is so far
  that its conformal p-value among the annotated treatments' nearest other-compound
  similarities in calibration (the NSC matches of the folds) is at most ``1 - coverage``: a
  compound of a known MoA is flagged by this rule at most that often (``novelty_p_value``).

Treatment probabilities are the paper's aggregate (median within replicates, then across them;
:mod:`cellmoa.evaluate.accuracy`), scaled to sum to 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellmoa import validation
from cellmoa.columns import (
    COMPOUND,
    COMPOUND_DOSE,
    CONCENTRATION,
    PLATE,
    REPLICATE,
    WELL,
)
from cellmoa.evaluate.accuracy import (
    class_columns,
    ensemble_treatments,
    median_of_replicates,
    predicted_classes,
)
from cellmoa.evaluate.calibration import Calibration, calibration_similarities, normalised
from cellmoa.evaluate.neighbours import nearest_annotated
from cellmoa.profiles.tables import concatenate_profiles, fold_profiles

#: the unannotated table's first columns, in order (then the neighbours and the probabilities)
FIRST_COLUMNS = [
    COMPOUND,
    CONCENTRATION,
    "n_crops",
    "n_wells",
    "n_replicates",
    "n_rows",
    "top_moa",
    "top_probability",
    "margin",
    "prediction_set",
    "set_size",
    "novel",
    "novel_reason",
    "novelty_p_value",
    "novelty_score",
    "nearest_similarity",
    "dose_consistent",
]


def unannotated_treatments(predictions: pd.DataFrame, source: str = "predictions") -> pd.DataFrame:
    """One row per unannotated treatment (compound, concentration) of crop predictions.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The all-compound fold's crop predictions of the unannotated treatments.
    source : str
        The table's name in error messages.

    Returns
    -------
    pandas.DataFrame
        ``n_crops``, ``n_wells``, ``n_replicates`` and the treatment probabilities (median
        within each replicate, then across replicates, scaled to sum to 1).
    """
    prob_cols = class_columns(predictions)
    validation.require_columns(predictions, COMPOUND_DOSE + [REPLICATE, PLATE, WELL], source)
    validation.check_keys(predictions, COMPOUND_DOSE + [REPLICATE], source)
    validation.check_finite(predictions, prob_cols, source, "probability")
    table = predictions.copy()
    table[CONCENTRATION] = validation.concentration_values(table[CONCENTRATION], source)
    per_treatment = median_of_replicates(table, COMPOUND_DOSE, prob_cols)
    wells = table[PLATE].astype(str) + "/" + table[WELL].astype(str)
    counts = (
        table.assign(_well=wells)
        .groupby(COMPOUND_DOSE, sort=True)
        .agg(
            n_crops=(REPLICATE, "size"),
            n_wells=("_well", "nunique"),
            n_replicates=(REPLICATE, "nunique"),
        )
    )
    return normalised(counts.join(per_treatment).reset_index())


def _set_columns(table: pd.DataFrame, calibration: Calibration) -> np.ndarray:
    """Add the top MoA, its probability and margin, and the prediction set to ``table``.

    Returns each row's top probability.
    """
    prob_cols = calibration.prob_cols
    p = table[prob_cols].to_numpy(np.float64)
    order = np.argsort(-p, axis=1, kind="stable")
    top = p[np.arange(len(p)), order[:, 0]] if len(p) else np.zeros(0)
    second = p[np.arange(len(p)), order[:, 1]] if p.shape[1] > 1 and len(p) else np.zeros(len(p))
    sets = calibration.sets(p) if len(p) else np.zeros((0, len(prob_cols)), bool)
    table["top_moa"] = predicted_classes(p, prob_cols) if len(p) else []
    table["top_probability"] = top
    table["margin"] = top - second
    table["prediction_set"] = [
        "; ".join(calibration.classes[j] for j in o if s[j]) for o, s in zip(order, sets)
    ]
    table["set_size"] = sets.sum(axis=1).astype(int)
    return top


def _novelty(
    table: pd.DataFrame, top: np.ndarray, calibration: Calibration, typicality=None
) -> None:
    """Add ``novelty_p_value``, ``novel`` and ``novel_reason`` (the module's three rules).

    The p-values rank ``typicality`` (higher = more like the annotated treatments) where given,
    else the similarity to the nearest annotated treatment.
    """
    if typicality is not None:
        similarity = np.asarray(typicality, np.float64)
        far = "unlike its nearest annotated treatments"
    else:
        similarity = (
            table["neighbour_1_similarity"].to_numpy(np.float64)
            if "neighbour_1_similarity" in table.columns
            else np.full(len(table), np.nan)
        )
        far = "far from every annotated treatment"
    p_values = calibration.novelty_p_values(similarity) if len(table) else np.zeros(0)
    alpha = 1.0 - calibration.coverage
    table["novelty_p_value"] = p_values
    reasons = []
    for i in range(len(table)):
        why = []
        if table["set_size"].iloc[i] == 0:
            why.append("empty set")
        if top[i] < calibration.min_top_probability:
            why.append(
                "top probability below every annotated treatment's "
                f"({calibration.min_top_probability:.3g})"
            )
        if np.isfinite(p_values[i]) and p_values[i] <= alpha:
            why.append(f"{far} (novelty p = {p_values[i]:.2g})")
        reasons.append("; ".join(why))
    table["novel"] = [bool(r) for r in reasons]
    table["novel_reason"] = reasons


def _dose_consistent(table: pd.DataFrame) -> pd.Series:
    """Whether every concentration of each row's compound has the same top MoA.

    None for a compound at one concentration.
    """
    by_compound = table.groupby(COMPOUND)["top_moa"].agg(["nunique", "size"])
    consistent = {
        c: (bool(r["nunique"] == 1) if r["size"] > 1 else None) for c, r in by_compound.iterrows()
    }
    return table[COMPOUND].map(consistent)


def predict(
    treatments: pd.DataFrame,
    calibration: Calibration,
    neighbours: pd.DataFrame | None = None,
    typicality=None,
) -> pd.DataFrame:
    """The unannotated table: calibrated MoA calls for the unannotated treatments.

    Parameters
    ----------
    treatments : pandas.DataFrame
        The unannotated treatments (:func:`unannotated_treatments`).
    calibration : Calibration
        The calibration of the model (or ensemble) that predicted them.
    neighbours : pandas.DataFrame, optional
        Their nearest annotated treatments (:func:`nearest_annotated`).
    typicality : array, optional
        Per treatment (row order of ``treatments``), a score on the scale of the calibration's
        similarities (higher = more like the annotated treatments) for the novelty rule, in
        place of the nearest annotated similarity
        (:mod:`cellmoa.evaluate.profile_calls`' negated novelty score).

    Returns
    -------
    pandas.DataFrame
        One row per treatment, with ``top_moa``, ``top_probability``, ``margin`` (to the second
        MoA), ``prediction_set`` (MoAs joined by "; ", most probable first), ``set_size``,
        ``novel`` and ``novel_reason`` (see the module docstring), ``novelty_p_value``,
        ``dose_consistent`` (every concentration of the compound has the same top MoA; empty
        for a compound at one concentration), the nearest annotated treatments and the
        probabilities; sorted most confident first.

    Raises
    ------
    cellmoa.validation.TableError
        When the treatments lack a class of the calibration.
    """
    prob_cols = calibration.prob_cols
    missing = [c for c in prob_cols if c not in treatments.columns]
    if missing:
        raise validation.TableError(
            f"the unannotated predictions lack {', '.join(missing)}: "
            "they were made by another model"
        )
    table = treatments.copy().reset_index(drop=True)
    top = _set_columns(table, calibration)
    if neighbours is not None and len(neighbours):
        table = table.merge(neighbours, on=COMPOUND_DOSE, how="left", validate="one_to_one")
    _novelty(table, top, calibration, typicality)
    table["dose_consistent"] = _dose_consistent(table)
    first = [c for c in FIRST_COLUMNS if c in table.columns]
    rest = [c for c in table.columns if c.startswith("neighbour_")]
    table = table[first + rest + prob_cols]
    return table.sort_values(
        ["novel", "set_size", "top_probability", COMPOUND, CONCENTRATION],
        ascending=[True, True, False, True, True],
        kind="stable",
    ).reset_index(drop=True)


def _profiles(metadata, embeddings, chain, control, source):
    """The all-compound fold's treatment profiles, unannotated ones included.

    Post-processed where there is a chain (as the matching uses), else raw; and what the chain
    did.
    """
    variants, notes = fold_profiles(metadata, embeddings, chain, control, source, unannotated=True)
    return variants[-1][1], notes


def _ensemble_table(networks, news, profiles, coverage, score, neighbours, chain, matches):
    """The ensemble's unannotated table and calibration.

    The networks' treatment probabilities averaged (calibration and prediction alike), the
    neighbours found in their concatenated unit-length profiles.
    """
    treatments = ensemble_treatments({n: normalised(i["treatments"]) for n, i in networks.items()})
    sims, sim_compounds = calibration_similarities(matches, bool(chain))
    calibration = Calibration(treatments, coverage, score, sims, sim_compounds)
    prob_cols = calibration.prob_cols
    stacked = pd.concat([t.assign(_network=n) for n, t in news.items()], ignore_index=True)
    counts = stacked.groupby(COMPOUND_DOSE, sort=True)[
        ["n_crops", "n_wells", "n_replicates"]
    ].first()
    new = counts.join(stacked.groupby(COMPOUND_DOSE, sort=True)[prob_cols].mean()).reset_index()
    if (stacked.groupby(COMPOUND_DOSE).size() != len(news)).any():
        raise validation.TableError(
            "ensemble: the networks predicted different unannotated treatments"
        )
    near = (
        nearest_annotated(concatenate_profiles(profiles), neighbours)
        if len(profiles) == len(networks) and neighbours
        else None
    )
    return predict(normalised(new), calibration, near), calibration


def predict_screen(
    metadata: pd.DataFrame,
    networks: dict[str, dict],
    coverage: float = 0.9,
    score: str = "lac",
    neighbours: int = 3,
    chain: list | None = None,
    control: str | None = None,
    ensemble: str | None = "Ensemble",
    ensemble_matches: pd.DataFrame | None = None,
):
    """The unannotated tables of every network (and of their ensemble) and the calibration table.

    Parameters
    ----------
    metadata : pandas.DataFrame
        The tensors' crop metadata.
    networks : dict of str to dict
        Network -> ``treatments`` (its leave-one-compound-out treatment table), ``predictions``
        (the all-compound fold's crop predictions), ``embeddings`` (that fold's embeddings,
        aligned with ``metadata``, or None) and ``matches`` (its nearest-neighbour table, or
        None).
    coverage : float
        Nominal coverage of the prediction sets.
    score : {"lac", "aps"}
        Nonconformity score.
    neighbours : int
        How many nearest annotated treatments to name (0: none).
    chain : list, optional
        Post-processing steps of the profiles the neighbours are found in.
    control : str, optional
        The control compound.
    ensemble : str, optional
        The ensemble's name; with two networks or more it averages the networks' treatment
        probabilities (calibration and prediction alike) and finds neighbours in their
        concatenated unit-length profiles
        (:func:`cellmoa.profiles.tables.concatenate_profiles`).
    ensemble_matches : pandas.DataFrame, optional
        The ensemble's nearest-neighbour table, which calibrates its novelty rule.

    Returns
    -------
    tables : dict of str to pandas.DataFrame
        Network (or ensemble) -> its unannotated table (:func:`predict`).
    calibration : pandas.DataFrame
        The calibration tables (:meth:`Calibration.table`) of all of them.
    """
    tables, calibrations, profiles = {}, [], {}
    news = {}
    for network, inputs in networks.items():
        sims, sim_compounds = calibration_similarities(inputs.get("matches"), bool(chain))
        calibration = Calibration(inputs["treatments"], coverage, score, sims, sim_compounds)
        new = unannotated_treatments(
            inputs["predictions"], f"{network}: all-compound fold predictions"
        )
        near = None
        if inputs.get("embeddings") is not None and neighbours:
            profiles[network], _ = _profiles(
                metadata,
                inputs["embeddings"],
                chain,
                control,
                f"{network} embeddings of the all-compound fold",
            )
            near = nearest_annotated(profiles[network], neighbours)
        tables[network] = predict(new, calibration, near)
        calibrations.append(calibration.table(name=network))
        news[network] = new
    if ensemble and len(networks) > 1:
        tables[ensemble], calibration = _ensemble_table(
            networks, news, profiles, coverage, score, neighbours, chain, ensemble_matches
        )
        calibrations.append(calibration.table(name=ensemble))
    return tables, pd.concat(calibrations, ignore_index=True)
