"""Training one network on one fold, and predicting (and embedding) with the trained model.

The settings (:class:`TrainSettings`, from the ``training:`` config section with per-network
overrides) decide the recipe; :mod:`cellmoa.train.folds` which crops a fold trains on;
:mod:`cellmoa.train.inputs` what it is fed; :mod:`cellmoa.train.checkpoints` how it resumes after a kill.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from cellmoa.files import atomic_path, write_text, write_tsv
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.train import models
from cellmoa.train.checkpoints import Checkpoint
from cellmoa.train.folds import ALL_FOLD, fold_classes, select_fold, unannotated
from cellmoa.train.gpus import claim_cuda_device, slurm_allocation, use_one_gpu
from cellmoa.train.inputs import CropReader, make_dataset, network_input, steps_per_epoch

log = logging.getLogger(__name__)

#: the Keras backends a job can train on (``training.backend``)
BACKENDS = ("tensorflow", "jax", "torch")

#: keys of the ``training:`` section that are not per-network settings
SECTION_KEYS = ("networks", "per_network", "folds", "imagenet_weights_url", "jobs", "fold_models")


@dataclass
class TrainSettings:
    network: str = "ResNet50"
    #: input size in pixels (square); None = the network's pretraining size
    input_size: int | None = None
    weights: str | None = "imagenet"
    epochs: int = 10
    batch_size: int = 8
    optimizer: str = "sgd"
    learning_rate: float = 1e-4
    momentum: float = 0.9
    #: multiply the learning rate by lr_decay_factor every lr_decay_epochs epochs (0 = never)
    lr_decay_epochs: int = 0
    lr_decay_factor: float = 0.1
    l2: float = 0.0
    class_weights: bool = True
    #: True (all), False (none), or a list of AUGMENTATIONS
    augment: bool | list = True
    #: z-scores become pixels as 127.5 + pixel_scale * z, clipped to [0, 255]
    pixel_scale: float = 16.0
    batchnorm_momentum: float | None = None
    #: "softmax" (one unit per class, the paper's BBBC021 head) or "sigmoid" (one unit, two
    #: classes; the paper's BBBC014 head)
    head: str = "softmax"
    #: what feeds the network's 3 input channels: stored channel names or None for a zero
    #: channel (the dataset's ``network_channels``); None = the stored channels as they are
    input_channels: list | None = None
    #: how stored channels feed the 3-channel networks: "select" (``input_channels`` picks three)
    #: or "stem" (every stored channel: the first convolution widened to take them all; with
    #: ImageNet weights each further channel's kernel is the mean of the RGB kernels, all scaled
    #: by 3 / channels); with "stem", ``input_channels`` is not used
    channel_adapter: str = "select"
    fold_scheme: str = "nsc"
    seed: int = 0
    #: the Keras backend the job trains on: "tensorflow" (tf.data input), "jax" or "torch"
    #: (numpy input, no TensorFlow needed)
    backend: str = "tensorflow"
    #: False (float32), True or "float16" (mixed float16, loss-scaled), "bfloat16" (mixed bfloat16)
    mixed_precision: bool | str = False
    #: XLA-compile the training step; None = the backend's way (TensorFlow and PyTorch off, JAX on:
    #: Keras on JAX without jit runs op by op, many times slower)
    jit_compile: bool | None = None
    #: deterministic ops: a seeded fold gives the same predictions every run (and after a
    #: resume); off trades that for speed (cuDNN's fastest kernels); TensorFlow needs it off for XLA
    deterministic: bool = True
    #: TensorFlow's graph optimizer (Grappler): off cut InceptionResNetV2's first-step tracing by
    #: a third and its CPU steps by 14% on the demo; on GPUs it fuses kernels and picks layouts
    graph_optimizer: bool = True
    #: least minutes between two checkpoints of a fold's model; 0 = after every epoch
    checkpoint_minutes: float = 0.0
    threads: int = 0

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; use one of {', '.join(BACKENDS)}")
        if self.channel_adapter not in ("select", "stem"):
            raise ValueError(
                f"channel_adapter must be select or stem, not {self.channel_adapter!r}"
            )
        if self.channel_adapter == "stem":
            self.input_channels = None
        if self.mixed_precision not in (False, True, "float16", "bfloat16"):
            raise ValueError(
                f"mixed_precision must be false, true, float16 or bfloat16, not {self.mixed_precision!r}"
            )
        if self.jit_compile is None:
            self.jit_compile = self.backend == "jax"
        if self.backend == "tensorflow" and self.jit_compile and self.deterministic:
            raise ValueError(
                "jit_compile (XLA) cannot run with deterministic ops (TensorFlow has no deterministic XLA; "
                "Keras would silently train without XLA): set training.deterministic: false to use XLA, "
                "or jit_compile: false"
            )

    #: settings that change how long a job takes or how it resumes, never what it outputs
    NOT_OUTPUTS = ("checkpoint_minutes", "threads")

    def output_settings(self) -> dict:
        """What changes a job's outputs (a rule's ``params``): every setting but :data:`NOT_OUTPUTS`.
        Per network, so that changing one network's settings reruns only its jobs."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.NOT_OUTPUTS
        }

    @classmethod
    def from_config(cls, training: dict, network: str, threads: int = 0) -> "TrainSettings":
        """Settings from the ``training:`` config section, with ``per_network.<network>`` overrides."""
        known = {f.name for f in fields(cls)} - {"network", "fold_scheme", "threads"}
        values = {k: v for k, v in training.items() if k not in SECTION_KEYS}
        overrides = (training.get("per_network") or {}).get(network, {})
        for where, given in (("training", values), (f"training.per_network.{network}", overrides)):
            unknown = sorted(set(given) - known)
            if unknown:
                raise ValueError(
                    f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
                )
        values.update(overrides)
        values["fold_scheme"] = (training.get("folds") or {}).get("scheme", "nsc")
        settings = cls(**values, network=network, threads=threads)
        if settings.input_size is None:
            settings.input_size = models.network(network).default_size
        return settings


def mixed_policy(settings: TrainSettings) -> str:
    """The Keras dtype policy of the settings' ``mixed_precision``."""
    return {
        False: "float32",
        True: "mixed_float16",
        "float16": "mixed_float16",
        "bfloat16": "mixed_bfloat16",
    }[settings.mixed_precision]


def use_backend(backend: str, deterministic: bool = True) -> None:
    """Make Keras run on ``backend`` (``KERAS_BACKEND``), before Keras is first imported; refuses
    when Keras is already loaded with another backend (a process has one backend for good).
    On JAX, ``deterministic`` asks XLA for deterministic GPU kernels (``XLA_FLAGS``)."""
    import sys

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        loaded = sys.modules["keras"].backend.backend()
        if loaded != backend:
            raise RuntimeError(
                f"Keras is already loaded with the {loaded} backend in this process; training.backend {backend} "
                f"needs a new process started with KERAS_BACKEND={backend}"
            )
        return
    os.environ["KERAS_BACKEND"] = backend
    if backend != "tensorflow":
        claim_cuda_device()  # TensorFlow claims its GPU in configure_tensorflow
    if backend == "jax":
        # like TensorFlow's memory growth: several jobs can share a GPU (JAX takes 75% by default)
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        if deterministic and "xla_gpu_deterministic_ops" not in os.environ.get("XLA_FLAGS", ""):
            os.environ["XLA_FLAGS"] = (
                os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true"
            ).strip()
    if backend == "torch" and deterministic:
        os.environ.setdefault(
            "CUBLAS_WORKSPACE_CONFIG", ":4096:8"
        )  # what deterministic cuBLAS needs


def configure_backend(settings: TrainSettings) -> None:
    """Seeds, determinism, threads, one GPU (claimed among several), mixed precision, on the
    settings' backend. Call before building models."""
    import keras

    if keras.backend.backend() != settings.backend:
        raise RuntimeError(
            f"training.backend is {settings.backend} but Keras runs on {keras.backend.backend()}: "
            f"start the job with KERAS_BACKEND={settings.backend} (cellmoa.train.training.use_backend)"
        )
    if allocation := slurm_allocation():
        log.info("SLURM allocation: %s", allocation)
    if settings.backend == "tensorflow":
        configure_tensorflow(settings)
        return
    keras.utils.set_random_seed(settings.seed)
    keras.mixed_precision.set_global_policy(mixed_policy(settings))
    if settings.backend == "torch":
        import torch

        if settings.threads:
            torch.set_num_threads(settings.threads)
        torch.use_deterministic_algorithms(settings.deterministic, warn_only=True)
        log.info(
            "PyTorch %s; CUDA devices: %d (CUDA_VISIBLE_DEVICES=%s)",
            torch.__version__,
            torch.cuda.device_count(),
            os.environ.get("CUDA_VISIBLE_DEVICES"),
        )
    else:
        import jax

        log.info(
            "JAX %s; devices: %s (CUDA_VISIBLE_DEVICES=%s)",
            jax.__version__,
            jax.devices(),
            os.environ.get("CUDA_VISIBLE_DEVICES"),
        )


def configure_tensorflow(settings: TrainSettings) -> None:
    """Seeds, determinism, threads, one GPU (claimed among several), GPU memory growth, mixed
    precision. Call before building models."""
    import keras
    import tensorflow as tf

    if settings.threads:
        tf.config.threading.set_intra_op_parallelism_threads(settings.threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, settings.threads))
    for gpu in use_one_gpu(tf):
        tf.config.experimental.set_memory_growth(gpu, True)
    if not settings.graph_optimizer:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    keras.utils.set_random_seed(settings.seed)
    if settings.deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        from tensorflow.python.framework.config import disable_op_determinism

        disable_op_determinism()
    keras.mixed_precision.set_global_policy(mixed_policy(settings))
    log.info(
        "TensorFlow %s; GPUs used: %s (CUDA_VISIBLE_DEVICES=%s)",
        tf.__version__,
        [d.name for d in tf.config.get_visible_devices("GPU")],
        os.environ.get("CUDA_VISIBLE_DEVICES"),
    )


def _optimizer(settings: TrainSettings):
    import keras

    if settings.optimizer == "sgd":
        return keras.optimizers.SGD(settings.learning_rate, momentum=settings.momentum)
    if settings.optimizer == "adam":
        return keras.optimizers.Adam(settings.learning_rate)
    raise ValueError(f"unknown optimizer {settings.optimizer!r}; use 'sgd' or 'adam'")


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Balanced class weights n / (k * n_c) over the classes present."""
    counts = np.bincount(labels, minlength=n_classes)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return {i: float(w) for i, w in enumerate(weights)}


@dataclass(frozen=True)
class FoldOutputs:
    """Where one fold's results go (the train rule's outputs) and its checkpoint folder; ``model``
    None = the trained model is not kept (``training.fold_models: false``)."""

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
        return self.model.get_weights(), [np.array(v) for v in self.model.optimizer.variables]

    def _set_state(self, weights, optimizer_values) -> None:
        self.model.set_weights(weights)
        variables = self.model.optimizer.variables
        if len(variables) != len(optimizer_values):
            raise ValueError(
                f"the checkpoint's optimizer has {len(optimizer_values)} variables, this model's {len(variables)}: "
                "it was written with other settings; delete the checkpoint folder to start the fold anew"
            )
        for variable, value in zip(variables, optimizer_values):
            variable.assign(value)

    def _start(self, checkpoint: Checkpoint, held_out: str) -> int:
        """Put the model in the state the fold starts (or resumes) from; returns the finished epochs."""
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
        """Train the fold that holds out ``held_out``, save its model, predict its held-out
        crops, embed every crop; returns the predictions table. The checkpoint folder is removed
        afterwards unless ``keep_checkpoint`` (a multi-fold job removes them when all are done)."""
        import keras

        settings, metadata = self.settings, self.metadata
        fold = select_fold(metadata, held_out, settings.fold_scheme)
        made_with = json.dumps(
            {"held_out": held_out, **self.settings.output_settings()}, sort_keys=True, default=str
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
        class_index = {c: i for i, c in enumerate(fold.classes)}
        train_labels = np.array(
            [class_index[m] for m in metadata["moa"].iloc[fold.train_index]], np.int64
        )
        summary = fold.summary(metadata)
        summary["settings"] = asdict(settings)
        write_text(outputs.fold, json.dumps(summary, indent=2) + "\n")
        log.info(
            "fold %s (%s): %d training crops, %d held-out crops, classes %s",
            held_out,
            fold.scheme,
            len(fold.train_index),
            len(fold.test_index),
            fold.classes,
        )
        done = self._start(checkpoint, held_out)
        callbacks = [checkpoint.callback()]
        if settings.lr_decay_epochs:
            every, factor, base = (
                settings.lr_decay_epochs,
                settings.lr_decay_factor,
                settings.learning_rate,
            )
            callbacks.append(
                keras.callbacks.LearningRateScheduler(
                    lambda epoch: base * factor ** (epoch // every)
                )
            )
        if done < settings.epochs:
            # one pipeline through the epochs still to run; epoch e feeds the same batches whether
            # the run started at 0 or resumed at e, so a resumed fold ends with the weights of an
            # uninterrupted one
            weights = (
                class_weights(train_labels, len(fold.classes)) if settings.class_weights else None
            )
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
                callbacks=callbacks,
                shuffle=False,  # the input pipeline shuffles (seeded)
                verbose=0,
            )
        if outputs.model is not None:
            with atomic_path(outputs.model) as tmp:
                self.model.save(tmp)
        predictions = predict_crops(
            self.model, self.tensors, metadata, fold.test_index, fold.classes, settings
        )
        predictions.insert(0, "Metadata_Fold", held_out)
        predictions.insert(0, "Metadata_Network", settings.network)
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
        write_tsv(checkpoint.history(), outputs.history)
        if keep_checkpoint:
            checkpoint.keep_results(results)  # a rerun after a kill restores this fold untrained
        else:
            shutil.rmtree(checkpoint.folder, ignore_errors=True)
        return predictions


def train_folds(
    tensors: Path,
    folds: dict[str, FoldOutputs],
    settings: TrainSettings,
    imagenet_file: Path | None = None,
) -> dict[str, pd.DataFrame]:
    """Train the folds (held-out value -> outputs) one after the other in this process (see
    :class:`FoldTrainer`). Each fold's checkpoint is kept until every fold is done, so a job
    killed at any moment resumes where it stopped, finished folds included."""
    trainer = FoldTrainer(tensors, settings, imagenet_file)
    results = {}
    for k, (held_out, outputs) in enumerate(folds.items(), 1):
        log.info("fold %d of %d: %s", k, len(folds), held_out)
        results[held_out] = trainer.train(held_out, outputs, keep_checkpoint=len(folds) > 1)
    for outputs in folds.values():
        shutil.rmtree(outputs.checkpoint_dir, ignore_errors=True)
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
    """Train on one fold's training crops, save the model, predict the held-out crops (see
    :class:`FoldTrainer`). Returns the predictions table."""
    outputs = FoldOutputs(
        Path(model_path),
        Path(history_path),
        Path(predictions_path),
        Path(fold_path),
        Path(checkpoint_dir),
        Path(embeddings_path) if embeddings_path else None,
    )
    return FoldTrainer(tensors, settings, imagenet_file).train(held_out, outputs)


def write_embeddings(
    embedder,
    tensors: Path,
    settings: TrainSettings,
    path: Path,
    fold: str,
    rows: np.ndarray | None = None,
) -> None:
    """Penultimate-layer (global-average-pooled) features of every crop of the tensors file (or
    of the crops where the boolean ``rows`` is true; the others are NaN), as ``/embeddings``
    (N, D) float16 aligned row by row with the tensors' ``/images``; ``embedder`` is
    :func:`cellmoa.train.models.embedding_model` of the trained model."""
    with h5py.File(tensors, "r") as f:
        n = f["images"].shape[0]
    index = np.arange(n) if rows is None else np.flatnonzero(rows)
    ds = make_dataset(tensors, index, None, settings, training=False)
    steps = steps_per_epoch(len(index), settings.batch_size)
    embedded = (
        embedder.predict(ds, steps=steps, verbose=0)
        if len(index)
        else np.zeros((0, embedder.output_shape[-1]))
    )
    values = np.full((n, embedded.shape[1]), np.nan, np.float32)
    values[index] = embedded
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as out:
        out.create_dataset("embeddings", data=values.astype(np.float16))
        out.attrs["network"] = settings.network
        out.attrs["fold"] = fold
        out.attrs["tensors"] = str(tensors)
    log.info("wrote %d x %d embeddings to %s", values.shape[0], values.shape[1], path)


def predict_crops(model, tensors, metadata, indices, classes, settings) -> pd.DataFrame:
    """Per-crop class probabilities with the crops' metadata (columns prefixed ``Metadata_``)."""
    ds = make_dataset(tensors, indices, None, settings, training=False)
    steps = steps_per_epoch(len(indices), settings.batch_size)
    probs = (
        model.predict(ds, steps=steps, verbose=0) if len(indices) else np.zeros((0, len(classes)))
    )
    if probs.shape[1] == 1 and len(classes) == 2:  # sigmoid head: the probability of classes[1]
        probs = np.concatenate([1.0 - probs, probs], axis=1)
    table = metadata.iloc[indices].reset_index(drop=True)
    table.columns = [
        f"Metadata_{c.title().replace('_', '')}" if c != "moa" else "Metadata_MoA"
        for c in table.columns
    ]
    for i, c in enumerate(classes):
        table[f"prob_{c}"] = probs[:, i].astype(np.float64)
    table["predicted_moa"] = [classes[i] for i in probs.argmax(axis=1)] if len(indices) else []
    return table
