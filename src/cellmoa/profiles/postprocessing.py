"""Post-processing of profiles against the control samples, as an ordered chain of steps.

Each step is a small object whose :meth:`apply` takes a profile table (``Metadata_*`` columns,
feature columns, ``Metadata_IsControl`` = 1 for control rows) and its feature list, and returns the
new table, the new feature list and a line saying what it did. The maths is the field's library,
pycytominer (``normalize``, ``feature_select``, ``Spherize``) and scikit-learn (PCA); the batch
alignment is CORAL (Sun et al. 2016): each batch's controls whitened and re-coloured to the
covariance of all controls, or Harmony (``harmonypy``) on all samples; ``rank_normal`` is the rank
inverse-normal transform of each feature. :data:`STEPS` names them; chains of steps, named
chains and running a chain: :mod:`cellmoa.profiles.chains`.

>>> step = STEPS["normalize"](method="standardize")
>>> type(step).__name__, step.method
('Normalize', 'standardize')

Two measured lessons shape the refusals: statistics of a handful of control wells per plate hurt
(``by: screen`` or ``batch`` is the default, not ``plate``), and sphering collapses when the
features outnumber the control samples, so that chain is an error naming both counts (reduce
first with ``pca`` or ``feature_select``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cellmoa.columns import BATCH, IS_CONTROL, PLATE
from cellmoa.validation import TableError

log = logging.getLogger(__name__)

GROUPS = {"screen": None, "batch": BATCH, "plate": PLATE}
METHODS = ("standardize", "robustize", "mad_robustize", "center")


def _controls(table: pd.DataFrame, step: str) -> np.ndarray:
    if IS_CONTROL not in table.columns:
        raise TableError(
            f"step {step} is fit on the control samples, but the table has no {IS_CONTROL} column "
            "(give --control for a profile table; use samples: all / fit_on: all otherwise)"
        )
    mask = table[IS_CONTROL].to_numpy().astype(bool)
    if not mask.any():
        raise TableError(
            f"step {step} is fit on the control samples, but the table has no control rows"
        )
    return mask


def _groups(table: pd.DataFrame, by: str, step: str):
    if by not in GROUPS:
        raise ValueError(f"step {step}: by must be one of {', '.join(GROUPS)}, not {by!r}")
    column = GROUPS[by]
    if column is None:
        return [(None, table.index)]
    if column not in table.columns:
        raise TableError(f"step {step} by {by} needs a {column} column")
    return list(table.groupby(column, sort=True).groups.items())


@dataclass
class Normalize:
    """pycytominer ``normalize`` against the controls (or all samples).

    Over the whole screen, each batch or each plate: ``method`` standardize, robustize or
    mad_robustize; or ``center``: the reference samples' mean subtracted, nothing divided (no
    spread estimated from a handful of control wells: the robust choice per batch or plate).

    Examples
    --------
    >>> t = pd.DataFrame({"Metadata_Batch": ["a", "a", "b", "b"],
    ...                   "Metadata_IsControl": [1, 0, 1, 0], "f": [1.0, 3.0, 10.0, 13.0]})
    >>> Normalize(method="center", by="batch").apply(t, ["f"])[0]["f"].tolist()
    [0.0, 2.0, 0.0, 3.0]
    """

    method: str = "standardize"
    by: str = "screen"
    samples: str = "controls"

    def apply(self, table, features):
        """Return (table, features, note): the features normalised, group by group."""
        from pycytominer import normalize

        if self.method not in METHODS:
            raise ValueError(
                f"step normalize: method must be one of {', '.join(METHODS)}, not {self.method!r}"
            )
        if self.samples not in ("controls", "all"):
            raise ValueError(
                f"step normalize: samples must be controls or all, not {self.samples!r}"
            )
        if self.samples == "controls":
            _controls(table, "normalize")
        meta = [c for c in table.columns if c not in features]
        parts = []
        for key, index in _groups(table, self.by, "normalize"):
            part = table.loc[index]
            query = "all"
            if self.samples == "controls":
                n = int(part[IS_CONTROL].astype(bool).sum())
                if n < (1 if self.method == "center" else 2):
                    raise TableError(
                        f"step normalize by {self.by}: {key} has {n} control sample(s); "
                        "statistics need at least 2, a mean 1 (normalise by batch or screen)"
                    )
                query = f"{IS_CONTROL} == 1"
            if self.method == "center":
                reference = (
                    part[part[IS_CONTROL].astype(bool)] if self.samples == "controls" else part
                )
                out = part.copy()
                out[features] = part[features].to_numpy(np.float64) - reference[features].to_numpy(
                    np.float64
                ).mean(axis=0)
            else:
                out = normalize(
                    part, features=features, meta_features=meta, samples=query, method=self.method
                )
            parts.append(out[table.columns])
        result = pd.concat(parts).loc[table.index]
        return (
            result,
            features,
            f"{self.method} by {self.by} on {self.samples} samples ({len(features)} features)",
        )


@dataclass
class FeatureSelect:
    """pycytominer ``feature_select``: drop near-constant, correlated and NaN-laden features."""

    operations: list = field(
        default_factory=lambda: ["variance_threshold", "correlation_threshold", "drop_na_columns"]
    )
    corr_threshold: float = 0.9
    freq_cut: float = 0.05
    unique_cut: float = 0.01

    def apply(self, table, features):
        """Return (table, features, note): the table without the features left out."""
        from pycytominer import feature_select

        out = feature_select(
            table,
            features=features,
            operation=list(self.operations),
            corr_threshold=self.corr_threshold,
            freq_cut=self.freq_cut,
            unique_cut=self.unique_cut,
        )
        kept = [c for c in features if c in out.columns]
        if not kept:
            raise TableError("step feature_select removed every feature")
        return (
            table[[c for c in table.columns if c not in features] + kept],
            kept,
            f"{', '.join(self.operations)}: kept {len(kept)} of {len(features)} features",
        )


@dataclass
class PCA:
    """scikit-learn PCA fit on the controls (or all samples).

    ``n_components`` is an integer, or a fraction of the variance to keep. Never more components
    than fit samples minus one.
    """

    n_components: float = 0.99
    fit_on: str = "all"

    def apply(self, table, features):
        """Return (table, features, note): the features replaced by the components ``pc_<i>``."""
        from sklearn.decomposition import PCA as SkPCA

        mask = _controls(table, "pca") if self.fit_on == "controls" else np.ones(len(table), bool)
        x = table[features].to_numpy(np.float64)
        fit = x[mask]
        limit = min(len(features), len(fit) - 1)
        n = self.n_components
        if n >= 1:
            n = int(n)
            if n > limit:
                log.info(
                    "pca: %d components asked, %d fit samples and %d features allow %d",
                    n,
                    len(fit),
                    len(features),
                    limit,
                )
                n = limit
        model = SkPCA(n_components=n, svd_solver="full", random_state=0).fit(fit)
        values = model.transform(x)
        names = [f"pc_{i}" for i in range(values.shape[1])]
        meta = table[[c for c in table.columns if c not in features]]
        out = pd.concat([meta, pd.DataFrame(values, columns=names, index=table.index)], axis=1)
        kept = float(model.explained_variance_ratio_.sum())
        note = (
            f"{len(names)} components of {len(features)} features, fit on {int(mask.sum())} "
            f"{self.fit_on} samples ({100 * kept:.1f}% of their variance)"
        )
        return out, names, note


@dataclass
class Spherize:
    """pycytominer ``Spherize`` (typical variation normalisation) fit on the controls.

    The controls' covariance becomes the identity. Refused when the features outnumber the
    control samples.
    """

    method: str = "ZCA-cor"
    epsilon: float = 1e-6
    center: bool = True

    def apply(self, table, features):
        """Return (table, features, note): the features sphered."""
        from pycytominer.operations import Spherize as PcmSpherize

        mask = _controls(table, "spherize")
        n = int(mask.sum())
        if len(features) >= n:
            raise TableError(
                f"step spherize would fit {len(features)} features on {n} control samples: the "
                "controls' covariance is singular and sphering collapses. Reduce first: a pca "
                f"step with n_components below {n}, or feature_select"
            )
        model = PcmSpherize(
            epsilon=self.epsilon, center=self.center, method=self.method, return_numpy=True
        )
        model.fit(table.loc[mask, features].astype(np.float64))
        values = np.asarray(model.transform(table[features].astype(np.float64)))
        out = table.copy()
        out[features] = values
        return (
            out,
            features,
            f"{self.method}, epsilon {self.epsilon:g}, fit on {n} control samples "
            f"({len(features)} features)",
        )


@dataclass
class AlignBatches:
    """CORAL batch alignment (Sun et al. 2016) on the controls.

    Each batch's rows are whitened by its controls' covariance and re-coloured (and re-centred)
    to the covariance and mean of all controls; ``epsilon`` is added to the diagonals. Refused
    when a batch has fewer control samples than features.
    """

    epsilon: float = 1e-3

    def apply(self, table, features):
        """Return (table, features, note): every batch aligned to all the controls."""
        mask = _controls(table, "align_batches")
        if BATCH not in table.columns:
            raise TableError(f"step align_batches needs a {BATCH} column")
        x = table[features].to_numpy(np.float64)
        target_mean, target = _moments(x[mask], self.epsilon)
        colour = _matrix_power(target, 0.5)
        out = x.copy()
        for batch, index in table.groupby(BATCH, sort=True).indices.items():
            controls = x[index][mask[index]]
            if len(controls) <= len(features):
                raise TableError(
                    f"step align_batches: batch {batch} has {len(controls)} control samples for "
                    f"{len(features)} features; reduce first (pca) or drop this step"
                )
            mean, cov = _moments(controls, self.epsilon)
            out[index] = (x[index] - mean) @ _matrix_power(cov, -0.5) @ colour + target_mean
        result = table.copy()
        result[features] = out
        n_batches = table[BATCH].nunique()
        return (
            result,
            features,
            f"CORAL over {n_batches} batches, epsilon {self.epsilon:g} ({len(features)} features)",
        )


@dataclass
class Harmony:
    """Harmony batch integration (Korsunsky et al. 2019, ``harmonypy``) over ``Metadata_Batch``.

    Soft clusters shared by the batches, each batch's offset within a cluster removed. Meant for
    a few dozen features: reduce first (``pca``). ``theta`` is the diversity penalty (Harmony's
    default 2), ``seed`` its random state.
    """

    theta: float = 2.0
    max_iter: int = 10
    seed: int = 0

    def apply(self, table, features):
        """Return (table, features, note): the rows integrated over the batches."""
        import harmonypy

        if BATCH not in table.columns:
            raise TableError(f"step harmony needs a {BATCH} column")
        n_batches = table[BATCH].nunique()
        if n_batches < 2:
            return table, features, "harmony: one batch, nothing to integrate"
        x = table[features].to_numpy(np.float64)
        meta = pd.DataFrame({"batch": table[BATCH].astype(str).to_numpy()})
        logging.getLogger("harmonypy").setLevel(logging.WARNING)
        model = harmonypy.run_harmony(
            x,
            meta,
            ["batch"],
            theta=self.theta,
            max_iter_harmony=self.max_iter,
            verbose=False,
            random_state=self.seed,
        )
        corrected = np.asarray(model.Z_corr, dtype=np.float64)
        if corrected.shape != x.shape:
            corrected = corrected.T
        out = table.copy()
        out[features] = corrected
        return (
            out,
            features,
            (
                f"Harmony over {n_batches} batches, theta {self.theta:g}, "
                f"{len(table)} samples ({len(features)} features)"
            ),
        )


@dataclass
class RankNormal:
    """Rank inverse-normal transform of each feature, over the screen, each batch or each plate.

    Each feature's values in a group become ``Phi^-1((rank - 0.5) / n)`` (ties get their mean
    rank): every group's distribution of every feature the standard normal, outliers tamed.

    Examples
    --------
    >>> t = pd.DataFrame({"Metadata_IsControl": [1, 0, 0], "f": [5.0, -100.0, 7.0]})
    >>> [round(v, 2) for v in RankNormal().apply(t, ["f"])[0]["f"]]
    [0.0, -0.97, 0.97]
    """

    by: str = "screen"

    def apply(self, table, features):
        """Return (table, features, note): each feature's ranks mapped to normal quantiles."""
        from scipy.special import ndtri

        out = table.copy()
        for _, index in _groups(table, self.by, "rank_normal"):
            ranks = table.loc[index, features].rank(axis=0, method="average").to_numpy(np.float64)
            out.loc[index, features] = ndtri((ranks - 0.5) / len(index))
        return out, features, f"rank inverse-normal by {self.by} ({len(features)} features)"


def _moments(x: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1) + epsilon * np.eye(x.shape[1])


def _matrix_power(cov: np.ndarray, power: float) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.clip(values, 1e-12, None) ** power) @ vectors.T


STEPS = {
    "normalize": Normalize,
    "feature_select": FeatureSelect,
    "pca": PCA,
    "spherize": Spherize,
    "align_batches": AlignBatches,
    "harmony": Harmony,
    "rank_normal": RankNormal,
}
