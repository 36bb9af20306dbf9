"""Rule train (one fold), train_all (the all-compound fold) or train_network (every fold of a
network, one after the other): train the network, predict the held-out compound's (or cell
line's; the all-compound fold: the unannotated compounds') crops, embed the crops."""

from rule_setup import start

start(snakemake)

from pathlib import Path

from cellmoa.train.training import FoldOutputs, TrainSettings, train_folds, use_backend


def files(name) -> dict[str, Path]:
    """fold folder name -> that fold's file of output ``name`` (results/models/<network>/<fold>/...)."""
    value = snakemake.output.get(name, [])
    paths = [Path(value)] if isinstance(value, str) else [Path(v) for v in value]
    return {path.parent.name: path for path in paths}


# params.training holds only what changes outputs (for Snakemake's rerun check); the job's
# settings come from the whole training section
settings = TrainSettings.from_config(
    snakemake.config["training"], snakemake.wildcards.network, threads=snakemake.threads
)
use_backend(settings.backend, settings.deterministic)  # before Keras is imported (KERAS_BACKEND)
models, histories, predictions = files("model"), files("history"), files("predictions")
fold_files, embeddings = files("fold"), files("embeddings")
folds = {
    held_out: FoldOutputs(
        models.get(slug),
        histories[slug],
        predictions[slug],
        fold_files[slug],
        Path(checkpoint),
        embeddings[slug],
    )
    for held_out, slug, checkpoint in zip(
        snakemake.params.held_out,
        [Path(c).name for c in snakemake.params.checkpoint_dir],
        snakemake.params.checkpoint_dir,
    )
}
train_folds(
    Path(snakemake.input.tensors),
    folds,
    settings,
    imagenet_file=Path(snakemake.input.weights) if "weights" in snakemake.input.keys() else None,
)
