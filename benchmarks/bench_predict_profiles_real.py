"""MoA calls for profile tables measured on the real BBBC021 CellProfiler well profiles.

What ``cellmoa predict-profiles`` promises, measured (docs/benchmarks.md): reads the real table
as ``bench_profiles_real.py`` does (``../shared/``), runs a post-processing chain, averages the
wells into the 103 treatments and then

(a) hides each annotated compound in turn (its probabilities computed without it, the conformal
    threshold calibrated on the other compounds): the coverage of the prediction sets at nominal
    0.8 and 0.9, of treatments (with the Clopper-Pearson interval) and of compounds (every
    compound weighing the same, the unit the conformal guarantee is about), and the mean set size;
(b) hides each MoA in turn (all its compounds): the share of its treatments flagged novel, the
    share of the other MoAs' treatments flagged by the novelty p-value rule, and the AUROC of the
    novelty score against the known MoAs' treatments, beside the naive score's (one minus the
    similarity to the nearest annotated treatment).

    .venv/bin/python benchmarks/bench_predict_profiles_real.py [--shared ../shared]

Exits 2 with a message where the shared table is absent; the product never reads ``../shared``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "src"))
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
from bench_profiles_real import CONTROL, STANDARD, load_real, shared_ready  # noqa: E402

CHAINS = {"cellprofiler": None, "standard (mad screen, fs, ZCA-cor eps 1)": STANDARD}


def measure(table, features, steps, coverages=(0.8, 0.9)):
    """The coverage rows and the hidden-MoA rows of one chain."""
    from cellmoa.evaluate.novelty_check import hidden_moa_check
    from cellmoa.evaluate.profile_calls import predict_profiles
    from cellmoa.profiles.chains import parse_chain, postprocess
    from cellmoa.profiles.tables import treatment_profiles

    rows, feats, _ = postprocess(table, features, parse_chain(steps), source="real profiles")
    profiles = treatment_profiles(rows, features=feats, control=CONTROL, source="real profiles")
    out = predict_profiles(profiles, profiles.iloc[:0], levels=coverages, features=feats)
    accuracy = out["annotated"]["correct"]
    checks = {c: hidden_moa_check(profiles, coverage=c, features=feats) for c in coverages}
    return out["calibration"], (int(accuracy.sum()), len(accuracy)), checks


def main(argv=None) -> int:
    """Measure both chains and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parents[1] / "shared")
    args = parser.parse_args(argv)
    if not shared_ready(args.shared):
        return 2
    from cellmoa.profiles.chains import CHAINS as NAMED

    table, features = load_real(args.shared)
    pd.set_option("display.width", 200)
    for name, steps in CHAINS.items():
        start = time.perf_counter()
        calibration, (right, n), checks = measure(table, features, steps or NAMED[name])
        print(f"== chain {name}: top MoA right {right}/{n} (leave-one-compound-out)")
        columns = ["nominal_coverage", "empirical_coverage", "coverage_ci_low"]
        columns += ["coverage_ci_high", "compound_coverage", "mean_set_size", "empty_sets"]
        print(calibration[columns].round(3).to_string(index=False))
        for coverage, check in checks.items():
            print(f"-- each MoA hidden, novelty rule at {coverage}:")
            print(check.round(3).to_string(index=False))
        print(f"({time.perf_counter() - start:.1f} s)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
