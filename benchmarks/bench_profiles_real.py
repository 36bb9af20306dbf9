"""Post-processing chains on the real BBBC021 CellProfiler well profiles (Ljosa et al. 2013).

Reads ``../shared/profiles/ljosa_jbiomolscreen_2013_per_well_mean.csv.gz`` (632 wells x 516
features, see its README.md), joins plate + well to compound and concentration
(``../shared/bbbc021/BBBC021_v1_image.csv``) and those to the MoA (``BBBC021_v1_moa.csv``), the
batch being the week (the plate name before ``_``). Each candidate chain runs through cellmoa's own
steps (:func:`cellmoa.profiles.chains.postprocess`, controls = the DMSO wells), the wells
are averaged into the 103 treatments and matched (1-NN cosine, NSC and NSCB) and ranked (mAP).
Printed per chain: NSC (of 103), NSCB (of 92), mAP NSC / NSCB, the compound-bootstrap intervals,
and the paired lift (compound bootstrap, McNemar p) over the per-plate DMSO z-score and over the
field's standard chain on the same treatments. What the ``cellprofiler`` named chain was chosen
from (docs/benchmarks.md).

    .venv/bin/python benchmarks/bench_profiles_real.py [--shared ../shared] [--only NAME,...]

Exits 2 with a message where the shared table is absent; the product never reads ``../shared``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cellmoa.columns import (  # noqa: E402
    BATCH,
    COMPOUND,
    CONCENTRATION,
    IS_CONTROL,
    MATCH_SCHEME,
    MOA,
    PLATE,
    WELL,
)

TABLE = "profiles/ljosa_jbiomolscreen_2013_per_well_mean.csv.gz"
CONTROL = "DMSO"


def _sphere(epsilon=1.0, method="ZCA-cor"):
    return {"step": "spherize", "method": method, "epsilon": epsilon}


MAD_SCREEN = {"step": "normalize", "method": "mad_robustize", "by": "screen"}
FS = {"step": "feature_select"}
ZSCORE_PLATE = [{"step": "normalize", "method": "standardize", "by": "plate"}]
STANDARD = [MAD_SCREEN, FS, _sphere(1.0)]

#: name -> chain (a profiles.postprocess list). The first three are the baselines.
CANDIDATES: dict[str, list[dict]] = {
    "none": [],
    "z-score by plate": ZSCORE_PLATE,
    "standard (mad screen, fs, ZCA-cor eps 1)": STANDARD,
    "center by batch (workflow default)": [
        {"step": "normalize", "method": "center", "by": "batch"}
    ],
    "mad by batch, fs, ZCA-cor eps 1": [{**MAD_SCREEN, "by": "batch"}, FS, _sphere(1.0)],
    "mad by plate, fs, ZCA-cor eps 1": [{**MAD_SCREEN, "by": "plate"}, FS, _sphere(1.0)],
    "center by batch, mad screen, fs, ZCA-cor eps 1": [
        {"step": "normalize", "method": "center", "by": "batch"},
        MAD_SCREEN,
        FS,
        _sphere(1.0),
    ],
    "mad screen, fs corr 0.8, ZCA-cor eps 1": [
        MAD_SCREEN,
        {**FS, "corr_threshold": 0.8},
        _sphere(),
    ],
    "mad screen, fs corr 0.95, ZCA-cor eps 1": [
        MAD_SCREEN,
        {**FS, "corr_threshold": 0.95},
        _sphere(),
    ],
    "mad screen, fs, ZCA-cor eps 0.1": [MAD_SCREEN, FS, _sphere(0.1)],
    "mad screen, fs, ZCA-cor eps 0.3": [MAD_SCREEN, FS, _sphere(0.3)],
    "mad screen, fs, ZCA-cor eps 3": [MAD_SCREEN, FS, _sphere(3.0)],
    "mad screen, fs, ZCA-cor eps 10": [MAD_SCREEN, FS, _sphere(10.0)],
    "mad screen, fs, ZCA eps 1": [MAD_SCREEN, FS, _sphere(1.0, "ZCA")],
    "mad screen, fs, PCA-cor eps 1": [MAD_SCREEN, FS, _sphere(1.0, "PCA-cor")],
    "mad screen, fs, pca 0.99 (controls), ZCA eps 1": [
        MAD_SCREEN,
        FS,
        {"step": "pca", "n_components": 0.99, "fit_on": "controls"},
        _sphere(1.0, "ZCA"),
    ],
    "mad screen, fs, pca 50, ZCA-cor eps 1": [
        MAD_SCREEN,
        FS,
        {"step": "pca", "n_components": 50, "fit_on": "all"},
        _sphere(1.0),
    ],
    "standard + harmony (pca 50)": [
        *STANDARD,
        {"step": "pca", "n_components": 50, "fit_on": "all"},
        {"step": "harmony"},
    ],
    "standard + CORAL by batch (pca 20)": [
        *STANDARD,
        {"step": "pca", "n_components": 20, "fit_on": "controls"},
        {"step": "align_batches", "epsilon": 0.1},
    ],
    "rank_normal by batch, fs, ZCA-cor eps 1": [
        {"step": "rank_normal", "by": "batch"},
        FS,
        _sphere(1.0),
    ],
    "mad screen, rank_normal, fs, ZCA-cor eps 1": [
        MAD_SCREEN,
        {"step": "rank_normal"},
        FS,
        _sphere(1.0),
    ],
    "standard + rank_normal": [*STANDARD, {"step": "rank_normal"}],
    "standard + rank_normal by batch": [*STANDARD, {"step": "rank_normal", "by": "batch"}],
    "mad screen, fs, ZCA eps 1, rank_normal": [
        MAD_SCREEN,
        FS,
        _sphere(1.0, "ZCA"),
        {"step": "rank_normal"},
    ],
    "mad screen, fs corr 0.8, ZCA-cor eps 1, rank_normal": [
        MAD_SCREEN,
        {**FS, "corr_threshold": 0.8},
        _sphere(),
        {"step": "rank_normal"},
    ],
    "standard + center by batch": [
        *STANDARD,
        {"step": "normalize", "method": "center", "by": "batch"},
    ],
}


def shared_ready(shared: Path) -> bool:
    """Whether the real profiles are in ``shared`` (else says so on stderr).

    Where they are, logging below errors and Python's warnings are quieted for the benchmark's
    printout.
    """
    if not (shared / TABLE).is_file():
        print(
            f"{shared / TABLE} is absent: this benchmark needs the real BBBC021 profiles "
            "(../shared/profiles/, see its README.md)",
            file=sys.stderr,
        )
        return False
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    return True


def load_real(shared: Path) -> tuple[pd.DataFrame, list[str]]:
    """The real well profiles joined to compound, concentration, MoA and batch.

    Parameters
    ----------
    shared : pathlib.Path
        The folder holding ``profiles/`` and ``bbbc021/``.

    Returns
    -------
    table : pandas.DataFrame
        One row per well: ``Metadata_Plate``, ``Metadata_Well``, ``Metadata_Batch``,
        ``Metadata_Compound``, ``Metadata_Concentration``, ``Metadata_MoA`` (``DMSO`` for the
        controls), ``Metadata_IsControl`` and the features.
    features : list of str
        The CellProfiler feature columns.
    """
    raw = pd.read_csv(shared / TABLE)
    raw = raw.rename(columns={"Image_Metadata_Plate": PLATE, "Image_Metadata_Well": WELL})
    features = [c for c in raw.columns if c not in (PLATE, WELL)]
    image = pd.read_csv(shared / "bbbc021" / "BBBC021_v1_image.csv")
    wells = (
        image.rename(
            columns={
                "Image_Metadata_Plate_DAPI": PLATE,
                "Image_Metadata_Well_DAPI": WELL,
                "Image_Metadata_Compound": COMPOUND,
                "Image_Metadata_Concentration": CONCENTRATION,
            }
        )[[PLATE, WELL, COMPOUND, CONCENTRATION]]
        .drop_duplicates()
        .reset_index(drop=True)
    )
    moa = pd.read_csv(shared / "bbbc021" / "BBBC021_v1_moa.csv").rename(
        columns={"compound": COMPOUND, "concentration": CONCENTRATION, "moa": MOA}
    )
    for t in (wells, moa):
        t[CONCENTRATION] = t[CONCENTRATION].astype(float).round(9)
    table = raw.merge(wells, on=[PLATE, WELL], how="inner", validate="one_to_one")
    table = table.merge(moa, on=[COMPOUND, CONCENTRATION], how="inner", validate="many_to_one")
    if len(table) != len(raw):
        raise SystemExit(f"{len(raw) - len(table)} of {len(raw)} wells did not join")
    table = table.copy().assign(  # one block per dtype: the merges leave it fragmented
        **{
            BATCH: table[PLATE].str.split("_").str[0],
            IS_CONTROL: table[COMPOUND].eq(CONTROL).astype(int),
        }
    )
    meta = [PLATE, WELL, BATCH, COMPOUND, CONCENTRATION, MOA, IS_CONTROL]
    return table[meta + features].reset_index(drop=True), features


def score(table: pd.DataFrame, features: list[str], steps: list[dict]):
    """The 1-NN matches and average precisions of the treatments after ``steps``.

    Returns
    -------
    matches, aps : pandas.DataFrame
        As :func:`cellmoa.profiles.nearest.match_and_rank`.
    """
    from cellmoa.profiles.chains import parse_chain, postprocess
    from cellmoa.profiles.nearest import match_and_rank
    from cellmoa.profiles.tables import treatment_profiles

    rows, feats, _ = postprocess(table, features, parse_chain(steps), source="real profiles")
    profiles = treatment_profiles(rows, features=feats, control=CONTROL, source="real profiles")
    return match_and_rank(profiles)


def summarize(matches: pd.DataFrame, aps: pd.DataFrame) -> dict:
    """NSC and NSCB counts, accuracies with intervals, and mAP of one chain's matches."""
    from cellmoa.profiles.summary import summary_by_scheme

    s = summary_by_scheme(matches, aps).set_index(MATCH_SCHEME)
    out = {}
    for scheme in ("nsc", "nscb"):
        r = s.loc[scheme]
        out[scheme] = {
            "n_correct": int(r["n_correct"]),
            "n": int(r["n"]),
            "accuracy": float(r["accuracy"]),
            "ci": (float(r["ci_low"]), float(r["ci_high"])),
            "map": float(r["mean_average_precision"]),
        }
    return out


def lift(before: pd.DataFrame, after: pd.DataFrame, scheme: str) -> dict:
    """Paired lift of ``after`` over ``before`` on the treatments both scored."""
    from cellmoa.intervals import paired_difference

    keys = [COMPOUND, CONCENTRATION]
    a = before[before[MATCH_SCHEME] == scheme].set_index(keys)
    b = after[after[MATCH_SCHEME] == scheme].set_index(keys)
    both = a[["correct", "scored"]].join(b[["correct", "scored"]], rsuffix="_b", how="inner")
    both = both[both["scored"].astype(bool) & both["scored_b"].astype(bool)]
    return paired_difference(
        both["correct"].astype(float),
        both["correct_b"].astype(float),
        both.index.get_level_values(COMPOUND),
    )


def main(argv=None) -> int:
    """Score the candidate chains and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--only", default="", help="chain names separated by ; (default: all)")
    parser.add_argument(
        "--named",
        action="store_true",
        help="also score the named chains cellprofiler and embeddings (CHAINS)",
    )
    args = parser.parse_args(argv)
    if not shared_ready(args.shared):
        return 2
    from cellmoa.profiles.chains import CHAINS

    table, features = load_real(args.shared)
    print(
        f"{len(table)} wells ({int(table[IS_CONTROL].sum())} {CONTROL}), {len(features)} features, "
        f"{table[BATCH].nunique()} batches, {table[PLATE].nunique()} plates"
    )
    chains = dict(CANDIDATES)
    if args.named:
        chains["named: cellprofiler"] = CHAINS["cellprofiler"]
        chains["named: embeddings (workflow default)"] = CHAINS["embeddings"]
    if args.only:
        wanted = [s.strip() for s in args.only.split(";")]
        chains = {k: v for k, v in chains.items() if k in wanted or k in ZSCORE_KEYS}
    from cellmoa.validation import TableError

    results = {}
    for name, steps in chains.items():
        start = time.perf_counter()
        try:
            results[name] = score(table, features, steps)
        except TableError as e:
            print(f"{name}: refused: {e}")
            continue
        results[name] += (time.perf_counter() - start,)
    base_z = results.get("z-score by plate")
    base_std = results.get("standard (mad screen, fs, ZCA-cor eps 1)")
    rows = []
    for name, (matches, aps, seconds) in results.items():
        s = summarize(matches, aps)
        row = {
            "chain": name,
            "NSC": f"{s['nsc']['n_correct']}/{s['nsc']['n']}",
            "NSC 95% CI": "{:.2f}-{:.2f}".format(*s["nsc"]["ci"]),
            "NSCB": f"{s['nscb']['n_correct']}/{s['nscb']['n']}",
            "NSCB 95% CI": "{:.2f}-{:.2f}".format(*s["nscb"]["ci"]),
            "mAP nsc/nscb": f"{s['nsc']['map']:.3f}/{s['nscb']['map']:.3f}",
        }
        for label, base in (("z", base_z), ("std", base_std)):
            if base is None:
                continue
            parts = []
            for scheme in ("nsc", "nscb"):
                d = lift(base[0], matches, scheme)
                parts.append(
                    f"{100 * d['lift']:+.1f} [{100 * d['lift_ci_low']:+.1f},"
                    f"{100 * d['lift_ci_high']:+.1f}]"
                )
            row[f"lift vs {label} nsc | nscb (pp)"] = " | ".join(parts)
        row["s"] = f"{seconds:.1f}"
        rows.append(row)
    with pd.option_context("display.width", 250, "display.max_colwidth", 60):
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


ZSCORE_KEYS = ("z-score by plate", "standard (mad screen, fs, ZCA-cor eps 1)")

if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
