"""Rule train (one fold), train_all (the all-compound fold) or train_network (every fold).

Train the network (every fold of a network one after the other for train_network), predict the
held-out compound's (or cell line's; the all-compound fold: the unannotated compounds') crops, embed
the crops.
"""

from rule_setup import start

start(snakemake)

from pathlib import Path

from cellmoa.train.backends import use_backend
from cellmoa.train.settings import TrainSettings
from cellmoa.train.training import FoldOutputs, train_folds


def files(name) -> dict[str, Path]:
    """Fold folder name -> that fold's file of output ``name``.

    The files are ``results/models/<network>/<fold>/...``.
    """
    value = snakemake.output.get(name, [])
    paths = [Path(value)] if isinstance(value, str) else [Path(v) for v in value]
    return {path.parent.name: path for path in paths}


# params.training: the network's resolved settings that change outputs (cellmoa.config.plan);
# how often to checkpoint from the config, and the job's threads
network = snakemake.wildcards.network
settings = TrainSettings(
    **snakemake.params.training,
    checkpoint_minutes=TrainSettings.from_config(
        snakemake.config["training"], network
    ).checkpoint_minutes,
    threads=snakemake.threads,
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
