"""Rule summary: the summary across networks, accuracy per MoA and the accuracy plot.

One row per network (treatment accuracy with its compound-bootstrap and exact intervals, field,
well and crop accuracy, nearest-neighbour accuracy and mAP under NSC and NSCB, the paper's
figure as reference; with several networks an Ensemble row, whose matching is of the networks'
concatenated profiles; with profiles.baseline a CellProfiler row last, never in the ensemble),
accuracy per MoA across networks, and the accuracy plot.
"""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

import pandas as pd

from cellmoa.data.resolve import resolve_dataset
from cellmoa.evaluate import accuracy
from cellmoa.files import read_tsv, write_tsv
from cellmoa.profiles.summary import summary_by_scheme
from cellmoa.report.plots import plot_accuracy
from cellmoa.report.tables import compact_summary, format_table, per_moa_table, summarize

p = snakemake.params
by_network = {
    network: pd.concat(
        [read_tsv(f) for f in snakemake.input.predictions if Path(f).parts[-3] == network],
        ignore_index=True,
    )
    for network in p.networks
}
# no nearest-neighbour tables for a dataset with one compound (BBBC014)
nn = {
    network: summary_by_scheme(read_tsv(matches), read_tsv(ap), seed=p.seed)
    for network, matches, ap in zip(
        p.networks, snakemake.input.matches, snakemake.input.average_precision
    )
}
if snakemake.input.ensemble_matches:
    nn["Ensemble"] = summary_by_scheme(
        read_tsv(snakemake.input.ensemble_matches[0]),
        read_tsv(snakemake.input.ensemble_average_precision[0]),
        seed=p.seed,
    )
# the classical baseline (profiles.baseline): a row after the networks and their ensemble
baselines = {}
if p.baseline:
    baselines[p.baseline] = pd.concat(
        [read_tsv(f) for f in snakemake.input.baseline], ignore_index=True
    )
    if snakemake.input.baseline_matches:
        nn[p.baseline] = summary_by_scheme(
            read_tsv(snakemake.input.baseline_matches[0]),
            read_tsv(snakemake.input.baseline_average_precision[0]),
            seed=p.seed,
        )
control = resolve_dataset(snakemake.config).control
table = summarize(
    by_network, p.scheme, p.dataset, nn, seed=p.seed, control=control, baselines=baselines
)
write_tsv(table, Path(snakemake.output.summary))
treatments = {n: accuracy.treatment_predictions(df, control) for n, df in by_network.items()}
if len(treatments) > 1:
    treatments["Ensemble"] = accuracy.ensemble_treatments(treatments)
for name, predictions in baselines.items():
    treatments[name] = accuracy.treatment_predictions(predictions, control)
per_moa = per_moa_table(treatments)
write_tsv(per_moa, Path(snakemake.output.per_moa))
plot_accuracy(table, Path(snakemake.output.plot))
logging.getLogger("summary").info(
    "\n%s\n\n%s\n\n%s",
    compact_summary(table).to_string(index=False),
    format_table(table),
    format_table(per_moa),
)
