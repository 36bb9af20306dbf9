"""Rule train: train one network on one fold and predict its held-out compound (or cell line)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])

from cellmoa.training import TrainSettings, train_fold

settings = TrainSettings.from_config(
    snakemake.params.training, snakemake.wildcards.network, threads=snakemake.threads
)
train_fold(
    Path(snakemake.input.tensors),
    snakemake.params.held_out,
    settings,
    model_path=Path(snakemake.output.model),
    history_path=Path(snakemake.output.history),
    predictions_path=Path(snakemake.output.predictions),
    fold_path=Path(snakemake.output.fold),
    checkpoint_dir=Path(snakemake.params.checkpoint_dir),
    imagenet_file=Path(snakemake.input.weights) if "weights" in snakemake.input.keys() else None,
    embeddings_path=Path(snakemake.output.embeddings),
)
