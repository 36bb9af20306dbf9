"""Rule aggregate: treatment-level predictions, per-MoA accuracy, crop-, well- and
treatment-level accuracy per fold, and the confusion matrix of one network."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])
import pandas as pd

from cellmoa import evaluation
from cellmoa.plots import plot_confusion
from cellmoa.reporting import read_tsv
from cellmoa.training import write_tsv

network = snakemake.wildcards.network
predictions = pd.concat([read_tsv(f) for f in snakemake.input.predictions], ignore_index=True)
treatments = evaluation.treatment_predictions(predictions)
write_tsv(treatments, Path(snakemake.output.treatments))
accuracy = evaluation.accuracy_by_moa(treatments)
write_tsv(accuracy, Path(snakemake.output.accuracy))
write_tsv(evaluation.accuracy_by_fold(predictions), Path(snakemake.output.by_fold))
classes = [c[len(evaluation.PROB_PREFIX):] for c in evaluation.class_columns(predictions)]
total = accuracy.iloc[-1]
plot_confusion(
    treatments,
    classes,
    f"{network}: {int(total['n_correct'])}/{int(total['n_treatments'])} treatments correct",
    Path(snakemake.output.confusion),
)
