"""Rule aggregate: one network's treatment-level predictions and accuracy tables.

Treatment-level predictions, per-MoA accuracy, crop-, well- and treatment-level accuracy per
fold, and the confusion matrix of one network.
"""

from rule_setup import start

start(snakemake)

from pathlib import Path

import pandas as pd

from cellmoa.columns import PROB_PREFIX
from cellmoa.data.resolve import resolve_dataset
from cellmoa.evaluate import accuracy
from cellmoa.files import read_tsv, write_tsv
from cellmoa.report.plots import plot_confusion

network = snakemake.wildcards.network
predictions = pd.concat([read_tsv(f) for f in snakemake.input.predictions], ignore_index=True)
control = resolve_dataset(snakemake.config).control
treatments = accuracy.treatment_predictions(predictions, control)
write_tsv(treatments, Path(snakemake.output.treatments))
by_moa = accuracy.accuracy_by_moa(treatments)
write_tsv(by_moa, Path(snakemake.output.accuracy))
write_tsv(accuracy.accuracy_by_fold(predictions, control), Path(snakemake.output.by_fold))
classes = [c[len(PROB_PREFIX) :] for c in accuracy.class_columns(predictions)]
total = by_moa.iloc[-1]
plot_confusion(
    treatments,
    classes,
    f"{network}: {int(total['n_correct'])}/{int(total['n_treatments'])} treatments correct",
    Path(snakemake.output.confusion),
)
