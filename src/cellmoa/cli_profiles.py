"""Command line for profile tables: ``cellmoa evaluate-profiles`` and ``cellmoa predict-profiles``.

Both read a profile table (CellProfiler, pycytominer, cellmoa's own ``results/profiles/``),
join a plate map and an MoA table where asked (checked joins, :mod:`cellmoa.profiles.annotate`),
run a post-processing chain (``cellprofiler`` by default, printed), and write their tables to
``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cellmoa.columns import BATCH, COMPOUND, CONCENTRATION, MOA, PLATE, PREFIX, WELL

# The other first-party imports are function-local ("lazy") on purpose, as in cellmoa.cli:
# ``cellmoa --help`` must start fast and never import TensorFlow.


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


def _setup(args):
    """Logging, and the chain asked for: (label, steps, chain), or None after an error."""
    import logging

    from cellmoa.profiles.chains import chain_spec, parse_chain  # lazy (see top)

    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if args.batch_column and args.batch_from_plate:
        print("error: give --batch-column or --batch-from-plate, not both", file=sys.stderr)
        return None
    try:
        label, steps = chain_spec(args.postprocess, default="cellprofiler")
        return label, steps, parse_chain(steps)
    except (ValueError, TypeError) as e:
        print(f"error: {args.postprocess or 'cellprofiler'}: {e}", file=sys.stderr)
        return None


def _joined_table(args, unannotated_label=None):
    """The profile table through the joins asked for, the join lines printed.

    Returns (table, features or None); writes ``without_moa.tsv`` where an MoA table is joined
    or treatments have no MoA.
    """
    from cellmoa.files import read_table, write_tsv  # lazy (see top)
    from cellmoa.profiles.annotate import annotate_profiles, join_report  # lazy (see top)
    from cellmoa.validation import rename_columns  # lazy (see top)

    features = None
    if args.features:
        lines = Path(args.features).read_text().splitlines()
        features = [line.strip() for line in lines if line.strip()]
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
        unannotated_label=unannotated_label,
    )
    if moas is not None or len(unannotated):
        write_tsv(unannotated, Path(args.out) / "without_moa.tsv")
    annotated = table if unannotated_label is None else table[table[MOA] != unannotated_label]
    fate = "are left out of scoring" if unannotated_label is None else "are the treatments called"
    for line in join_report(n_rows, annotated, unannotated, args.control, sources, fate):
        print(line)
    return table, features


def _evaluate_profiles(args) -> int:
    from cellmoa.files import write_tsv  # lazy (see top)
    from cellmoa.profiles.nearest import evaluate_profiles  # lazy (see top)
    from cellmoa.report.tables import format_table  # lazy (see top)
    from cellmoa.validation import TableError  # lazy (see top)

    schemes = [s.strip() for s in args.scheme.split(",") if s.strip()]
    unknown = sorted(set(schemes) - {"nsc", "nscb"})
    if unknown or not schemes:
        print(f"--scheme takes nsc, nscb or nsc,nscb; not {args.scheme!r}", file=sys.stderr)
        return 2
    setup = _setup(args)
    if setup is None:
        return 2
    label, steps, chain = setup
    out = Path(args.out)
    try:
        table, features = _joined_table(args)
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


def _print_calls(tables: dict, coverage: float, out: Path) -> None:
    """The predictions (compact, under 100 columns), the coverage and the novelty check."""
    from cellmoa.report.tables import format_table  # lazy (see top)

    predictions = tables["predictions"]
    print(f"{len(predictions)} unannotated treatment(s) called; tables in {out}/")
    if len(predictions):
        shown = predictions[
            [COMPOUND, CONCENTRATION, "top_moa", "top_probability", "set_size", "novel"]
        ].rename(columns={COMPOUND: "compound", CONCENTRATION: "conc", "top_probability": "p"})
        shown["top_moa"] = shown["top_moa"].str.slice(0, 30)
        print(format_table(shown))
    annotated = tables["annotated"]
    print(
        f"annotated treatments called leave-one-compound-out: {int(annotated['correct'].sum())}"
        f"/{len(annotated)} top MoA right"
    )
    calibration = tables["calibration"]
    shown_levels = calibration["nominal_coverage"].isin([0.8, 0.9, coverage])
    for r in calibration[shown_levels].itertuples():
        print(
            f"  sets at {r.nominal_coverage:.2f}: coverage {r.empirical_coverage:.3f} "
            f"[{r.coverage_ci_low:.3f}, {r.coverage_ci_high:.3f}] of treatments, "
            f"{r.compound_coverage:.3f} of compounds; mean set size {r.mean_set_size:.2f}"
        )
    check = tables["novelty_by_moa"]
    if len(check):
        pooled = check.iloc[-1]
        print(
            f"each MoA hidden in turn (novelty_by_moa.tsv): {pooled['flagged']}/"
            f"{pooled['n_treatments']} of the hidden treatments flagged novel at {coverage:g}, "
            f"AUROC of the novelty score {pooled['auroc']:.3f}"
        )


def _predict_profiles(args) -> int:
    from cellmoa.evaluate.novelty_check import hidden_moa_check  # lazy (see top)
    from cellmoa.evaluate.profile_calls import call_profile_table  # lazy (see top)
    from cellmoa.files import write_tsv  # lazy (see top)
    from cellmoa.profiles.tables import UNANNOTATED  # lazy (see top)
    from cellmoa.validation import TableError  # lazy (see top)

    setup = _setup(args)
    if setup is None:
        return 2
    label, steps, chain = setup
    out = Path(args.out)
    try:
        table, features = _joined_table(args, unannotated_label=UNANNOTATED)
        print(_chain_line(label, steps))
        settings = {"coverage": args.coverage, "score": args.score}
        tables = call_profile_table(
            table,
            control=args.control,
            chain=chain,
            features=features,
            nan_policy=args.features_with_nan,
            source=args.table,
            neighbours=args.neighbours,
            **settings,
        )
        tables["novelty_by_moa"] = hidden_moa_check(
            tables["annotated_profiles"], features=tables["features"], **settings
        )
    except (TableError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name in ("predictions", "calibration", "annotated", "novelty_by_moa", "postprocessing"):
        write_tsv(tables[name], out / f"{name}.tsv")
    _print_calls(tables, args.coverage, out)
    return 0


def _add_table_arguments(parser) -> None:
    """The arguments both commands share: the table, its joins, the chain."""
    parser.add_argument(
        "table",
        help="profile table: .csv, .csv.gz, .tsv, .tsv.gz or .parquet, one row per cell/well/crop",
    )
    parser.add_argument("--out", required=True, help="folder for the tables")
    parser.add_argument(
        "--control", help="control compound left out of matching and scoring (e.g. DMSO)"
    )
    parser.add_argument("--batch-column", help=f"column holding each row's batch (renamed {BATCH})")
    parser.add_argument(
        "--rename",
        action="append",
        metavar="OLD=NEW",
        help=f"rename a column to cellmoa's name, e.g. Metadata_moa={MOA} (repeatable)",
    )
    parser.add_argument(
        "--features",
        help="file listing the feature columns, one per line (default: every numeric "
        f"column not named {PREFIX}*, logged)",
    )
    parser.add_argument(
        "--features-with-nan",
        choices=["error", "drop"],
        default="error",
        help="a feature with NaN/inf values: error (default) or drop the column (logged)",
    )
    parser.add_argument(
        "--postprocess",
        metavar="NAME|FILE",
        help="post-processing chain run on the rows, fit on the --control rows, before "
        "treatments are averaged: cellprofiler (default: mad_robustize, feature_select, "
        "ZCA-cor sphering, rank inverse-normal), embeddings, none (raw profiles), or a YAML "
        "list of steps (normalize, feature_select, pca, spherize, align_batches, harmony, "
        "rank_normal); the chain run is printed",
    )
    parser.add_argument(
        "--platemap",
        metavar="CSV",
        help=f"plate map: {PLATE}, {WELL} -> {COMPOUND}, {CONCENTRATION} (repeated identical "
        "rows are fine); every profile row must find its well in it",
    )
    parser.add_argument(
        "--platemap-rename",
        action="append",
        metavar="OLD=NEW",
        help=f"rename a plate-map column, e.g. Image_Metadata_Well_DAPI={WELL} (repeatable)",
    )
    parser.add_argument(
        "--moas",
        metavar="CSV",
        help=f"MoA table: {COMPOUND} (and {CONCENTRATION}, compared as numbers) -> {MOA}; "
        "the --control needs no row; treatments without one are unannotated (listed in "
        "without_moa.tsv)",
    )
    parser.add_argument(
        "--moas-rename",
        action="append",
        metavar="OLD=NEW",
        help=f"rename an MoA-table column, e.g. moa={MOA} (repeatable)",
    )
    parser.add_argument(
        "--batch-from-plate",
        metavar="REGEX",
        help=f"{BATCH} = the first match of REGEX in {PLATE} (e.g. 'Week[0-9]+'); a plate "
        "it does not match is an error",
    )


def add_profile_commands(sub) -> None:
    """Add ``evaluate-profiles`` and ``predict-profiles`` to the subparsers ``sub``."""
    ev = sub.add_parser(
        "evaluate-profiles",
        help="score any profile table (CellProfiler, pycytominer, embeddings): "
        "1-NN MoA matching and mAP",
        description="Treatment profiles (mean per compound and concentration) matched to their "
        "nearest other compound (nsc) or other compound in a disjoint batch (nscb), and ranked for "
        f"mAP of MoA retrieval (copairs). Needs {COMPOUND}, {CONCENTRATION}, {MOA} (and {BATCH} "
        "for nscb), in the table or joined from --platemap and --moas; map other names with "
        "--rename. Treatments without an MoA are listed and not scored.",
    )
    _add_table_arguments(ev)
    ev.add_argument("--scheme", default="nsc,nscb", help="nsc, nscb or nsc,nscb (default)")
    ev.add_argument(
        "--seed", type=int, default=0, help="seed of the bootstrap and of copairs' permutations"
    )
    ev.set_defaults(func=_evaluate_profiles)
    pr = sub.add_parser(
        "predict-profiles",
        help="MoA calls with conformal prediction sets and a novelty flag for the treatments "
        "of a profile table that have no MoA",
        description="The treatments without an MoA (no row in --moas, or an empty "
        f"{MOA}) called by a nearest-neighbour model on the post-processed treatment profiles: "
        "top MoA, a prediction set calibrated leave-one-compound-out on the annotated "
        "treatments, a novel flag with its reason, the nearest annotated treatments "
        "(predictions.tsv). Also written: calibration.tsv (coverage of the sets), "
        "annotated.tsv (the annotated treatments called leave-one-compound-out), "
        "novelty_by_moa.tsv (each MoA hidden in turn: how many of its treatments are flagged).",
    )
    _add_table_arguments(pr)
    pr.add_argument(
        "--coverage", type=float, default=0.9, help="nominal coverage of the sets (default 0.9)"
    )
    pr.add_argument(
        "--score", choices=["lac", "aps"], default="lac", help="conformal score (default lac)"
    )
    pr.add_argument(
        "--neighbours",
        type=int,
        default=3,
        help="nearest annotated treatments named per call (default 3)",
    )
    pr.set_defaults(func=_predict_profiles)
