"""Confidence intervals for accuracies a reader can believe.

- :func:`exact_interval`: the Clopper-Pearson ("exact") interval of a binomial proportion, or the
  Wilson score interval. Treats the scored units (treatments) as independent trials; never
  collapses to a point at 0 or 100% (100/103 correct: 0.917-0.994, not 1.000-1.000).
- :func:`compound_bootstrap`: the percentile bootstrap that resamples *compounds*, each carrying
  all its treatments (concentrations) with it. Treatments of one compound share a fold model and a
  phenotype, so they are not independent; this is the headline interval of cellmoa's tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest

METHODS = {"clopper-pearson": "exact", "wilson": "wilson"}


def exact_interval(
    k: int, n: int, level: float = 0.95, method: str = "clopper-pearson"
) -> tuple[float, float]:
    """Two-sided interval for a proportion ``k / n``: Clopper-Pearson (default) or Wilson.

    Examples
    --------
    >>> [round(v, 3) for v in exact_interval(100, 103)]
    [0.917, 0.994]
    """
    if method not in METHODS:
        raise ValueError(f"unknown interval method {method!r}; use one of {', '.join(METHODS)}")
    k, n = int(k), int(n)
    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method=METHODS[method])
    return float(ci.low), float(ci.high)


def compound_bootstrap(
    correct, compounds, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the accuracy ``mean(correct)``, resampling compounds.

    Compounds are drawn with replacement, each draw keeping all of a compound's treatments.
    Seeded; NaN without data.

    Examples
    --------
    >>> args = [1, 1, 0, 1], ["a", "a", "b", "c"]
    >>> compound_bootstrap(*args, seed=0) == compound_bootstrap(*args, seed=0)
    True
    """
    correct = np.asarray(correct, dtype=float)
    compounds = np.asarray(compounds)
    if len(correct) != len(compounds):
        raise ValueError(
            f"{len(correct)} outcomes for {len(compounds)} compounds: they must be aligned"
        )
    if len(correct) == 0:
        return float("nan"), float("nan")
    frame = (
        pd.DataFrame({"c": compounds, "y": correct})
        .groupby("c", sort=True)["y"]
        .agg(["sum", "size"])
    )
    sums, sizes = frame["sum"].to_numpy(), frame["size"].to_numpy()
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(frame), (n_boot, len(frame)))
    means = sums[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def accuracy_with_intervals(
    correct, compounds, level: float = 0.95, seed: int = 0, n_boot: int = 2000, prefix: str = ""
) -> dict:
    """The accuracy of a vector of outcomes with both of its intervals.

    ``{prefix}n``, ``n_correct``, ``accuracy``, the compound-bootstrap interval (``ci_low``,
    ``ci_high``) and the Clopper-Pearson interval (``exact_ci_low``, ``exact_ci_high``); NaN
    entries (units that cannot be scored) are left out.
    """
    correct = np.asarray(correct, dtype=float)
    compounds = np.asarray(compounds)
    keep = ~np.isnan(correct)
    correct, compounds = correct[keep], compounds[keep]
    n, k = len(correct), int(correct.sum())
    low, high = compound_bootstrap(correct, compounds, n_boot=n_boot, level=level, seed=seed)
    exact_low, exact_high = exact_interval(k, n, level)
    return {
        f"{prefix}n": n,
        f"{prefix}n_correct": k,
        f"{prefix}accuracy": k / n if n else float("nan"),
        f"{prefix}ci_low": low,
        f"{prefix}ci_high": high,
        f"{prefix}exact_ci_low": exact_low,
        f"{prefix}exact_ci_high": exact_high,
    }


def paired_difference(
    before, after, compounds, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict:
    """How much ``after`` beats ``before`` on the same units.

    For example a treatment matched from raw and from post-processed profiles:
    ``lift`` = mean(after) - mean(before), its percentile bootstrap
    interval resampling compounds (each draw keeps a compound's units, both outcomes together:
    ``lift_ci_low``/``lift_ci_high``), the units only one of the two got right (``gained``,
    ``lost``) and the exact McNemar p-value of the difference (``lift_p_value``: a two-sided
    binomial test of gained vs lost). Units NaN in either are left out.

    Examples
    --------
    >>> r = paired_difference([0, 0, 1, 0], [1, 1, 1, 0], ["a", "b", "c", "d"])
    >>> r["lift"], r["gained"], r["lost"], round(r["lift_p_value"], 2)
    (0.5, 2, 0, 0.5)
    """
    before = np.asarray(before, dtype=float)
    after = np.asarray(after, dtype=float)
    compounds = np.asarray(compounds)
    if not len(before) == len(after) == len(compounds):
        raise ValueError(
            f"{len(before)}, {len(after)} outcomes for {len(compounds)} compounds: "
            "they must be aligned"
        )
    keep = ~(np.isnan(before) | np.isnan(after))
    before, after, compounds = before[keep], after[keep], compounds[keep]
    if len(before) == 0:
        return {
            "lift": float("nan"),
            "lift_ci_low": float("nan"),
            "lift_ci_high": float("nan"),
            "gained": 0,
            "lost": 0,
            "lift_p_value": float("nan"),
        }
    # the interval of a paired difference is the compound bootstrap of the per-unit differences
    low, high = compound_bootstrap(after - before, compounds, n_boot=n_boot, level=level, seed=seed)
    gained, lost = (
        int(((after == 1) & (before == 0)).sum()),
        int(((after == 0) & (before == 1)).sum()),
    )
    p = float(binomtest(gained, gained + lost).pvalue) if gained + lost else 1.0
    return {
        "lift": float((after - before).mean()),
        "lift_ci_low": low,
        "lift_ci_high": high,
        "gained": gained,
        "lost": lost,
        "lift_p_value": p,
    }
