"""MoA calls for the treatments of any profile table (``cellmoa predict-profiles``).

The image pipeline calls unannotated compounds with its networks' softmax; a profile table (a
CellProfiler or pycytominer table, or cellmoa's own ``results/profiles/<network>.parquet``) has
no classifier, so a nearest-neighbour model on the (post-processed) treatment profiles stands in
for it, and the same calibration and outputs follow (:mod:`cellmoa.evaluate.unannotated`):

- **probabilities**: for each annotated MoA the cosine similarity of the treatment to its most
  similar treatment of that MoA (1-NN per class, as NSC matching), through a softmax at
  :data:`TEMPERATURE`;
- **prediction sets**: split-conformal at the compound level, every annotated treatment's
  probabilities computed leave-one-compound-out (its compound out of the reference), exactly the
  situation of a new compound (:class:`cellmoa.evaluate.calibration.Calibration`);
- **novelty score**: how much further the treatment is from its :data:`NOVELTY_NEIGHBOURS`
  nearest annotated treatments than those are from their own nearest annotated treatment of
  another compound (a local-outlier score in similarity: a treatment near a tight MoA cluster but
  outside it scores high). Its conformal p-value among the annotated treatments' scores (each
  computed leave-one-compound-out) flags a treatment ``novel`` at ``p <= 1 - coverage``; with the
  empty-set and lowest-top-probability rules of the image pipeline.

Measured on the real BBBC021 CellProfiler profiles with each MoA hidden in turn
(:func:`cellmoa.evaluate.novelty_check.hidden_moa_check`, docs/benchmarks.md), the local score
ranks the hidden MoA's treatments above the known ones' with a pooled AUROC of 0.96, where the
naive score (one minus the highest similarity to an annotated treatment) gives 0.90.

:func:`call_profile_table` runs it all on a profile table (rows of wells, cells or crops): the
post-processing chain, the treatment profiles, the calls.

Examples
--------
>>> t = pd.DataFrame({"Metadata_Compound": list("abcdef"),
...                   "Metadata_Concentration": [1.0] * 6,
...                   "Metadata_MoA": list("XXXYYY"),
...                   "f1": [1.0, 0.9, 0.95, 0.0, 0.1, 0.05],
...                   "f2": [0.0, 0.1, 0.05, 1.0, 0.9, 0.95]})
>>> model = ProfileModel(t)
>>> loco = model.leave_one_compound_out()
>>> (loco["top_moa"] == loco["Metadata_MoA"]).all()
np.True_
>>> new = t.iloc[:1].assign(Metadata_Compound="new", f1=0.97, f2=0.02)
>>> model.scores(new)["top_moa"].tolist()
['X']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellmoa import validation
from cellmoa.columns import COMPOUND, COMPOUND_DOSE, CONCENTRATION, MOA, PROB_PREFIX
from cellmoa.evaluate.calibration import LEVELS, Calibration
from cellmoa.evaluate.neighbours import nearest_annotated
from cellmoa.evaluate.unannotated import predict
from cellmoa.profiles.nearest import postprocessed_rows
from cellmoa.profiles.tables import UNANNOTATED, treatment_profiles

#: softmax temperature of the class similarities (cosine, -1..1)
TEMPERATURE = 0.1
#: how many nearest annotated treatments the novelty score compares with
NOVELTY_NEIGHBOURS = 2


def _unit(profiles: pd.DataFrame, features: list[str]) -> np.ndarray:
    x = profiles[features].to_numpy(np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _own_nearest(similarity: np.ndarray, compounds: np.ndarray) -> np.ndarray:
    """Each reference treatment's similarity to its nearest reference of another compound."""
    other = compounds[:, None] != compounds[None, :]
    masked = np.where(other, similarity, -np.inf)
    return masked.max(axis=1) if len(masked) else np.zeros(0)


class ProfileModel:
    """A nearest-neighbour MoA model on annotated treatment profiles.

    Parameters
    ----------
    annotated : pandas.DataFrame
        One row per annotated treatment: ``Metadata_Compound``, ``Metadata_Concentration``,
        ``Metadata_MoA`` and the features (e.g. from
        :func:`cellmoa.profiles.tables.treatment_profiles`), at least two compounds.
    features : list of str, optional
        The feature columns (default: ``annotated.attrs["features"]``, else the numeric columns
        not named ``Metadata_*``).
    temperature : float
        Softmax temperature of the class similarities.
    neighbours : int
        The novelty score's number of nearest annotated treatments.
    """

    def __init__(
        self,
        annotated: pd.DataFrame,
        features: list[str] | None = None,
        temperature: float = TEMPERATURE,
        neighbours: int = NOVELTY_NEIGHBOURS,
    ):
        validation.require_columns(annotated, [COMPOUND, CONCENTRATION, MOA], "annotated profiles")
        if annotated[COMPOUND].nunique() < 2:
            raise validation.TableError(
                "annotated profiles: at least two annotated compounds are needed to call MoAs"
            )
        if temperature <= 0 or neighbours < 1:
            raise ValueError(
                f"temperature must be > 0 and neighbours >= 1, not {temperature}, {neighbours}"
            )
        self.features = list(
            features or annotated.attrs.get("features") or validation.feature_columns(annotated)
        )
        self.annotated = annotated.reset_index(drop=True)
        self.temperature, self.neighbours = float(temperature), int(neighbours)
        self.x = _unit(self.annotated, self.features)
        self.moas = self.annotated[MOA].astype(str).to_numpy()
        self.compounds = self.annotated[COMPOUND].astype(str).to_numpy()
        self.classes = sorted(set(self.moas))
        self.prob_cols = [f"{PROB_PREFIX}{c}" for c in self.classes]

    def _calls(self, similarity: np.ndarray, reference: np.ndarray) -> dict:
        """Probabilities and novelty scores of rows with ``similarity`` (rows, annotated).

        Only the annotated treatments in the boolean mask ``reference`` count.
        """
        sim = similarity[:, reference]
        moas, compounds = self.moas[reference], self.compounds[reference]
        per_class = np.full((len(sim), len(self.classes)), -np.inf)
        for j, moa in enumerate(self.classes):
            if (moas == moa).any():
                per_class[:, j] = sim[:, moas == moa].max(axis=1)
        logits = (per_class - per_class.max(axis=1, keepdims=True)) / self.temperature
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        ref_sim = (self.x[reference] @ self.x[reference].T) if len(sim) else None
        own = _own_nearest(ref_sim, compounds) if ref_sim is not None else np.zeros(0)
        k = min(self.neighbours, sim.shape[1])
        order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        near = np.take_along_axis(sim, order, axis=1)
        novelty = (own[order] - near).mean(axis=1)
        return {"probabilities": p, "novelty": novelty, "nearest": near[:, 0]}

    def _table(self, rows: pd.DataFrame, calls: dict) -> pd.DataFrame:
        out = rows[[c for c in rows.columns if c not in self.features]].copy()
        p = calls["probabilities"]
        out["top_moa"] = [self.classes[i] for i in p.argmax(axis=1)]
        out["novelty_score"] = calls["novelty"]
        out["nearest_similarity"] = calls["nearest"]
        for j, col in enumerate(self.prob_cols):
            out[col] = p[:, j]
        return out.reset_index(drop=True)

    def leave_one_compound_out(self) -> pd.DataFrame:
        """Every annotated treatment called with its own compound out of the reference.

        Returns
        -------
        pandas.DataFrame
            The metadata, ``top_moa``, ``novelty_score``, ``nearest_similarity`` (to the nearest
            annotated treatment of another compound) and ``prob_<moa>``.
        """
        similarity = self.x @ self.x.T
        parts = []
        for compound in sorted(set(self.compounds)):
            rows = self.compounds == compound
            calls = self._calls(similarity[rows], self.compounds != compound)
            parts.append(self._table(self.annotated[rows], calls))
        return (
            pd.concat(parts, ignore_index=True)
            .sort_values(COMPOUND_DOSE, kind="stable")
            .reset_index(drop=True)
        )

    def scores(self, new: pd.DataFrame) -> pd.DataFrame:
        """Calls of new treatments against every annotated treatment.

        Parameters
        ----------
        new : pandas.DataFrame
            Treatment profiles with the model's feature columns.

        Returns
        -------
        pandas.DataFrame
            As :meth:`leave_one_compound_out`, for ``new``.
        """
        validation.require_columns(new, self.features, "new treatment profiles")
        similarity = _unit(new, self.features) @ self.x.T
        return self._table(new, self._calls(similarity, np.ones(len(self.x), bool)))

    def calibration(self, loco: pd.DataFrame, coverage: float = 0.9, score: str = "lac"):
        """The :class:`Calibration` of the leave-one-compound-out calls ``loco``.

        Its novelty similarities are the negated novelty scores (higher = more typical).
        """
        return Calibration(
            loco, coverage, score, -loco["novelty_score"].to_numpy(np.float64), loco[COMPOUND]
        )


def predict_profiles(
    annotated: pd.DataFrame,
    new: pd.DataFrame,
    coverage: float = 0.9,
    score: str = "lac",
    neighbours: int = 3,
    levels=LEVELS,
    **model_settings,
) -> dict[str, pd.DataFrame]:
    """Calibrated MoA calls for the treatments without an MoA.

    Parameters
    ----------
    annotated, new : pandas.DataFrame
        Treatment profiles of the annotated treatments and of the new ones (same features).
    coverage : float
        Nominal coverage of the prediction sets.
    score : {"lac", "aps"}
        Nonconformity score.
    neighbours : int
        How many nearest annotated treatments to name.
    levels : sequence of float
        Nominal levels of the calibration table.
    **model_settings
        ``features``, ``temperature``, ``neighbours`` of the novelty score
        (``novelty_neighbours`` here) for :class:`ProfileModel`.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``predictions`` (one row per new treatment, the columns of
        :func:`cellmoa.evaluate.unannotated.predict` plus ``novelty_score``), ``calibration``
        (:meth:`Calibration.table`) and ``annotated`` (the annotated treatments' calls
        leave-one-compound-out, with ``correct``).
    """
    settings = dict(model_settings)
    if "novelty_neighbours" in settings:
        settings["neighbours"] = settings.pop("novelty_neighbours")
    model = ProfileModel(annotated, **settings)
    loco = model.leave_one_compound_out()
    calibration = model.calibration(loco, coverage, score)
    calls = model.scores(new) if len(new) else None
    if calls is not None:
        both = pd.concat(
            [
                new[COMPOUND_DOSE + model.features].assign(**{MOA: UNANNOTATED}),
                annotated[COMPOUND_DOSE + [MOA] + model.features],
            ],
            ignore_index=True,
        )
        near = nearest_annotated(both, neighbours) if neighbours else None
        table = predict(calls, calibration, near, typicality=-calls["novelty_score"].to_numpy())
    else:
        table = pd.DataFrame(columns=[*COMPOUND_DOSE, "top_moa", "prediction_set", "novel"])
    loco = loco.assign(correct=loco["top_moa"] == loco[MOA])
    return {
        "predictions": table,
        "calibration": calibration.table(levels),
        "annotated": loco,
    }


def call_profile_table(
    table: pd.DataFrame,
    control: str | None = None,
    chain: list | None = None,
    features=None,
    nan_policy: str = "error",
    source: str = "profiles",
    **settings,
) -> dict[str, pd.DataFrame]:
    """MoA calls for the unannotated treatments of a profile table.

    Parameters
    ----------
    table : pandas.DataFrame
        Profile rows with ``Metadata_Compound``, ``Metadata_Concentration`` and
        ``Metadata_MoA``; a row whose MoA is empty or :data:`UNANNOTATED` is of a treatment to
        call.
    control : str, optional
        The control compound: the rows the chain fits on, left out of the treatments.
    chain : list, optional
        Post-processing steps (:func:`cellmoa.profiles.chains.parse_chain`), run on every row
        (the unannotated ones too) before the rows are averaged into treatments.
    features, nan_policy, source
        As for :func:`cellmoa.profiles.nearest.evaluate_profiles`.
    **settings
        ``coverage``, ``score``, ``neighbours``, ``temperature``, ``novelty_neighbours`` of
        :func:`predict_profiles`.

    Returns
    -------
    dict of str to pandas.DataFrame
        The tables of :func:`predict_profiles` (``predictions`` with ``n_rows``, the rows
        averaged into each treatment), ``postprocessing`` (what each step did),
        ``annotated_profiles`` (the annotated treatment profiles the model holds) and
        ``features`` (a list: their feature columns).
    """
    validation.require_columns(table, [COMPOUND, CONCENTRATION, MOA], source)
    missing = table[MOA].isna() | table[MOA].astype(str).str.strip().eq("")
    table = table.assign(**{MOA: table[MOA].where(~missing, UNANNOTATED)})
    notes = pd.DataFrame(columns=["step", "what"])
    if chain:
        table, features, notes = postprocessed_rows(
            table, features, nan_policy, control, chain, source
        )
    profiles = treatment_profiles(
        table, features=features, control=control, nan_policy=nan_policy, source=source
    )
    features = list(profiles.attrs["features"])
    rows = validation.drop_controls(table, control, source)
    counts = (
        rows.assign(**{CONCENTRATION: validation.concentration_values(rows[CONCENTRATION], source)})
        .groupby(COMPOUND_DOSE, sort=True)
        .size()
        .rename("n_rows")
        .reset_index()
    )
    profiles = profiles.merge(counts, on=COMPOUND_DOSE, how="left")
    new = profiles[MOA] == UNANNOTATED
    out = predict_profiles(
        profiles[~new].drop(columns="n_rows"),
        profiles[new].drop(columns=MOA),
        **settings,
        features=features,
    )
    out["postprocessing"] = notes
    out["annotated_profiles"] = profiles[~new].drop(columns="n_rows").reset_index(drop=True)
    out["features"] = list(features)
    return out
