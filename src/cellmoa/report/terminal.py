"""The tables of a finished run on a terminal: ``cellmoa tables``, every line at most 100 wide.

One compact table per section, with the columns a screening scientist reads first (accuracies as
percentages with their intervals, counts as ``correct/total``); long text (MoA and compound names)
is shortened, notes are wrapped, and a table still too wide is split into blocks of columns.
``cellmoa tables --wide`` prints every column instead (:mod:`cellmoa.cli`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from cellmoa.columns import COMPOUND, CONCENTRATION, ENSEMBLE, MOA, NETWORK
from cellmoa.files import read_tsv
from cellmoa.report.tables import REFERENCE_COLUMN

#: the widest line printed
WIDTH = 100

#: the unannotated treatments shown (most confident first); the table has them all
UNANNOTATED_ROWS = 20


def wrap(text: str, width: int = WIDTH, indent: str = "") -> str:
    """``text`` wrapped to ``width`` (long words, such as paths, broken), later lines indented.

    Examples
    --------
    >>> print(wrap("a b c", width=3, indent=" "))
    a b
     c
    """
    return textwrap.fill(
        text, width=width, subsequent_indent=indent, break_on_hyphens=False, break_long_words=True
    )


def short(value, n: int, middle: bool = False) -> str:
    """``value`` as text of at most ``n`` characters (shortened with ``...``).

    The ``...`` at the end, or in the ``middle``: that keeps the end of names that differ there.

    Examples
    --------
    >>> short("Microtubule destabilizers", 15)
    'Microtubule...'
    >>> short("compound-with-a-long-name-12", 15, middle=True)
    'compou...ame-12'
    """
    text = "" if pd.isna(value) else str(value)
    if len(text) <= n:
        return text
    if middle:
        tail = (n - 3) // 2
        return text[: n - 3 - tail] + "..." + text[-tail:]
    return text[: n - 3].rstrip() + "..."


def pct(value) -> str:
    """A fraction as a percentage with one decimal; empty for a missing value."""
    return "" if value is None or pd.isna(value) else f"{100 * value:.1f}"


def interval(low, high) -> str:
    """``low-high`` in percent; empty where either is missing."""
    return "" if pd.isna(low) or pd.isna(high) else f"{pct(low)}-{pct(high)}"


def _is_text(values: list[str]) -> bool:
    """Whether a column holds words (left-aligned) rather than numbers, counts or intervals."""
    return any(any(c.isalpha() for c in v) for v in values)


def _render(columns: list[tuple[str, list[str]]]) -> list[str]:
    """Aligned lines of ``(header, cells)`` columns: words left-aligned, numbers right-aligned."""
    header, body = [], [[] for _ in range(len(columns[0][1]))]
    for name, cells in columns:
        width = max([len(name), *map(len, cells)])
        align = str.ljust if _is_text(cells) else str.rjust
        header.append(align(name, width))
        for row, cell in zip(body, cells):
            row.append(align(cell, width))
    return ["  ".join(cells).rstrip() for cells in [header, *body]]


def fit_table(frame: pd.DataFrame, width: int = WIDTH) -> str:
    """``frame`` as aligned text, its columns split into blocks where wider than ``width``.

    Each further block repeats the first column. A single column wider than ``width`` (never one
    of the tables here: their text is shortened) is cut.

    Examples
    --------
    >>> print(fit_table(pd.DataFrame({"MoA": ["Actin disruptors"], "accuracy %": ["75.0"]})))
    MoA               accuracy %
    Actin disruptors        75.0
    """
    columns = [(str(c), ["" if pd.isna(v) else str(v) for v in frame[c]]) for c in frame.columns]
    if not columns:
        return ""
    blocks, block = [], [columns[0]]
    for column in columns[1:]:
        if max(map(len, _render([*block, column]))) > width and len(block) > 1:
            blocks.append(block)
            block = [columns[0]]
        block.append(column)
    blocks.append(block)
    lines = "\n\n".join("\n".join(_render(b)) for b in blocks).splitlines()
    return "\n".join(line if len(line) <= width else line[: width - 3] + "..." for line in lines)


def section(title: str, path: Path) -> str:
    """A section's heading: the title and the table's file name (the folder is named once)."""
    return "\n" + wrap(f"== {title} ({path.name})", indent="   ")


def accuracy_table(table: pd.DataFrame) -> pd.DataFrame:
    """Treatment accuracy per MoA: correct/treatments, percent and the exact 95% interval."""
    out = pd.DataFrame({"MoA": table[MOA].map(lambda v: short(v, 34))})
    if "n_correct" in table:
        out["treatments"] = [f"{c}/{n}" for c, n in zip(table["n_correct"], table["n_treatments"])]
    elif "n_treatments" in table:
        out["treatments"] = table["n_treatments"]
    out["accuracy %"] = table["accuracy"].map(pct)
    if {"exact_ci_low", "exact_ci_high"} <= set(table.columns):
        out["exact 95%"] = [
            interval(lo, hi) for lo, hi in zip(table["exact_ci_low"], table["exact_ci_high"])
        ]
    return out


def by_fold_table(table: pd.DataFrame) -> pd.DataFrame:
    """Crop, well and treatment accuracy per fold as ``percent (n)``."""
    out = pd.DataFrame({"fold": table.iloc[:, 0].map(lambda v: short(v, 30))})
    for level, plural in (("crop", "crops"), ("well", "wells"), ("treatment", "treatments")):
        if f"{level}_accuracy" in table:
            out[f"{plural} % (n)"] = [
                f"{pct(a)} ({n})" for a, n in zip(table[f"{level}_accuracy"], table[f"n_{plural}"])
            ]
    return out


def per_moa_table(table: pd.DataFrame) -> pd.DataFrame:
    """Treatment accuracy per MoA (rows) and network (columns), in percent."""
    out = pd.DataFrame({"MoA": table[MOA].map(lambda v: short(v, 34))})
    for column in table.columns:
        if column == MOA:
            continue
        values = table[column]
        out[column] = values if column == "n_treatments" else values.map(pct)
    return out.rename(columns={"n_treatments": "treatments"})


def summary_table(summary: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The summary across networks on one screen, and what its matching columns are of.

    Per network: correct/treatments, treatment accuracy with its compound-bootstrap 95%
    interval, NSC and NSCB 1-NN accuracy and mAP (of the post-processed profiles where the run
    post-processes them), and the paper's figure where there is one.
    """
    prefix = (
        "pp_" if summary.get("pp_nn_nsc_n", pd.Series(dtype=float)).fillna(0).gt(0).any() else ""
    )
    out = pd.DataFrame(
        {
            "network": summary[NETWORK].map(lambda v: short(v, 24)),
            "treatments": [
                f"{int(c)}/{int(n)}" for c, n in zip(summary["n_correct"], summary["n_treatments"])
            ],
            "accuracy %": summary["treatment_accuracy"].map(pct),
            "95% CI": [
                interval(lo, hi)
                for lo, hi in zip(
                    summary["treatment_accuracy_ci_low"], summary["treatment_accuracy_ci_high"]
                )
            ],
        }
    )
    for nn in ("nsc", "nscb"):
        if f"{prefix}nn_{nn}_accuracy" in summary:
            n = summary[f"{prefix}nn_{nn}_n"].fillna(0)
            out[f"{nn.upper()} %"] = [
                pct(a) if k else "" for a, k in zip(summary[f"{prefix}nn_{nn}_accuracy"], n)
            ]
    for nn in ("nsc", "nscb"):
        if f"{prefix}map_{nn}" in summary:
            out[f"mAP {nn.upper()}"] = summary[f"{prefix}map_{nn}"].map(
                lambda v: "" if pd.isna(v) else f"{v:.3f}"
            )
    if REFERENCE_COLUMN in summary and summary[REFERENCE_COLUMN].notna().any():
        out["paper %"] = summary[REFERENCE_COLUMN].map(pct)
    of = "the post-processed profiles" if prefix else "the embeddings"
    return out, of


def _yes(value) -> bool:
    """A TSV's boolean (``True``/``False`` read as either bool or text)."""
    return str(value).strip().lower() in ("true", "1", "yes")


def unannotated_table(
    table: pd.DataFrame, rows: int = UNANNOTATED_ROWS
) -> tuple[pd.DataFrame, str]:
    """The first ``rows`` unannotated treatments, and notes on their sets and novelty.

    Per treatment: compound, concentration, top MoA with its probability, the prediction set's
    size, the novelty flag and the nearest annotated compound. The notes (text
    wrapped to :data:`WIDTH`) give the MoAs of every set of two or more and why a call is novel.
    """
    shown = table.head(rows).reset_index(drop=True)
    columns = {
        "#": range(1, len(shown) + 1),
        "compound": shown[COMPOUND].map(lambda v: short(v, 22, middle=True)),
        "conc": shown.get(CONCENTRATION, pd.Series([""] * len(shown))),
        "top MoA": shown["top_moa"].map(lambda v: short(v, 26)),
    }
    if "top_probability" in shown:
        columns["p"] = shown["top_probability"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    moas = (
        shown["prediction_set"]
        .fillna("")
        .astype(str)
        .map(lambda s: [m for m in s.split("; ") if m])
        if "prediction_set" in shown
        else None
    )
    if moas is not None:
        columns["set"] = moas.map(len)
    if "novel" in shown:
        columns["novel"] = shown["novel"].map(lambda v: "yes" if _yes(v) else "no")
    if "neighbour_1_compound" in shown:
        columns["nearest"] = shown["neighbour_1_compound"].map(lambda v: short(v, 18, middle=True))
    notes = []
    for i, row in shown.iterrows():
        if moas is not None and len(moas[i]) > 1:
            notes.append(wrap(f"  #{i + 1} set: {'; '.join(moas[i])}", indent="      "))
        if "novel" in shown and _yes(row["novel"]) and not pd.isna(row.get("novel_reason")):
            notes.append(wrap(f"  #{i + 1} novel: {row['novel_reason']}", indent="      "))
    return pd.DataFrame(columns), "\n".join(notes)


def calibration_table(table: pd.DataFrame) -> pd.DataFrame:
    """Prediction-set coverage at the configured level: coverage with its 95% interval, set size."""
    table = table[table["configured"].astype(str).str.lower() == "true"]
    return pd.DataFrame(
        {
            "network": table[NETWORK].map(lambda v: short(v, 24)),
            "nominal %": table["nominal_coverage"].map(pct),
            "coverage %": table["empirical_coverage"].map(pct),
            "95% CI": [
                interval(lo, hi)
                for lo, hi in zip(table["coverage_ci_low"], table["coverage_ci_high"])
            ],
            "mean set size": table["mean_set_size"].map(lambda v: f"{v:.2f}"),
            "empty sets": table["empty_sets"],
            "treatments": table["n_treatments"],
        }
    )


def print_compact(folder: Path, summary: pd.DataFrame) -> None:
    """Print the run's tables in ``folder``, compact, every line at most :data:`WIDTH` wide.

    Parameters
    ----------
    folder : pathlib.Path
        A run's ``results/tables``.
    summary : pandas.DataFrame
        Its ``summary.tsv``: the networks (and ensemble) whose tables are printed.
    """
    print(wrap(f"Tables of the run in {folder} (cellmoa tables --wide: every column)"))
    networks = [str(n) for n in summary[NETWORK]]
    for network in networks:
        path = folder / f"accuracy_{network}.tsv"
        if path.exists():
            print(section(f"{network}: treatment-level accuracy per MoA", path))
            print(fit_table(accuracy_table(read_tsv(path))))
        path = folder / f"accuracy_by_fold_{network}.tsv"
        if path.exists():
            print(section(f"{network}: accuracy per fold, % (n)", path))
            print(fit_table(by_fold_table(read_tsv(path))))
    path = folder / "summary_per_moa.tsv"
    if path.exists():
        print(section("Treatment accuracy per MoA across networks, %", path))
        print(fit_table(per_moa_table(read_tsv(path))))
    table, of = summary_table(summary)
    print(section("Summary across networks", folder / "summary.tsv"))
    print(fit_table(table))
    print(
        wrap(
            "(95% CI: percentile bootstrap resampling compounds; NSC/NSCB: 1-NN MoA matching and "
            f"mAP: MoA retrieval (copairs), of {of}; --wide: every column)"
        )
    )
    _print_unannotated(folder, networks)


def _print_unannotated(folder: Path, networks: list[str]) -> None:
    """The unannotated treatments (the ensemble's where there are some) and the calibration."""
    paths = [folder / f"unannotated_{n}.tsv" for n in networks]
    paths = [p for p in paths if p.exists()]
    ensemble = [p for p in paths if p.stem == f"unannotated_{ENSEMBLE}"]
    for path in ensemble or paths:
        table = read_tsv(path)
        name = path.stem[len("unannotated_") :]
        print(section(f"{name}: unannotated compounds, most confident first", path))
        shown, notes = unannotated_table(table)
        print(fit_table(shown))
        print(
            wrap(
                "(p: top probability; set: MoAs in the prediction set; nearest: compound of the "
                "most similar annotated treatment; --wide: margin, dose consistency, neighbours)"
            )
        )
        if notes:
            print(notes)
        if len(table) > len(shown):
            print(wrap(f"({len(table) - len(shown)} more in {path})"))
    path = folder / "calibration.tsv"
    if path.exists():
        print(section("Prediction sets at the configured coverage (leave one compound out)", path))
        print(fit_table(calibration_table(read_tsv(path))))


__all__ = ["WIDTH", "fit_table", "print_compact", "short", "wrap"]
