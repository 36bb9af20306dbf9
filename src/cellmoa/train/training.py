"""Training one network on one fold after another, and writing each fold's results.

The settings (:class:`~cellmoa.train.settings.TrainSettings`, from the ``training:`` config
section with per-network overrides) decide the recipe; :mod:`cellmoa.train.backends` sets up the
Keras backend; :mod:`cellmoa.train.folds` decides which crops a fold trains on;
:mod:`cellmoa.train.pipeline` what it is fed; :mod:`cellmoa.train.checkpoints` how it resumes
after a kill; :mod:`cellmoa.train.prediction` what the trained model predicts and embeds.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.columns import FOLD, NETWORK
from cellmoa.files import atomic_path, write_text, write_tsv
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.train import memory, models
from cellmoa.train.backends import configure_backend
from cellmoa.train.checkpoints import Checkpoint
from cellmoa.train.folds import ALL_FOLD, Fold, fold_classes, select_fold, unannotated
from cellmoa.train.inputs import CropReader, network_input, steps_per_epoch
from cellmoa.train.pipeline import make_dataset
from cellmoa.train.prediction import predict_crops, write_embeddings
from cellmoa.train.settings import TrainSettings

log = logging.getLogger(__name__)


def _optimizer(settings: TrainSettings):
    """The Keras optimizer the settings name (``sgd`` or ``adam``)."""
    import keras  # lazily: importing cellmoa.train must not import Keras

    if settings.optimizer == "sgd":
        return keras.optimizers.SGD(settings.learning_rate, momentum=settings.momentum)
    if settings.optimizer == "adam":
        return keras.optimizers.Adam(settings.learning_rate)
    raise ValueError(f"unknown optimizer {settings.optimizer!r}; use 'sgd' or 'adam'")


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Balanced class weights n / (k * n_c) over the classes present.

    Examples
    --------
    >>> class_weights(np.array([0, 0, 0, 1]), 3)
    {0: 0.6666666666666666, 1: 2.0, 2: 0.0}
    """
    counts = np.bincount(labels, minlength=n_classes)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return {i: float(w) for i, w in enumerate(weights)}


@dataclass(frozen=True)
class FoldOutputs:
    """Where one fold's results go (the train rule's outputs), and its checkpoint folder.

    ``model`` None = the trained model is not kept (``training.fold_models: false``).
    """

    model: Path | None
    history: Path
    predictions: Path
    fold: Path
    checkpoint_dir: Path
    embeddings: Path | None = None

    def files(self) -> list[Path]:
        """The output files (those that are written)."""
        return [
            Path(f)
            for f in (self.model, self.history, self.predictions, self.fold, self.embeddings)
            if f is not None
        ]


class FoldTrainer:
    """Trains one network on one fold after another in a single process.

    The model is built, compiled and its training and prediction steps traced once (20-90 s on a
    CPU, more than the training itself for small data); every fold then starts from the same
    initial weights and optimizer state (learning rate and step count included), which is what a
    fresh process with the same seed would start from, so a fold trained here gives the
    predictions of a fold trained alone.

    An interrupted fold resumes from the last finished epoch kept in its checkpoint folder.
    """

    def __init__(self, tensors: Path, settings: TrainSettings, imagenet_file: Path | None = None):
        configure_backend(settings)
        self.tensors = Path(tensors)
        self.settings = settings
        self.metadata = read_crop_metadata(tensors)
        self.classes = fold_classes(self.metadata)
        self.model = models.build_classifier(
            settings.network,
            len(self.classes),
            settings.input_size,
            settings.weights,
            settings.l2,
            settings.batchnorm_momentum,
            imagenet_file,
            head=settings.head,
            channels=self._input_channels(),
        )
        self.model.compile(
            optimizer=_optimizer(settings),
            loss="binary_crossentropy"
            if settings.head == "sigmoid"
            else "sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=settings.jit_compile,
        )
        self.model.optimizer.build(self.model.trainable_variables)
        self._initial = self._state()
        self._embedder = None

    def _input_channels(self) -> int:
        """The channels the network takes: 3, or every stored one with ``channel_adapter: stem``."""
        shape, _, stored = CropReader(self.tensors).layout()
        return network_input(self.settings, stored, shape[-1])[1]

    def _state(self) -> tuple[list, list]:
        """The model's weights and its optimizer's variables, copied."""
        return self.model.get_weights(), [np.array(v) for v in self.model.optimizer.variables]

    def _set_state(self, weights, optimizer_values) -> None:
        """Put the model in a state :meth:`_state` (or a checkpoint) gave."""
        self.model.set_weights(weights)
        variables = self.model.optimizer.variables
        if len(variables) != len(optimizer_values):
            raise ValueError(
                f"the checkpoint's optimizer has {len(optimizer_values)} variables, this model's "
                f"{len(variables)}: it was written with other settings; delete the checkpoint "
                "folder to start the fold anew"
            )
        for variable, value in zip(variables, optimizer_values):
            variable.assign(value)

    def _start(self, checkpoint: Checkpoint, held_out: str) -> int:
        """Put the model in the state the fold starts (or resumes) from.

        Returns the epochs finished before (0 without a checkpoint).
        """
        saved, done = checkpoint.restore()
        if saved is None:
            self._set_state(*self._initial)
            return 0
        log.info(
            "fold %s: resuming from the checkpoint in %s after epoch %d of %d",
            held_out,
            checkpoint.folder,
            done,
            self.settings.epochs,
        )
        self._set_state(saved.get_weights(), [np.array(v) for v in saved.optimizer.variables])
        return done

    def train(
        self, held_out: str, outputs: FoldOutputs, keep_checkpoint: bool = False
    ) -> pd.DataFrame:
        """Train the fold that holds out ``held_out`` and write its outputs.

        Saves the fold's model, predicts its held-out crops and embeds every crop.

        Parameters
        ----------
        held_out : str
            The held-out value of the fold (a compound; a cell line for BBBC014).
        outputs : FoldOutputs
            Where the fold's results go.
        keep_checkpoint : bool
            Keep the checkpoint folder afterwards, with the fold's results in it (a multi-fold
            job removes them when all are done); else it is removed.

        Returns
        -------
        pandas.DataFrame
            The predictions table.
        """
        settings, metadata = self.settings, self.metadata
        fold = select_fold(metadata, held_out, settings.fold_scheme)
        made_with = json.dumps(
            {"held_out": held_out, **settings.output_settings()}, sort_keys=True, default=str
        )
        checkpoint = Checkpoint(outputs.checkpoint_dir, settings.checkpoint_minutes, made_with)
        results = outputs.files()
        if keep_checkpoint and checkpoint.restore_results(results):
            log.info(
                "fold %s: finished before this job was stopped; its results restored from %s",
                held_out,
                checkpoint.folder,
            )
            return pd.read_csv(outputs.predictions, sep="\t", keep_default_na=False)
        self._write_summary(fold, outputs.fold)
        done = self._start(checkpoint, held_out)
        if done < settings.epochs:
            self._fit(fold, done, checkpoint)
        predictions = self._write_outputs(fold, held_out, outputs)
        write_tsv(checkpoint.history(), outputs.history)
        if keep_checkpoint:
            checkpoint.keep_results(results)  # a rerun after a kill restores this fold untrained
        else:
            shutil.rmtree(checkpoint.folder, ignore_errors=True)
        return predictions

    def _write_summary(self, fold: Fold, path: Path) -> None:
        """Write the fold's summary (its crops, classes and the settings) and log it."""
        summary = fold.summary(self.metadata)
        summary["settings"] = asdict(self.settings)
        write_text(path, json.dumps(summary, indent=2) + "\n")
        log.info(
            "fold %s (%s): %d training crops, %d held-out crops, classes %s",
            fold.held_out,
            fold.scheme,
            len(fold.train_index),
            len(fold.test_index),
            fold.classes,
        )

    def _fit(self, fold: Fold, done: int, checkpoint: Checkpoint) -> None:
        """Train the model through the epochs after ``done``, checkpointing as it goes."""
        settings = self.settings
        class_index = {c: i for i, c in enumerate(fold.classes)}
        train_labels = np.array(
            [class_index[m] for m in self.metadata["moa"].iloc[fold.train_index]], np.int64
        )
        # one pipeline through the epochs still to run; epoch e feeds the same batches whether
        # the run started at 0 or resumed at e, so a resumed fold ends with the weights of an
        # uninterrupted one
        weights = class_weights(train_labels, len(fold.classes)) if settings.class_weights else None
        # tf.data takes the class weights from fit(); a generator (the other backends) yields them
        on_tf = settings.backend == "tensorflow"
        train_ds = make_dataset(
            self.tensors,
            fold.train_index,
            train_labels,
            settings,
            training=True,
            epochs=range(done, settings.epochs),
            class_weights=None if on_tf else weights,
        )
        self.model.fit(
            train_ds,
            epochs=settings.epochs,
            initial_epoch=done,
            steps_per_epoch=steps_per_epoch(len(fold.train_index), settings.batch_size),
            class_weight=weights if on_tf else None,
            callbacks=_callbacks(settings, checkpoint),
            shuffle=False,  # the input pipeline shuffles (seeded)
            verbose=0,
        )

    def _write_outputs(self, fold: Fold, held_out: str, outputs: FoldOutputs) -> pd.DataFrame:
        """Save the trained model, its predictions of the held-out crops and the embeddings."""
        settings, metadata = self.settings, self.metadata
        if outputs.model is not None:
            with atomic_path(outputs.model) as tmp:
                self.model.save(tmp)
        predictions = predict_crops(
            self.model, self.tensors, metadata, fold.test_index, fold.classes, settings
        )
        predictions.insert(0, FOLD, held_out)
        predictions.insert(0, NETWORK, settings.network)
        write_tsv(predictions, outputs.predictions)
        if outputs.embeddings is not None:
            if self._embedder is None:
                self._embedder = models.embedding_model(self.model)
            # a leave-one-out fold's model embeds what the matching uses (annotated treatments and
            # controls); the unannotated crops (NaN rows) only the all-compound fold's model
            rows = None if held_out == ALL_FOLD else ~unannotated(metadata)
            write_embeddings(
                self._embedder, self.tensors, settings, Path(outputs.embeddings), held_out, rows
            )
        return predictions


def _callbacks(settings: TrainSettings, checkpoint: Checkpoint) -> list:
    """The checkpoint's callback, and the learning-rate schedule where ``lr_decay_epochs``."""
    import keras  # lazily: importing cellmoa.train must not import Keras

    callbacks = [checkpoint.callback()]
    if settings.lr_decay_epochs:
        every, factor, base = (
            settings.lr_decay_epochs,
            settings.lr_decay_factor,
            settings.learning_rate,
        )
        callbacks.append(
            keras.callbacks.LearningRateScheduler(lambda epoch: base * factor ** (epoch // every))
        )
    return callbacks


def train_folds(
    tensors: Path,
    folds: dict[str, FoldOutputs],
    settings: TrainSettings,
    imagenet_file: Path | None = None,
) -> dict[str, pd.DataFrame]:
    """Train the folds one after the other in this process (see :class:`FoldTrainer`).

    Each fold's checkpoint is kept until every fold is done, so a job killed at any moment
    resumes where it stopped, finished folds included.

    Parameters
    ----------
    tensors : Path
        The tensors file (``all.h5``).
    folds : dict of str to FoldOutputs
        Held-out value -> where that fold's results go.
    settings : TrainSettings
        The network's settings.
    imagenet_file : Path, optional
        The backbone's no-top ImageNet weights, where ``settings.weights`` is ``imagenet``.

    Returns
    -------
    dict of str to pandas.DataFrame
        Held-out value -> the fold's predictions table.
    """
    trainer = FoldTrainer(tensors, settings, imagenet_file)
    results = {}
    for k, (held_out, outputs) in enumerate(folds.items(), 1):
        log.info("fold %d of %d: %s", k, len(folds), held_out)
        results[held_out] = trainer.train(held_out, outputs, keep_checkpoint=len(folds) > 1)
    for outputs in folds.values():
        shutil.rmtree(outputs.checkpoint_dir, ignore_errors=True)
    memory.release()  # the folds' crop cache (training.inputs: memory)
    return results


def train_fold(
    tensors: Path,
    held_out: str,
    settings: TrainSettings,
    model_path: Path,
    history_path: Path,
    predictions_path: Path,
    fold_path: Path,
    checkpoint_dir: Path,
    imagenet_file: Path | None = None,
    embeddings_path: Path | None = None,
) -> pd.DataFrame:
    """Train on one fold's training crops, save the model, predict the held-out crops.

    One fold of :class:`FoldTrainer`, its outputs given one by one; returns the predictions
    table.
    """
    outputs = FoldOutputs(
        Path(model_path),
        Path(history_path),
        Path(predictions_path),
        Path(fold_path),
        Path(checkpoint_dir),
        Path(embeddings_path) if embeddings_path else None,
    )
    return FoldTrainer(tensors, settings, imagenet_file).train(held_out, outputs)
