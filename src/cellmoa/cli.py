"""Command line: ``cellmoa synthesize``, ``cellmoa tables`` and ``cellmoa evaluate-profiles``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cellmoa.columns import BATCH, COMPOUND, CONCENTRATION, MOA, NETWORK, PLATE, PREFIX, WELL

# The other first-party imports are function-local ("lazy") on purpose: ``cellmoa --help`` must
# start fast, and ``cellmoa evaluate-profiles`` must never import TensorFlow (only the subcommand
# that runs imports what it needs).

#: the tables written once per network (and for the ensemble): ``<kind>_<network>.tsv``
PER_NETWORK_TABLES = (
    "accuracy_by_fold",
    "accuracy",
    "average_precision",
    "nearest_neighbours",
    "postprocessing",
    "treatments",
    "unannotated",
)


def _table_network(path: Path) -> str | None:
    """The network (or ensemble) a per-network table is of, None for the other tables."""
    for kind in PER_NETWORK_TABLES:
        if path.stem.startswith(kind + "_"):
            return path.stem[len(kind) + 1 :]
    return None


def _print_unannotated(folder: Path, read_tsv, format_table, names: set[str]) -> None:
    """Print the unannotated compounds' predictions and the calibration, where the run made them.

    The ensemble's predictions where there are some, else each network's; the calibration at
    the configured coverage. ``names`` are the networks and the ensemble of the run's summary.
    """
    tables = [t for t in sorted(folder.glob("unannotated_*.tsv")) if _table_network(t) in names]
    ensemble = [t for t in tables if t.stem == "unannotated_Ensemble"]
    for path in ensemble or tables:
        table = read_tsv(path)
        columns = [
            c
            for c in (
                COMPOUND,
                CONCENTRATION,
                "top_moa",
                "top_probability",
                "margin",
                "prediction_set",
                "novel",
                "novel_reason",
                "dose_consistent",
                "neighbour_1_compound",
                "neighbour_1_similarity",
            )
            if c in table.columns
        ]
        name = path.stem[len("unannotated_") :]
        print(f"\n== {name}: unannotated compounds, most confident first ({path})")
        print(format_table(table[columns]))
    calibration = folder / "calibration.tsv"
    if calibration.exists():
        table = read_tsv(calibration)
        table = table[table["configured"].astype(str).str.lower() == "true"]
        print(
            "\n== Prediction sets at the configured coverage: leave-one-compound-out coverage "
            f"and set size ({calibration})"
        )
        print(
            format_table(
                table[
                    [
                        NETWORK,
                        "nominal_coverage",
                        "empirical_coverage",
                        "coverage_ci_low",
                        "coverage_ci_high",
                        "mean_set_size",
                        "empty_sets",
                        "n_treatments",
                        "n_compounds",
                    ]
                ]
            )
        )


def _tables(args) -> int:
    from cellmoa.files import read_tsv  # lazy (see top)
    from cellmoa.report.tables import INTERVALS, compact_summary, format_table  # lazy (see top)

    folder = Path(args.folder)
    summary = folder / "summary.tsv"
    if not summary.exists():
        print(
            f"{summary} does not exist yet: run the pipeline first (make demo, or snakemake)",
            file=sys.stderr,
        )
        return 1
    summary_table = read_tsv(summary)
    # only the run's own tables: another config's run in the same folder (say make demo, then make
    # demo-screen) leaves tables of networks this summary does not have
    names = set(summary_table[NETWORK].astype(str))
    others = sorted({n for n in map(_table_network, folder.glob("*.tsv")) if n} - names)
    if others:
        print(
            f"(not shown: tables of {', '.join(others)} in {folder}, left by another run; "
            f"its summary.tsv lists {', '.join(sorted(names))}; make clean-demo removes them)"
        )
    for path in sorted(folder.glob("accuracy_*.tsv")):
        network = _table_network(path)
        if path.stem.startswith("accuracy_by_fold_") or network not in names:
            continue
        print(f"\n== {network}: treatment-level accuracy per MoA ({path})")
        print(format_table(read_tsv(path)))
        by_fold = folder / f"accuracy_by_fold_{network}.tsv"
        if by_fold.exists():
            print(f"\n== {network}: crop-, well- and treatment-level accuracy per fold ({by_fold})")
            print(format_table(read_tsv(by_fold)))
    per_moa = folder / "summary_per_moa.tsv"
    if per_moa.exists():
        print(f"\n== Treatment accuracy per MoA across networks ({per_moa})")
        print(format_table(read_tsv(per_moa)))
    print(f"\n== Summary across networks ({summary}; every column there)")
    print(compact_summary(summary_table).to_string(index=False))
    print(
        f"({INTERVALS}; NSC/NSCB: 1-NN MoA matching of the embeddings, n = treatments scored; "
        "mAP: copairs)"
    )
    _print_unannotated(folder, read_tsv, format_table, names)
    report = folder.parent / "report.html"
    if report.exists():
        print(f"\nHTML report: {report}")
    return 0


def _synthesize(args) -> int:
    from cellmoa.data.synthetic import spec_for  # lazy (see top)

    values = json.loads(Path(args.spec).read_text()) if args.spec else {}
    spec = spec_for(args.dataset, values)
    out = spec.write(Path(args.out), archives=not args.folders)
    print(f"synthesized {len(spec.plates())} plates into {out}")
    return 0


def _mapping(pairs: list[str], option: str = "--rename") -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise SystemExit(f"{option} takes OLD=NEW (e.g. Metadata_moa={MOA}), not {pair!r}")
        out[old] = new
    return out


def _chain_line(label: str, steps: list[dict]) -> str:
    """The post-processing chain as one line: its label and its steps with their settings."""
    shown = []
    for step in steps:
        settings = ", ".join(f"{k}={v}" for k, v in step.items() if k != "step")
        shown.append(f"{step['step']}({settings})" if settings else step["step"])
    return f"post-processing chain: {label}: " + (" -> ".join(shown) or "none (raw profiles)")


def _read_tables(args, read_table, rename_columns):
    """The profile table, the plate map and the MoA table (or None), renamed to cellmoa's names."""
    mapping = _mapping(args.rename)
    if args.batch_column:
        mapping[args.batch_column] = BATCH
    table = rename_columns(read_table(args.table), mapping, args.table)
    others = []
    for path, pairs, option in (
        (args.platemap, args.platemap_rename, "--platemap-rename"),
        (args.moas, args.moas_rename, "--moas-rename"),
    ):
        if pairs and not path:
            raise SystemExit(f"{option} renames the columns of a table: give that table too")
        others.append(
            rename_columns(read_table(path), _mapping(pairs, option), path) if path else None
        )
    return table, *others


def _evaluate_profiles(args) -> int:
    import logging

    from cellmoa.files import read_table, write_tsv  # lazy (see top)
    from cellmoa.profiles.annotate import annotate_profiles, join_report  # lazy (see top)
    from cellmoa.profiles.chains import chain_spec, parse_chain  # lazy (see top)
    from cellmoa.profiles.nearest import evaluate_profiles  # lazy (see top)
    from cellmoa.report.tables import format_table  # lazy (see top)
    from cellmoa.validation import TableError, rename_columns  # lazy (see top)

    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    schemes = [s.strip() for s in args.scheme.split(",") if s.strip()]
    unknown = sorted(set(schemes) - {"nsc", "nscb"})
    if unknown or not schemes:
        print(f"--scheme takes nsc, nscb or nsc,nscb; not {args.scheme!r}", file=sys.stderr)
        return 2
    if args.batch_column and args.batch_from_plate:
        print("error: give --batch-column or --batch-from-plate, not both", file=sys.stderr)
        return 2
    try:
        label, steps = chain_spec(args.postprocess, default="cellprofiler")
        chain = parse_chain(steps)
    except (ValueError, TypeError) as e:
        print(f"error: {args.postprocess or 'cellprofiler'}: {e}", file=sys.stderr)
        return 2
    features = None
    if args.features:
        features = [
            line.strip() for line in Path(args.features).read_text().splitlines() if line.strip()
        ]
    out = Path(args.out)
    try:
        table, platemap, moas = _read_tables(args, read_table, rename_columns)
        n_rows = len(table)
        sources = {"profiles": args.table, "platemap": args.platemap, "moas": args.moas}
        table, unannotated = annotate_profiles(
            table,
            platemap,
            moas,
            control=args.control,
            batch_pattern=args.batch_from_plate,
            sources=sources,
        )
        if moas is not None:
            write_tsv(unannotated, out / "without_moa.tsv")
        for line in join_report(n_rows, table, unannotated, args.control, sources):
            print(line)
        print(_chain_line(label, steps))
        tables = evaluate_profiles(
            table,
            schemes,
            control=args.control,
            features=features,
            nan_policy=args.features_with_nan,
            seed=args.seed,
            source=args.table,
            postprocess=chain,
        )
    except (TableError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name, frame in tables.items():
        write_tsv(frame, out / f"{name}.tsv")
    print(
        f"{args.table}: {len(tables['profiles'])} treatments; tables in {out}/ "
        "(profiles, matches, average_precision, map_by_moa, summary, postprocessing .tsv)"
    )
    for _, note in tables["postprocessing"].iterrows():
        print(f"  {note['step']}: {note['what']}")
    print(
        "1-NN accuracy of MoA matching with 95% intervals (ci: bootstrap over compounds; "
        "exact: Clopper-Pearson), mAP of MoA retrieval (copairs):"
    )
    print(format_table(tables["summary"]))
    return 0


def _add_evaluate_profiles(sub) -> None:
    """Add the ``evaluate-profiles`` subcommand and its arguments to ``sub``."""
    ev = sub.add_parser(
        "evaluate-profiles",
        help="score any profile table (CellProfiler, pycytominer, embeddings): "
        "1-NN MoA matching and mAP",
        description="Treatment profiles (mean per compound and concentration) matched to their "
        "nearest other compound (nsc) or other compound in a disjoint batch (nscb), and ranked for "
        f"mAP of MoA retrieval (copairs). Needs {COMPOUND}, {CONCENTRATION}, {MOA} (and {BATCH} "
        "for nscb), in the table or joined from --platemap and --moas; map other names with "
        "--rename.",
    )
    ev.add_argument(
        "table",
        help="profile table: .csv, .csv.gz, .tsv, .tsv.gz or .parquet, one row per cell/well/crop",
    )
    ev.add_argument("--out", required=True, help="folder for the tables")
    ev.add_argument("--scheme", default="nsc,nscb", help="nsc, nscb or nsc,nscb (default)")
    ev.add_argument(
        "--control", help="control compound left out of matching and scoring (e.g. DMSO)"
    )
    ev.add_argument(
        "--batch-column",
        help=f"column holding each row's batch (renamed {BATCH}), needed for nscb",
    )
    ev.add_argument(
        "--rename",
        action="append",
        metavar="OLD=NEW",
        help=f"rename a column to cellmoa's name, e.g. Metadata_moa={MOA} (repeatable)",
    )
    ev.add_argument(
        "--features",
        help="file listing the feature columns, one per line (default: every numeric "
        f"column not named {PREFIX}*, logged)",
    )
    ev.add_argument(
        "--features-with-nan",
        choices=["error", "drop"],
        default="error",
        help="a feature with NaN/inf values: error (default) or drop the column (logged)",
    )
    ev.add_argument(
        "--seed", type=int, default=0, help="seed of the bootstrap and of copairs' permutations"
    )
    ev.add_argument(
        "--postprocess",
        metavar="NAME|FILE",
        help="post-processing chain run on the rows, fit on the --control rows, before "
        "treatments are averaged: cellprofiler (default: mad_robustize, feature_select, "
        "ZCA-cor sphering, rank inverse-normal), embeddings, none (raw profiles), or a YAML "
        "list of steps (normalize, feature_select, pca, spherize, align_batches, harmony, "
        "rank_normal); the chain run is printed",
    )
    ev.add_argument(
        "--platemap",
        metavar="CSV",
        help=f"plate map: {PLATE}, {WELL} -> {COMPOUND}, {CONCENTRATION} (repeated identical "
        "rows are fine); every profile row must find its well in it",
    )
    ev.add_argument(
        "--platemap-rename",
        action="append",
        metavar="OLD=NEW",
        help=f"rename a plate-map column, e.g. Image_Metadata_Well_DAPI={WELL} (repeatable)",
    )
    ev.add_argument(
        "--moas",
        metavar="CSV",
        help=f"MoA table: {COMPOUND} (and {CONCENTRATION}, compared as numbers) -> {MOA}; "
        "the --control needs no row, other treatments without one are listed and not scored",
    )
    ev.add_argument(
        "--moas-rename",
        action="append",
        metavar="OLD=NEW",
        help=f"rename an MoA-table column, e.g. moa={MOA} (repeatable)",
    )
    ev.add_argument(
        "--batch-from-plate",
        metavar="REGEX",
        help=f"{BATCH} = the first match of REGEX in {PLATE} (e.g. 'Week[0-9]+'); a plate "
        "it does not match is an error",
    )
    ev.set_defaults(func=_evaluate_profiles)


def main(argv: list[str] | None = None) -> int:
    """Run the ``cellmoa`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: the command line's).

    Returns
    -------
    int
        The exit status.
    """
    from cellmoa.data.datasets import DATASETS  # lazy (see top)

    names = list(DATASETS)
    parser = argparse.ArgumentParser(prog="cellmoa", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tables = sub.add_parser("tables", help="print the accuracy tables of a finished run")
    tables.add_argument("folder", nargs="?", default="results/tables")
    tables.set_defaults(func=_tables)
    synth = sub.add_parser(
        "synthesize", help="write a synthetic dataset in a registered dataset's layout"
    )
    synth.add_argument("out", help="output folder")
    synth.add_argument(
        "--dataset", default=names[0], choices=names, help=f"whose layout (default {names[0]})"
    )
    synth.add_argument(
        "--spec", help="JSON file with the synthetic spec's fields (default: the built-in spec)"
    )
    synth.add_argument(
        "--folders", action="store_true", help="write plate folders instead of zip archives"
    )
    synth.set_defaults(func=_synthesize)
    _add_evaluate_profiles(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
