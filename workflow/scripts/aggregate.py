"""Rule aggregate: treatment-level predictions and per-MoA accuracy of one network."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])

import pandas as pd

from cellmoa import evaluation
from cellmoa.reporting import read_tsv
from cellmoa.training import write_tsv

predictions = pd.concat([read_tsv(f) for f in snakemake.input.predictions], ignore_index=True)
treatments = evaluation.treatment_predictions(predictions)
write_tsv(treatments, Path(snakemake.output.treatments))
write_tsv(evaluation.accuracy_by_moa(treatments), Path(snakemake.output.accuracy))
