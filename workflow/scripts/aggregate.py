"""Rule aggregate: treatment-level predictions, per-MoA accuracy, crop-, well- and
treatment-level accuracy per fold, and the confusion matrix of one network."""

from rule_setup import start

start(snakemake)

from pathlib import Path

import pandas as pd

from cellmoa import evaluation
from cellmoa.datasets import dataset_from_config
from cellmoa.files import read_tsv, write_tsv
from cellmoa.plots import plot_confusion

network = snakemake.wildcards.network
predictions = pd.concat([read_tsv(f) for f in snakemake.input.predictions], ignore_index=True)
control = dataset_from_config(snakemake.config).control
treatments = evaluation.treatment_predictions(predictions, control)
write_tsv(treatments, Path(snakemake.output.treatments))
accuracy = evaluation.accuracy_by_moa(treatments)
write_tsv(accuracy, Path(snakemake.output.accuracy))
write_tsv(evaluation.accuracy_by_fold(predictions, control), Path(snakemake.output.by_fold))
classes = [c[len(evaluation.PROB_PREFIX):] for c in evaluation.class_columns(predictions)]
total = accuracy.iloc[-1]
plot_confusion(
    treatments,
    classes,
    f"{network}: {int(total['n_correct'])}/{int(total['n_treatments'])} treatments correct",
    Path(snakemake.output.confusion),
)
