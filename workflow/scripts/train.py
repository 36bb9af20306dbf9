"""Rule train (one fold) or train_network (every fold of a network, one after the other): train
the network, predict the held-out compound's (or cell line's) crops, embed every crop."""

from rule_setup import start

start(snakemake)

from pathlib import Path

from cellmoa.training import FoldOutputs, TrainSettings, train_folds


def files(value) -> list[Path]:
    return [Path(value)] if isinstance(value, str) else [Path(v) for v in value]


out = snakemake.output
# params.training holds only what changes outputs (for Snakemake's rerun check); the job's
# settings come from the whole training section
settings = TrainSettings.from_config(snakemake.config["training"], snakemake.wildcards.network, threads=snakemake.threads)
folds = {
    held_out: FoldOutputs(model, history, predictions, fold, checkpoint, embeddings)
    for held_out, model, history, predictions, fold, checkpoint, embeddings in zip(
        snakemake.params.held_out,
        files(out.model),
        files(out.history),
        files(out.predictions),
        files(out.fold),
        files(snakemake.params.checkpoint_dir),
        files(out.embeddings),
    )
}
train_folds(
    Path(snakemake.input.tensors),
    folds,
    settings,
    imagenet_file=Path(snakemake.input.weights) if "weights" in snakemake.input.keys() else None,
)
