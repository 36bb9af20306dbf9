"""Command line: ``cellmoa synthesize`` and ``cellmoa tables``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _tables(args) -> int:
    from cellmoa.files import read_tsv
    from cellmoa.reporting import format_table

    folder = Path(args.folder)
    summary = folder / "summary.tsv"
    if not summary.exists():
        print(f"{summary} does not exist yet: run the pipeline first (make demo, or snakemake)", file=sys.stderr)
        return 1
    for path in sorted(folder.glob("accuracy_*.tsv")):
        if path.stem.startswith("accuracy_by_fold_"):
            continue
        network = path.stem[len("accuracy_"):]
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
    print(f"\n== Summary across networks ({summary})")
    print(format_table(read_tsv(summary)))
    report = folder.parent / "report.html"
    if report.exists():
        print(f"\nHTML report: {report}")
    return 0


def _synthesize(args) -> int:
    from cellmoa.synthetic import spec_for

    values = json.loads(Path(args.spec).read_text()) if args.spec else {}
    spec = spec_for(args.dataset, values)
    out = spec.write(Path(args.out), archives=not args.folders)
    print(f"synthesized {len(spec.plates())} plates into {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from cellmoa.datasets import DATASETS

    names = list(DATASETS)
    parser = argparse.ArgumentParser(prog="cellmoa", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tables = sub.add_parser("tables", help="print the accuracy tables of a finished run")
    tables.add_argument("folder", nargs="?", default="results/tables")
    tables.set_defaults(func=_tables)
    synth = sub.add_parser("synthesize", help="write a synthetic dataset in a registered dataset's layout")
    synth.add_argument("out", help="output folder")
    synth.add_argument("--dataset", default=names[0], choices=names, help=f"whose layout (default {names[0]})")
    synth.add_argument("--spec", help="JSON file with the synthetic spec's fields (default: the built-in spec)")
    synth.add_argument("--folders", action="store_true", help="write plate folders instead of zip archives")
    synth.set_defaults(func=_synthesize)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
