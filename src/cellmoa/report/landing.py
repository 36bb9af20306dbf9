"""The report's landing page: the answer first (summary, accuracy figure, unannotated calls).

Snakemake's HTML report opens on the workflow description (``report:`` in the Snakefile,
``workflow/report/workflow.rst``); that description embeds the fragment written here
(``results/report/landing.html``), so the report opens on a compact summary table, the accuracy
figure and the calls for the unannotated compounds, with a short "how to read this" and links to
the details; the workflow graph stays beside it.

Examples
--------
>>> summary = pd.DataFrame({"Metadata_Network": ["ResNet50"], "n_treatments": [12],
...                         "n_correct": [11], "treatment_accuracy": [11 / 12],
...                         "treatment_accuracy_ci_low": [0.75],
...                         "treatment_accuracy_ci_high": [1.0]})
>>> rows = summary_rows(summary)
>>> rows[0]["accuracy"]
'91.7% [75.0, 100.0] (11/12)'
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from cellmoa.columns import COMPOUND, CONCENTRATION, NETWORK

#: the summary's columns shown first: (column, heading); the accuracy column is built
MATCHING = (
    ("nn_nsc_accuracy", "NSC"),
    ("nn_nscb_accuracy", "NSCB"),
    ("pp_nn_nsc_accuracy", "NSC post-processed"),
    ("pp_nn_nscb_accuracy", "NSCB post-processed"),
    ("map_nscb", "mAP (NSCB)"),
)
#: the unannotated calls shown on the landing page (the whole table is in the report's Tables)
SHOWN_CALLS = 20

HOW_TO_READ = (
    "Treatment accuracy: the share of the annotated treatments (compound and concentration) "
    "whose MoA the network predicted right, each predicted by the model of the fold that held its "
    "compound out, with a 95% interval (bootstrap over compounds) and the count. NSC and NSCB: "
    "the share whose nearest other compound's profile (other batch, for NSCB) has its MoA; mAP: "
    "mean average precision of MoA retrieval. Unannotated compounds: the top MoA, the prediction "
    "set that holds the true MoA in the configured share of cases if it is an annotated one, and "
    "a novel flag when the compound resembles no annotated MoA closely enough."
)

STYLE = (
    "<style>.prose.max-w-lg{max-width:min(64rem,92vw)}"
    ".cellmoa-landing table{font-size:0.8rem}.cellmoa-landing td,.cellmoa-landing th"
    "{padding:0.15rem 0.5rem}.cellmoa-landing img{max-width:100%}</style>"
)


def _percent(value) -> str:
    return "" if pd.isna(value) else f"{100 * float(value):.1f}%"


def summary_rows(summary: pd.DataFrame) -> list[dict[str, str]]:
    """One row of display strings per network: accuracy with interval and count, matching.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``results/tables/summary.tsv``.

    Returns
    -------
    list of dict
        Keys ``network``, ``accuracy`` and the headings of :data:`MATCHING` the summary has.
    """
    rows = []
    for _, r in summary.iterrows():
        row = {
            "network": str(r[NETWORK]),
            "accuracy": f"{_percent(r['treatment_accuracy'])} "
            f"[{100 * r['treatment_accuracy_ci_low']:.1f}, "
            f"{100 * r['treatment_accuracy_ci_high']:.1f}] "
            f"({int(r['n_correct'])}/{int(r['n_treatments'])})",
        }
        for column, heading in MATCHING:
            if column not in summary.columns:
                continue
            value = r[column]
            if column.startswith("map"):
                row[heading] = "" if pd.isna(value) else f"{float(value):.3f}"
            else:
                row[heading] = _percent(value)
        rows.append(row)
    return rows


def _table(rows: list[dict[str, str]], headings: dict[str, str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings.values())
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(k, '')))}</td>" for k in headings) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"


def _calls(table: pd.DataFrame) -> str:
    """The first :data:`SHOWN_CALLS` unannotated calls as an HTML table."""
    rows = []
    for _, r in table.head(SHOWN_CALLS).iterrows():
        rows.append(
            {
                "compound": r[COMPOUND],
                "conc": f"{float(r[CONCENTRATION]):g}",
                "top": r["top_moa"],
                "p": f"{float(r['top_probability']):.2f}",
                "set": r["prediction_set"] if isinstance(r["prediction_set"], str) else "(empty)",
                "novel": "novel" if bool(r["novel"]) else "",
            }
        )
    headings = {
        "compound": "compound",
        "conc": "concentration",
        "top": "top MoA",
        "p": "p",
        "set": "prediction set",
        "novel": "flag",
    }
    more = (
        f"<p>{len(table) - SHOWN_CALLS} more in the table (Tables).</p>"
        if len(table) > SHOWN_CALLS
        else ""
    )
    return _table(rows, headings) + more


def landing_html(
    summary: pd.DataFrame,
    accuracy_png: Path,
    calls: pd.DataFrame | None = None,
    calls_name: str = "",
    dataset: str = "",
) -> str:
    """The landing page's HTML fragment.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``results/tables/summary.tsv``.
    accuracy_png : pathlib.Path
        The accuracy figure, embedded as a data URI.
    calls : pandas.DataFrame, optional
        An unannotated table (``unannotated_<name>.tsv``), the ensemble's where there is one.
    calls_name : str
        Whose calls these are (a network or the ensemble).
    dataset : str
        The dataset's name, in the heading.

    Returns
    -------
    str
        A ``<div>`` with the style, heading, how-to-read, summary table, figure and calls.
    """
    rows = summary_rows(summary)
    headings = {"network": "network", "accuracy": "treatment accuracy [95% CI] (right/all)"}
    headings.update({h: h for _, h in MATCHING if any(h in r for r in rows)})
    # base64 in lines of 76: docutils refuses lines over 10,000 characters, and browsers decode
    # a base64 data URI ignoring whitespace (the forgiving-base64 decode)
    image = base64.encodebytes(Path(accuracy_png).read_bytes()).decode("ascii").strip()
    parts = [
        STYLE,
        '<div class="cellmoa-landing">',
        f"<h2>cellmoa results{': ' + html.escape(dataset) if dataset else ''}</h2>",
        f"<p>{html.escape(HOW_TO_READ)}</p>",
        "<h3>Summary</h3>",
        _table(rows, headings),
        "<h3>Accuracy</h3>",
        f'<img alt="treatment accuracy of every network" src="data:image/png;base64,{image}"/>',
    ]
    if calls is not None:
        parts += [
            f"<h3>Unannotated compounds ({html.escape(calls_name)})</h3>",
            _calls(calls),
        ]
    parts += [
        "<p>Details: every table under Tables, the profiles and matching under Profiles, the "
        "calibration of the sets under Unannotated compounds; the workflow graph is in the menu "
        "(Workflow) and beside this page.</p>",
        "</div>",
    ]
    return "\n".join(parts)
