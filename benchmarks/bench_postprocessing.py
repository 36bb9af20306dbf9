"""Profile post-processing chains on a finished run's fold embeddings: NSC, NSCB and mAP of every
network and of the ensemble, for each chain beside the raw profiles measured in the same run (the
baseline), with the Clopper-Pearson interval width of NSCB. What the former default of
``profiles.postprocess`` was chosen from on the demo; the demo's 12 treatments decide nothing, and
the default is now the named chain ``embeddings``, chosen on real profiles (docs/methods.md).

    .venv/bin/python benchmarks/bench_postprocessing.py [--results results] [--chains FILE.yaml]

``--chains`` is a YAML mapping of name -> chain (a ``profiles.postprocess`` list); without it a
built-in set of candidate chains is measured.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import h5py  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

CANDIDATES = {
    "embeddings (the default)": "embeddings",
    "center by batch": [{"step": "normalize", "method": "center", "by": "batch"}],
    "center by plate": [{"step": "normalize", "method": "center", "by": "plate"}],
    "standardize by batch": [{"step": "normalize", "method": "standardize", "by": "batch"}],
    "standardize by screen": [{"step": "normalize", "method": "standardize", "by": "screen"}],
    "center by batch + standardize (all)": [
        {"step": "normalize", "method": "center", "by": "batch"},
        {"step": "normalize", "method": "standardize", "by": "screen", "samples": "all"},
    ],
    "center by batch + pca + spherize": [
        {"step": "normalize", "method": "center", "by": "batch"},
        {"step": "pca", "n_components": 16, "fit_on": "all"},
        {"step": "spherize", "epsilon": 0.1},
    ],
    "pca + harmony": [
        {"step": "pca", "n_components": 8, "fit_on": "all"},
        {"step": "harmony"},
    ],
    "pca + align_batches": [
        {"step": "pca", "n_components": 6, "fit_on": "all"},
        {"step": "align_batches", "epsilon": 0.1},
    ],
}


def load(results: Path):
    from cellmoa.preprocess.tensors import read_crop_metadata

    metadata = read_crop_metadata(results / "tensors" / "all.h5")
    embeddings: dict[str, dict[str, object]] = {}
    for path in sorted((results / "models").glob("*/*/embeddings.h5")):
        network, fold = path.parts[-3:-1]
        with h5py.File(path, "r") as f:
            embeddings.setdefault(network, {})[str(f.attrs.get("fold", fold))] = f["embeddings"][()]
    return metadata, embeddings


def measure(metadata, embeddings, chain, control="DMSO") -> pd.DataFrame:
    from cellmoa.profiles.ensemble import ensemble_fold_matches
    from cellmoa.profiles.nearest import fold_matches
    from cellmoa.profiles.summary import summary_by_scheme

    rows = []
    tables = {
        n: fold_matches(metadata, e, chain=chain, control=control)[:2]
        for n, e in embeddings.items()
    }
    if len(embeddings) > 1:
        tables["Ensemble"] = ensemble_fold_matches(
            metadata, embeddings, chain=chain, control=control
        )[:2]
    for network, (matches, aps) in tables.items():
        s = summary_by_scheme(matches, aps)
        for _, r in s.iterrows():
            rows.append(
                {
                    "network": network,
                    "profiles": r["Metadata_Profiles"],
                    "scheme": r["Metadata_MatchScheme"],
                    "n": r["n"],
                    "accuracy": r["accuracy"],
                    "ci_width": r["exact_ci_high"] - r["exact_ci_low"],
                    "map": r["mean_average_precision"],
                }
            )
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--chains", type=Path)
    args = parser.parse_args(argv)
    from cellmoa.profiles.chains import chain_spec, parse_chain

    chains = yaml.safe_load(args.chains.read_text()) if args.chains else CANDIDATES
    metadata, embeddings = load(args.results)
    if not embeddings:
        print(f"no fold embeddings under {args.results}/models: run the pipeline first (make demo)")
        return 1
    print(
        f"{len(embeddings)} networks, {len(next(iter(embeddings.values())))} folds, "
        f"{int(metadata['is_control'].sum())} control crops"
    )
    baseline = None
    for name, chain in chains.items():
        table = measure(metadata, embeddings, parse_chain(chain_spec(chain, "none")[1]))
        if baseline is None:
            baseline = table[table["profiles"] == "raw"].set_index(["network", "scheme"])
            print("\nraw profiles (baseline):")
            print(baseline[["n", "accuracy", "ci_width", "map"]].round(3).to_string())
        post = table[table["profiles"] == "postprocessed"].set_index(["network", "scheme"])
        post["lift"] = post["accuracy"] - baseline["accuracy"]
        post["map_lift"] = post["map"] - baseline["map"]
        print(f"\n{name}:")
        print(post[["n", "accuracy", "lift", "ci_width", "map", "map_lift"]].round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
