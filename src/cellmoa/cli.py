"""Command line: ``cellmoa synthesize``, ``cellmoa tables``, and the profile-table commands.

``evaluate-profiles`` and ``predict-profiles`` are in :mod:`cellmoa.cli_profiles`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cellmoa.cli_profiles import add_profile_commands
from cellmoa.columns import COMPOUND, CONCENTRATION, NETWORK

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
    from cellmoa.report.terminal import print_compact, wrap  # lazy (see top)

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
            wrap(
                f"(not shown: tables of {', '.join(others)} in {folder}, left by another run; "
                f"its summary.tsv lists {', '.join(sorted(names))}; make clean-demo removes them)"
            )
        )
    if args.wide:
        _print_wide(folder, summary_table, names)
    else:
        print_compact(folder, summary_table)
    report = folder.parent / "report.html"
    if report.exists():
        print("\n" + wrap(f"HTML report: {report}"))
    return 0


def _print_wide(folder: Path, summary_table, names: set[str]) -> None:
    """Every column of the run's tables (``cellmoa tables --wide``)."""
    from cellmoa.files import read_tsv  # lazy (see top)
    from cellmoa.report.tables import INTERVALS, compact_summary, format_table  # lazy (see top)

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
    summary = folder / "summary.tsv"
    print(f"\n== Summary across networks ({summary}; every column there)")
    print(compact_summary(summary_table).to_string(index=False))
    print(
        f"({INTERVALS}; NSC/NSCB: 1-NN MoA matching of the embeddings, n = treatments scored; "
        "mAP: copairs)"
    )
    _print_unannotated(folder, read_tsv, format_table, names)


def _synthesize(args) -> int:
    from cellmoa.data.synthetic import spec_for  # lazy (see top)

    values = json.loads(Path(args.spec).read_text()) if args.spec else {}
    spec = spec_for(args.dataset, values)
    out = spec.write(Path(args.out), archives=not args.folders)
    print(f"synthesized {len(spec.plates())} plates into {out}")
    return 0


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
    tables.add_argument(
        "--wide",
        action="store_true",
        help="every column of every table (default: compact tables, lines of at most 100 "
        "characters)",
    )
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
    add_profile_commands(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
