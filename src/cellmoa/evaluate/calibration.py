"""Split-conformal calibration of MoA predictions on treatments predicted leave-one-compound-out.

Each annotated treatment was predicted by a model that never saw its compound, exactly the
situation of a new compound, so its probabilities give honest nonconformity scores
(:mod:`cellmoa.evaluate.conformal`, calibrated at the compound level). A :class:`Calibration`
holds those scores, the threshold of the chosen coverage, the smallest top probability of any
calibration treatment, and the calibration treatments' similarities to their nearest annotated
treatment of another compound (for the embedding novelty rule of
:mod:`cellmoa.evaluate.unannotated`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellmoa import validation
from cellmoa.columns import (
    COMPOUND,
    MATCH_SCHEME,
    MOA,
    NETWORK,
    PROB_PREFIX,
    PROFILES,
)
from cellmoa.evaluate import conformal
from cellmoa.evaluate.accuracy import class_columns
from cellmoa.intervals import exact_interval

#: nominal levels of the calibration table and plot (with the configured one)
LEVELS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def normalised(table: pd.DataFrame) -> pd.DataFrame:
    """The ``prob_*`` columns scaled to sum to 1 in every row (medians of probabilities do not).

    Parameters
    ----------
    table : pandas.DataFrame
        A table with ``prob_<moa>`` columns.

    Returns
    -------
    pandas.DataFrame
        A copy whose probabilities sum to 1 in every row.

    Raises
    ------
    cellmoa.validation.TableError
        When a row's probabilities sum to 0 or less.

    Examples
    --------
    >>> normalised(pd.DataFrame({"prob_X": [0.25], "prob_Y": [0.25]})).values.tolist()
    [[0.5, 0.5]]
    """
    cols = class_columns(table)
    out = table.copy()
    total = out[cols].sum(axis=1).to_numpy()
    if (total <= 0).any():
        raise validation.TableError(
            "a treatment's probabilities sum to 0: the predictions are broken"
        )
    out[cols] = out[cols].to_numpy() / total[:, None]
    return out


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
    similarity_compounds : array, optional
        The compound of each similarity; without them every similarity counts as a compound of
        its own.

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
        self.classes = [c[len(PROB_PREFIX) :] for c in self.prob_cols]
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
        """Conformal p-value of each nearest-annotated similarity.

        ``(1 + the share of calibration compounds at or below it) / (n + 1)``, every compound's
        treatments sharing a weight of 1. A compound of a known MoA gets
        ``p <= 1 - coverage`` with probability at most ``1 - coverage``.

        Parameters
        ----------
        similarity : float or array
            New treatments' cosine similarity to their nearest annotated treatment.

        Returns
        -------
        numpy.ndarray
            One p-value per similarity; NaN without calibration similarities (or for a NaN
            similarity).
        """
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
        """The MoAs in each row's prediction set.

        Parameters
        ----------
        probabilities : numpy.ndarray
            (rows, classes) probabilities, classes in :attr:`classes` order.

        Returns
        -------
        numpy.ndarray
            Boolean (rows, classes).
        """
        return conformal.prediction_sets(probabilities, self.threshold, self.score)

    def table(self, levels=LEVELS, name: str = "") -> pd.DataFrame:
        """Honest coverage at each nominal level.

        Every compound's treatments get the sets of a threshold calibrated on the other
        compounds.

        Parameters
        ----------
        levels : sequence of float
            Nominal levels (the configured coverage is always added).
        name : str
            The network (or ensemble), in the column ``Metadata_Network``.

        Returns
        -------
        pandas.DataFrame
            Columns ``Metadata_Network``, ``nominal_coverage``, ``empirical_coverage``
            (treatments covered) with its Clopper-Pearson interval (``coverage_ci_low``,
            ``coverage_ci_high``), ``compound_coverage`` (every compound weighing the same),
            ``mean_set_size``, ``empty_sets``, ``n_treatments``, ``n_compounds``, ``score``,
            ``configured``.
        """
        rows = []
        for level in sorted({*map(float, levels), self.coverage}):
            held = conformal.leave_one_compound_out(
                self.probabilities, self.labels, self.compounds, level, self.score
            )
            k, n = int(held["covered"].sum()), len(held)
            low, high = exact_interval(k, n)
            rows.append(
                {
                    NETWORK: name,
                    "nominal_coverage": level,
                    "empirical_coverage": k / n if n else np.nan,
                    "coverage_ci_low": low,
                    "coverage_ci_high": high,
                    "compound_coverage": float(held.groupby(COMPOUND)["covered"].mean().mean())
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


def calibration_similarities(matches: pd.DataFrame | None, postprocessed: bool):
    """The calibration treatments' similarity to their nearest annotated other-compound treatment.

    Parameters
    ----------
    matches : pandas.DataFrame or None
        A ``nearest_neighbours_<network>.tsv`` table
        (:func:`cellmoa.profiles.nearest.fold_matches`).
    postprocessed : bool
        Take the post-processed profiles' matches where the table has some (as the unannotated
        treatments' neighbours use), else the raw ones'.

    Returns
    -------
    similarities, compounds : numpy.ndarray or None
        The similarities of its NSC rows and their compounds; (None, None) without matches.
    """
    if matches is None or matches.empty:
        return None, None
    rows = matches[matches[MATCH_SCHEME] == "nsc"]
    if PROFILES in rows.columns:
        rows = rows[rows[PROFILES] == ("postprocessed" if postprocessed else "raw")]
    return rows["similarity"].to_numpy(np.float64), rows[COMPOUND].astype(str).to_numpy()
