"""The CellProfiler baseline's classifier on the real BBBC021 CellProfiler well profiles.

Reads ``../shared/profiles/`` (Ljosa et al. 2013: 632 wells x 516 features; joined to compound,
dose, MoA and week as ``bench_profiles_real.py`` does) and scores what the workflow's ``baseline``
rule does with its own well profiles, on these: the features cleaned and z-scored on the DMSO
wells (:func:`cellmoa.features.baseline.crop_profiles`), then per leave-one-compound-out fold (38)
a logistic regression on the other compounds' wells predicting the held-out compound's
(:func:`cellmoa.features.baseline.fold_predictions`), aggregated to the 103 treatments by the
paper's rule (:func:`cellmoa.evaluate.accuracy.treatment_predictions`). Printed for several
regularisation strengths C: treatments right of 103, with the compound-bootstrap interval, and the
seconds for the 38 folds. What the baseline's default C rests on (docs/benchmarks.md).

    .venv/bin/python benchmarks/bench_baseline_real.py [--shared ../shared]

Exits 2 with a message where the shared table is absent; the product never reads ``../shared``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pandas as pd  # noqa: E402
from bench_profiles_real import load_real, shared_ready  # noqa: E402

from cellmoa.columns import BATCH, COMPOUND, CONCENTRATION, IS_CONTROL, MOA, PLATE, WELL  # noqa: E402


def crop_metadata(table: pd.DataFrame) -> pd.DataFrame:
    """One "crop" per well, in the tensors' metadata columns (a well is its own replicate)."""
    control = table[IS_CONTROL].astype(bool)
    return pd.DataFrame(
        {
            "plate": table[PLATE],
            "well": table[WELL],
            "batch": table[BATCH],
            "cell_line": "MCF-7",
            "compound": table[COMPOUND],
            "concentration": table[CONCENTRATION],
            "moa": table[MOA],
            "site": 1,
            "crop": 0,
            "replicate": table.groupby([COMPOUND, CONCENTRATION]).cumcount() + 1,
            "image_number": range(len(table)),
            "is_control": control.astype(int),
            "annotated": (~control).astype(int),
        }
    ).reset_index(drop=True)


def score(table: pd.DataFrame, features: list[str], c: float) -> tuple[pd.DataFrame, float]:
    """The 103 treatments' calls of the baseline at regularisation ``c``, and the seconds taken."""
    from cellmoa.evaluate.accuracy import treatment_predictions
    from cellmoa.features.baseline import crop_profiles, fold_predictions

    metadata = crop_metadata(table)
    wells = table[[PLATE, WELL, *features]]
    t0 = time.perf_counter()
    profiles, _ = crop_profiles(metadata, wells)
    compounds = sorted(metadata.loc[metadata["annotated"] == 1, "compound"].unique())
    folds = [fold_predictions(metadata, profiles, compound, "nsc", c=c) for compound in compounds]
    seconds = time.perf_counter() - t0
    return treatment_predictions(pd.concat(folds, ignore_index=True), "DMSO"), seconds


def main(argv=None) -> int:
    """Score the baseline's classifier at several C and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args(argv)
    if not shared_ready(args.shared):
        return 2
    from cellmoa.intervals import compound_bootstrap

    table, features = load_real(args.shared)
    print(f"{len(table)} wells, {len(features)} features, {table[IS_CONTROL].sum()} DMSO wells")
    for c in (0.01, 0.1, 1.0, 10.0):
        treatments, seconds = score(table, features, c)
        low, high = compound_bootstrap(treatments["correct"], treatments["Metadata_Compound"])
        print(
            f"C = {c:<5}: {int(treatments['correct'].sum())}/{len(treatments)} treatments "
            f"({treatments['correct'].mean():.1%}, compound bootstrap {low:.1%}-{high:.1%}), "
            f"38 folds in {seconds:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
