"""MoA predictions for the treatments of unannotated compounds, with conformal prediction sets
and a ``novel`` flag: what a screen is run for.

The all-compound fold's model (trained on every annotated compound) predicts the unannotated
treatments; the leave-one-compound-out folds calibrate it. Each annotated treatment was predicted
by a model that never saw its compound, exactly the situation of a new compound, so its
probabilities give honest nonconformity scores (:mod:`cellmoa.evaluate.conformal`, calibrated at the
compound level). For a chosen coverage (``prediction.coverage``) each new treatment gets the set
of MoAs that holds its true MoA with at least that probability, provided its MoA is one of the
annotated ones. A compound of an MoA nobody annotated has no right answer in any set, so it is
flagged ``novel`` when:

- its set is empty (no MoA probable enough), or
- its top probability is below every annotated treatment's top probability in calibration, or
- its nearest annotated treatment (cosine similarity of the post-processed profiles) is so far
  that its conformal p-value among the annotated treatments' nearest other-compound similarities
  in calibration (the NSC matches of the folds) is at most ``1 - coverage``: a compound of a
  known MoA is flagged by this rule at most that often (``novelty_p_value``).

Treatment probabilities are the paper's aggregate (median within replicates, then across them;
:mod:`cellmoa.evaluate.accuracy`), scaled to sum to 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellmoa import validation
from cellmoa.evaluate import conformal
from cellmoa.evaluate.accuracy import (
    MOA,
    REPLICATE,
    class_columns,
    ensemble_treatments,
    median_of_replicates,
    predicted_classes,
)
from cellmoa.intervals import exact_interval
from cellmoa.profiles.matching import concatenate_profiles, fold_profiles

COMPOUND = "Metadata_Compound"
CONCENTRATION = "Metadata_Concentration"
TREATMENT = [COMPOUND, CONCENTRATION]
#: nominal levels of the calibration table and plot (with the configured one)
LEVELS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def normalised(table: pd.DataFrame) -> pd.DataFrame:
    """The ``prob_*`` columns scaled to sum to 1 in every row (medians of probabilities do not)."""
    cols = class_columns(table)
    out = table.copy()
    total = out[cols].sum(axis=1).to_numpy()
    if (total <= 0).any():
        raise validation.TableError(
            "a treatment's probabilities sum to 0: the predictions are broken"
        )
    out[cols] = out[cols].to_numpy() / total[:, None]
    return out


def unannotated_treatments(predictions: pd.DataFrame, source: str = "predictions") -> pd.DataFrame:
    """One row per unannotated treatment (compound, concentration) of the all-compound fold's crop
    predictions: ``n_crops``, ``n_wells``, ``n_replicates`` and the treatment probabilities (median
    within each replicate, then across replicates, scaled to sum to 1)."""
    prob_cols = class_columns(predictions)
    validation.require_columns(
        predictions, TREATMENT + [REPLICATE, "Metadata_Plate", "Metadata_Well"], source
    )
    validation.check_keys(predictions, TREATMENT + [REPLICATE], source)
    validation.check_finite(predictions, prob_cols, source, "probability")
    table = predictions.copy()
    table[CONCENTRATION] = validation.concentration_values(table[CONCENTRATION], source)
    per_treatment = median_of_replicates(table, TREATMENT, prob_cols)
    wells = table["Metadata_Plate"].astype(str) + "/" + table["Metadata_Well"].astype(str)
    counts = (
        table.assign(_well=wells)
        .groupby(TREATMENT, sort=True)
        .agg(
            n_crops=(REPLICATE, "size"),
            n_wells=("_well", "nunique"),
            n_replicates=(REPLICATE, "nunique"),
        )
    )
    return normalised(counts.join(per_treatment).reset_index())


class Calibration:
    """Split-conformal calibration on annotated treatments predicted leave-one-compound-out.

    Parameters
    ----------
    treatments : DataFrame
        One row per annotated treatment: ``Metadata_Compound``, ``Metadata_MoA``, ``prob_<moa>``
        (a ``treatments_<network>.tsv`` table).
    coverage : float
        Nominal coverage of the sets.
    score : {"lac", "aps"}
        Nonconformity score (:mod:`cellmoa.evaluate.conformal`).
    similarities : array, optional
        Calibration treatments' cosine similarity to their nearest annotated treatment of another
        compound (the NSC matches of the folds), for the embedding novelty rule, with
        ``similarity_compounds`` their compounds.

    Examples
    --------
    >>> t = pd.DataFrame({"Metadata_Compound": list("abcd"), "Metadata_MoA": list("XXYY"),
    ...                   "prob_X": [0.9, 0.8, 0.2, 0.3], "prob_Y": [0.1, 0.2, 0.8, 0.7]})
    >>> c = Calibration(t, coverage=0.75, score="lac")
    >>> round(c.threshold, 2), c.classes, round(c.min_top_probability, 2)
    (0.3, ['X', 'Y'], 0.7)
    >>> c.sets(np.array([[0.75, 0.25], [0.5, 0.5]])).tolist()
    [[True, False], [False, False]]
    """

    def __init__(
        self,
        treatments: pd.DataFrame,
        coverage: float = 0.9,
        score: str = "lac",
        similarities: np.ndarray | None = None,
        similarity_compounds=None,
    ):
        table = normalised(treatments)
        self.prob_cols = class_columns(table)
        self.classes = [c[len("prob_") :] for c in self.prob_cols]
        unknown = sorted(set(table[MOA]) - set(self.classes))
        if unknown:
            raise validation.TableError(
                f"calibration: MoA(s) {', '.join(unknown)} have no probability column"
            )
        self.coverage, self.score = float(coverage), score
        self.probabilities = table[self.prob_cols].to_numpy(np.float64)
        self.labels = np.array([self.classes.index(m) for m in table[MOA]])
        self.compounds = table[COMPOUND].astype(str).to_numpy()
        self.scores = conformal.nonconformity(self.probabilities, self.labels, score)
        self.threshold = conformal.conformal_quantile(self.scores, self.compounds, coverage)
        self.min_top_probability = float(self.probabilities.max(axis=1).min())
        self.similarities = None
        if similarities is not None:
            # without their compounds every similarity counts as a compound of its own
            owners = (
                np.arange(len(similarities))
                if similarity_compounds is None
                else np.asarray(similarity_compounds)
            )
            sims = pd.DataFrame({"compound": owners, "s": np.asarray(similarities, np.float64)})
            self.similarities = sims[np.isfinite(sims["s"])]
        self.n_compounds = len(set(self.compounds))

    def novelty_p_values(self, similarity) -> np.ndarray:
        """Conformal p-value of each nearest-annotated similarity: ``(1 + the share of calibration
        compounds at or below it) / (n + 1)``, every compound's treatments sharing a weight of 1.
        A compound of a known MoA gets ``p <= 1 - coverage`` with probability at most ``1 - coverage``;
        NaN without calibration similarities."""
        similarity = np.atleast_1d(np.asarray(similarity, np.float64))
        if self.similarities is None or self.similarities.empty:
            return np.full(len(similarity), np.nan)
        cal = self.similarities
        weight = 1.0 / cal.groupby("compound")["compound"].transform("size").to_numpy()
        n = cal["compound"].nunique()
        values = cal["s"].to_numpy()
        below = np.array([weight[values <= v].sum() for v in similarity])
        return np.where(np.isfinite(similarity), (1.0 + below) / (n + 1.0), np.nan)

    def sets(self, probabilities: np.ndarray) -> np.ndarray:
        """Boolean (rows, classes): the MoAs in each row's prediction set."""
        return conformal.prediction_sets(probabilities, self.threshold, self.score)

    def table(self, levels=LEVELS, name: str = "") -> pd.DataFrame:
        """Honest coverage at each nominal level: every compound's treatments get the sets of a
        threshold calibrated on the other compounds. Columns ``Metadata_Network``,
        ``nominal_coverage``, ``empirical_coverage`` (treatments covered) with its
        Clopper-Pearson interval, ``compound_coverage`` (every compound weighing the same),
        ``mean_set_size``, ``empty_sets``, ``n_treatments``, ``n_compounds``, ``score``."""
        rows = []
        for level in sorted({*map(float, levels), self.coverage}):
            held = conformal.leave_one_compound_out(
                self.probabilities, self.labels, self.compounds, level, self.score
            )
            k, n = int(held["covered"].sum()), len(held)
            low, high = exact_interval(k, n)
            rows.append(
                {
                    "Metadata_Network": name,
                    "nominal_coverage": level,
                    "empirical_coverage": k / n if n else np.nan,
                    "coverage_ci_low": low,
                    "coverage_ci_high": high,
                    "compound_coverage": float(
                        held.groupby("Metadata_Compound")["covered"].mean().mean()
                    )
                    if n
                    else np.nan,
                    "mean_set_size": float(held["set_size"].mean()) if n else np.nan,
                    "empty_sets": int((held["set_size"] == 0).sum()),
                    "n_treatments": n,
                    "n_compounds": self.n_compounds,
                    "score": self.score,
                    "configured": level == self.coverage,
                }
            )
        return pd.DataFrame(rows)


def nearest_annotated(
    profiles: pd.DataFrame, k: int = 3, unannotated_label: str = "(unannotated)"
) -> pd.DataFrame:
    """For every unannotated treatment profile (``Metadata_MoA`` = ``unannotated_label``) its ``k``
    most similar annotated treatments by cosine similarity: columns ``neighbour_<i>_compound``,
    ``_concentration``, ``_moa``, ``_similarity`` (i = 1..k), keyed by compound and concentration."""
    features = profiles.attrs.get("features") or validation.select_features(profiles, "profiles")
    x = profiles[features].to_numpy(np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    new = (profiles[MOA] == unannotated_label).to_numpy()
    known = np.flatnonzero(~new)
    similarity = x[new] @ x[known].T
    rows = []
    for i, row in enumerate(profiles.loc[new, TREATMENT].itertuples(index=False)):
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


def predict(
    treatments: pd.DataFrame, calibration: Calibration, neighbours: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The unannotated table: one row per treatment of :func:`unannotated_treatments`, with
    ``top_moa``, ``top_probability``, ``margin`` (to the second MoA), ``prediction_set`` (MoAs
    joined by "; ", most probable first), ``set_size``, ``novel`` and ``novel_reason`` (see the
    module docstring), ``dose_consistent`` (every concentration of the compound has the same top
    MoA; empty for a compound at one concentration), the nearest annotated treatments
    (:func:`nearest_annotated`) and the probabilities; sorted most confident first."""
    prob_cols = calibration.prob_cols
    missing = [c for c in prob_cols if c not in treatments.columns]
    if missing:
        raise validation.TableError(
            f"the unannotated predictions lack {', '.join(missing)}: they were made by another model"
        )
    table = treatments.copy()
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
    if neighbours is not None and len(neighbours):
        table = table.merge(neighbours, on=TREATMENT, how="left", validate="one_to_one")
    similarity = (
        table["neighbour_1_similarity"].to_numpy(np.float64)
        if "neighbour_1_similarity" in table.columns
        else np.full(len(table), np.nan)
    )
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
                f"top probability below every annotated treatment's ({calibration.min_top_probability:.3g})"
            )
        if np.isfinite(p_values[i]) and p_values[i] <= alpha:
            why.append(f"far from every annotated treatment (novelty p = {p_values[i]:.2g})")
        reasons.append("; ".join(why))
    table["novel"] = [bool(r) for r in reasons]
    table["novel_reason"] = reasons
    by_compound = table.groupby(COMPOUND)["top_moa"].agg(["nunique", "size"])
    consistent = {
        c: (bool(r["nunique"] == 1) if r["size"] > 1 else None) for c, r in by_compound.iterrows()
    }
    table["dose_consistent"] = table[COMPOUND].map(consistent)
    first = [
        COMPOUND,
        CONCENTRATION,
        "n_crops",
        "n_wells",
        "n_replicates",
        "top_moa",
        "top_probability",
        "margin",
        "prediction_set",
        "set_size",
        "novel",
        "novel_reason",
        "novelty_p_value",
        "dose_consistent",
    ]
    first = [c for c in first if c in table.columns]
    rest = [c for c in table.columns if c.startswith("neighbour_")]
    table = table[first + rest + prob_cols]
    return table.sort_values(
        ["novel", "set_size", "top_probability", COMPOUND, CONCENTRATION],
        ascending=[True, True, False, True, True],
        kind="stable",
    ).reset_index(drop=True)


def calibration_similarities(
    matches: pd.DataFrame | None, postprocessed: bool
) -> np.ndarray | None:
    """The calibration treatments' similarity to their nearest annotated other-compound treatment:
    the NSC rows of a ``nearest_neighbours_<network>.tsv`` table (post-processed profiles where
    there are some, as the unannotated neighbours use): (similarities, their compounds)."""
    if matches is None or matches.empty:
        return None, None
    rows = matches[matches["Metadata_MatchScheme"] == "nsc"]
    if "Metadata_Profiles" in rows.columns:
        rows = rows[rows["Metadata_Profiles"] == ("postprocessed" if postprocessed else "raw")]
    return rows["similarity"].to_numpy(np.float64), rows[COMPOUND].astype(str).to_numpy()


def _profiles(metadata, embeddings, chain, control, source):
    """The all-compound fold's treatment profiles, unannotated ones included: post-processed
    where there is a chain (as the matching uses), else raw; and what the chain did."""
    variants, notes = fold_profiles(metadata, embeddings, chain, control, source, unannotated=True)
    return variants[-1][1], notes


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

    ``networks`` maps a network to ``treatments`` (its leave-one-compound-out treatment table),
    ``predictions`` (the all-compound fold's crop predictions), ``embeddings`` (that fold's
    embeddings, aligned with ``metadata``, or None) and ``matches`` (its nearest-neighbour table,
    or None). The ensemble (with two networks or more and an ``ensemble`` name) averages the
    networks' treatment probabilities (calibration and prediction alike) and finds neighbours in
    their concatenated unit-length profiles (:func:`cellmoa.profiles.matching.concatenate_profiles`),
    calibrated by ``ensemble_matches``. Returns ({name: unannotated table}, calibration table).
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
        treatments = ensemble_treatments(
            {n: normalised(i["treatments"]) for n, i in networks.items()}
        )
        sims, sim_compounds = calibration_similarities(ensemble_matches, bool(chain))
        calibration = Calibration(treatments, coverage, score, sims, sim_compounds)
        prob_cols = calibration.prob_cols
        stacked = pd.concat([t.assign(_network=n) for n, t in news.items()], ignore_index=True)
        counts = stacked.groupby(TREATMENT, sort=True)[
            ["n_crops", "n_wells", "n_replicates"]
        ].first()
        new = counts.join(stacked.groupby(TREATMENT, sort=True)[prob_cols].mean()).reset_index()
        if (stacked.groupby(TREATMENT).size() != len(news)).any():
            raise validation.TableError(
                "ensemble: the networks predicted different unannotated treatments"
            )
        near = (
            nearest_annotated(concatenate_profiles(profiles), neighbours)
            if len(profiles) == len(networks) and neighbours
            else None
        )
        tables[ensemble] = predict(normalised(new), calibration, near)
        calibrations.append(calibration.table(name=ensemble))
    return tables, pd.concat(calibrations, ignore_index=True)
