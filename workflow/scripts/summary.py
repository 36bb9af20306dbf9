"""Rule summary: one row per network (treatment accuracy with bootstrap interval, field and crop
accuracy, nearest-neighbour accuracy, the paper's figure as reference), accuracy per MoA across
networks, and the accuracy plot."""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

import pandas as pd

from cellmoa import evaluation
from cellmoa.files import read_tsv, write_tsv
from cellmoa.matching import accuracy_by_scheme
from cellmoa.plots import plot_accuracy
from cellmoa.reporting import format_table, per_moa_table, summarize

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
    network: accuracy_by_scheme(read_tsv(path))
    for network, path in zip(p.networks, snakemake.input.matches)
}
table = summarize(by_network, p.scheme, p.dataset, nn, seed=p.seed)
write_tsv(table, Path(snakemake.output.summary))
per_moa = per_moa_table({n: evaluation.treatment_predictions(df) for n, df in by_network.items()})
write_tsv(per_moa, Path(snakemake.output.per_moa))
plot_accuracy(table, Path(snakemake.output.plot))
logging.getLogger("summary").info("\n%s\n\n%s", format_table(table), format_table(per_moa))
