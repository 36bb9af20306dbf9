"""Per-fold training of one network and prediction of the held-out compound's crops.

A fold holds out one compound (leave-one-compound-out, "nsc"); with "nscb" the held-out
compound's batches (BBBC021: weeks) are left out of training too; with "cell_line" (BBBC014) a
fold holds out one cell line and trains on the other(s). The input pipeline is tf.data:
crops are read one by one from the HDF5 tensors (per-sample reads; h5py reads by index list are
~60x slower), resized to the network's input, augmented with stateless random ops (a seeded run
is repeatable), mapped from z-scores to pixel values and passed through the network's own
``preprocess_input``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from cellmoa import models
from cellmoa.gpus import use_one_gpu
from cellmoa.datasets.base import FOLD_COLUMNS
from cellmoa.tensors import read_metadata

log = logging.getLogger(__name__)


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
    fold_scheme: str = "nsc"
    seed: int = 0
    mixed_precision: bool = False
    jit_compile: bool = False
    #: TensorFlow's deterministic ops: a seeded fold gives the same predictions every run (and
    #: after a resume); off trades that for speed (cuDNN's fastest kernels) and is needed by XLA
    deterministic: bool = True
    threads: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.jit_compile and self.deterministic:
            raise ValueError(
                "jit_compile (XLA) cannot run with deterministic ops (TensorFlow has no deterministic XLA; "
                "Keras would silently train without XLA): set training.deterministic: false to use XLA, "
                "or jit_compile: false"
            )

    @classmethod
    def from_config(cls, training: dict, network: str, threads: int = 0) -> "TrainSettings":
        """Settings from the ``training:`` config section, with ``per_network.<network>`` overrides."""
        values = {
            k: v for k, v in training.items() if k not in ("networks", "per_network", "folds", "imagenet_weights_url")
        }
        values.update((training.get("per_network") or {}).get(network, {}))
        values["fold_scheme"] = (training.get("folds") or {}).get("scheme", "nsc")
        known = set(cls.__dataclass_fields__)
        extra = {k: v for k, v in values.items() if k not in known}
        settings = cls(**{k: v for k, v in values.items() if k in known}, network=network, threads=threads)
        settings.extra = extra
        if settings.input_size is None:
            settings.input_size = models.network(network).default_size
        return settings


@dataclass
class Fold:
    held_out: str
    scheme: str
    classes: list[str]
    train_index: np.ndarray
    test_index: np.ndarray
    excluded_batches: list[str]

    @property
    def column(self) -> str:
        return FOLD_COLUMNS[self.scheme]

    def summary(self, metadata: pd.DataFrame) -> dict:
        train = metadata.iloc[self.train_index]
        return {
            "held_out": self.held_out,
            "held_out_column": self.column,
            **({"held_out_compound": self.held_out} if self.column == "compound" else {}),
            "scheme": self.scheme,
            "classes": self.classes,
            "excluded_batches": self.excluded_batches,
            "n_train_crops": int(len(self.train_index)),
            "n_test_crops": int(len(self.test_index)),
            "train_compounds": sorted(train["compound"].unique().tolist()),
            "train_cell_lines": sorted(train["cell_line"].unique().tolist()),
            "train_crops_per_class": {k: int(v) for k, v in train["moa"].value_counts().sort_index().items()},
        }


def select_fold(metadata: pd.DataFrame, held_out: str, scheme: str = "nsc") -> Fold:
    """Training and test rows of the fold that holds out ``held_out`` (a compound for nsc and
    nscb, a cell line for cell_line).

    Classes are all MoAs present in the tensors (so every fold has the same output layer).
    """
    if scheme not in FOLD_COLUMNS:
        raise ValueError(f"unknown fold scheme {scheme!r}; use one of {', '.join(FOLD_COLUMNS)}")
    column = FOLD_COLUMNS[scheme]
    labelled = metadata["moa"] != ""
    classes = sorted(metadata.loc[labelled, "moa"].unique().tolist())
    is_test = (metadata[column] == held_out).to_numpy()
    if not is_test.any():
        known = ", ".join(sorted(metadata[column].unique()))
        raise ValueError(f"fold {column.replace('_', ' ')} {held_out!r} has no crops in the tensors; there: {known}")
    train = labelled.to_numpy() & ~is_test
    excluded: list[str] = []
    if scheme == "nscb":
        excluded = sorted(metadata.loc[is_test, "batch"].unique().tolist())
        train &= ~metadata["batch"].isin(excluded).to_numpy()
    if not train.any():
        raise ValueError(f"fold {held_out!r} ({scheme}) leaves no training crops")
    trained = set(metadata.loc[train, "moa"])
    for held_moa in sorted(set(metadata.loc[is_test, "moa"]) - trained):
        log.warning("fold %s: no training crops of its MoA %r are left; it cannot be predicted right", held_out, held_moa)
    return Fold(held_out, scheme, classes, np.flatnonzero(train), np.flatnonzero(is_test), excluded)


def run_workload(metadata: pd.DataFrame, held_out: list[str], scheme: str, epochs: int) -> dict[str, int]:
    """Images one network pushes through in a run of these folds: ``train_images`` (each fold's
    training crops, every epoch) and ``inference_images`` (each fold predicts its held-out crops
    and embeds every crop). ``metadata`` has one row per crop (as in the tensors)."""
    folds = [select_fold(metadata, h, scheme) for h in held_out]
    return {
        "folds": len(folds),
        "crops": len(metadata),
        "train_images": epochs * sum(len(f.train_index) for f in folds),
        "inference_images": sum(len(f.test_index) for f in folds) + len(folds) * len(metadata),
    }


class _CropReader:
    """Reads crops from an HDF5 file, opened lazily in the reading thread's process, one by one
    (h5py reads by index list are ~60x slower than the same samples read one at a time)."""

    def __init__(self, path: Path):
        self.path = str(path)
        self._file = None
        self._images = None

    def __call__(self, indices) -> np.ndarray:
        if self._images is None:
            self._file = h5py.File(self.path, "r")
            self._images = self._file["images"]
        return np.stack([self._images[int(i)] for i in indices])

    def layout(self) -> tuple[tuple[int, ...], np.dtype, list[str]]:
        """(shape of one crop, dtype, channel names) of the images, in one opening of the file."""
        with h5py.File(self.path, "r") as f:
            images = f["images"]
            return tuple(images.shape[1:]), np.dtype(images.dtype), [str(c) for c in f.attrs.get("channels", [])]


def channel_selection(input_channels, stored: list[str]) -> list[int] | None:
    """Indices of the stored channels that feed the network's 3 inputs (-1 = a zero channel), or
    None to feed the stored channels as they are."""
    if input_channels is None:
        return None
    if len(input_channels) != 3:
        raise ValueError(f"input_channels must name 3 channels (or null for a zero channel); got {input_channels}")
    unknown = [c for c in input_channels if c is not None and c not in stored]
    if unknown:
        raise ValueError(f"input channel(s) {', '.join(unknown)} are not in the tensors' channels {', '.join(stored)}")
    return [-1 if c is None else stored.index(c) for c in input_channels]


#: The paper's augmentations: one of the 8 rotations/flips ("dihedral"); each with probability
#: 0.5: per-channel intensity jitter +-25% ("intensity"), 3 x 3 blur ("blur"), Gaussian noise of
#: sd 0.1 in z units ("noise").
AUGMENTATIONS = ("dihedral", "intensity", "blur", "noise")


def augmentations(setting) -> tuple[str, ...]:
    """The augmentations a config ``augment`` value selects (True = all, False = none, or a list)."""
    if setting is True:
        return AUGMENTATIONS
    if not setting:
        return ()
    unknown = sorted(set(setting) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"unknown augmentation(s) {', '.join(unknown)}; choose from {', '.join(AUGMENTATIONS)}")
    return tuple(a for a in AUGMENTATIONS if a in setting)


def box_blur(images):
    """3 x 3 mean filter of a batch (N, H, W, C), edges mirrored: shifted sums, ~7x faster on the
    CPU than ``tf.nn.avg_pool2d``."""
    import tensorflow as tf

    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    return (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / 9.0


def augment_batch(images, seed, which=AUGMENTATIONS):
    """Apply the augmentations in ``which`` to a batch of square (N, S, S, C) images, each image
    drawing its own transform. Stateless: the same ``seed`` (2 integers) gives the same result.

    The 8 rotations/flips are every combination of a transpose, a left-right and an up-down flip,
    each with probability 0.5, so each of the 8 is equally likely. Every other augmentation is
    applied to an image with probability 0.5.
    """
    import tensorflow as tf

    n = tf.shape(images)[0]
    streams = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3)
    # one 0/1 coin per image and augmentation, as (N, 1, 1, 1) weights: x + coin * (f(x) - x)
    # blends cost a third of a broadcasting tf.where on the CPU
    coins = tf.cast(tf.random.stateless_uniform([n, 6], streams[0]) < 0.5, images.dtype)

    def apply(k, transformed, original):
        return original + tf.reshape(coins[:, k], [n, 1, 1, 1]) * (transformed - original)

    if "dihedral" in which:
        images = apply(0, tf.transpose(images, [0, 2, 1, 3]), images)
        images = apply(1, tf.reverse(images, [2]), images)
        images = apply(2, tf.reverse(images, [1]), images)
    if "intensity" in which:
        jitter = tf.random.stateless_uniform([n, 1, 1, tf.shape(images)[-1]], streams[1], 0.75, 1.25)
        images = apply(3, images * jitter, images)
    if "blur" in which:
        images = apply(4, box_blur(images), images)
    if "noise" in which:
        noise = tf.random.stateless_normal(tf.shape(images), streams[2], stddev=0.1)
        images = apply(5, images + noise, images)
    return images


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which an epoch feeds ``n`` training crops: a permutation seeded by (seed, epoch),
    so a run resumed at any epoch feeds exactly what an uninterrupted run would have."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def make_dataset(
    tensors: Path,
    indices: np.ndarray,
    labels: np.ndarray | None,
    settings: TrainSettings,
    training: bool,
    with_index: bool = False,
    epochs: range = range(1),
):
    """A batched tf.data pipeline over ``indices`` of the tensors file.

    Yields ``(images, labels)`` (or ``images`` when ``labels`` is None); with ``with_index`` the
    crop indices are appended, so tests can see exactly what is fed. A training pipeline runs
    through ``epochs`` one after the other (``steps_per_epoch`` batches each), every epoch in its
    own order (:func:`epoch_order`) with augmentation seeded by (seed, absolute batch number): what
    epoch ``e`` feeds does not depend on where the run started. Evaluation keeps the order of ``indices``.
    """
    import tensorflow as tf

    reader = _CropReader(tensors)
    shape, dtype, channels = reader.layout()
    select = channel_selection(settings.input_channels, channels)
    size = int(settings.input_size)
    preprocess = models.preprocess_fn(settings.network)
    which = augmentations(settings.augment) if training else ()
    indices = np.asarray(indices, np.int64)
    label_arr = np.zeros(len(indices), np.int64) if labels is None else np.asarray(labels, np.int64)
    batch = settings.batch_size
    if training:
        steps = steps_per_epoch(len(indices), batch)
        orders = np.array([epoch_order(len(indices), settings.seed, e) for e in epochs], np.int64)
        orders = orders.reshape(len(epochs), len(indices))
        fed = tf.data.Dataset.from_tensor_slices((indices[orders], label_arr[orders])).flat_map(
            lambda idx, lab: tf.data.Dataset.from_tensor_slices((idx, lab)).batch(batch)
        )
        # augmentation seeds: (seed, absolute batch number), the same for an epoch wherever the run started
        first = np.int64(epochs.start * steps)
        seeds = tf.data.Dataset.range(first, first + len(epochs) * steps).map(
            lambda b: tf.stack([tf.constant(settings.seed + 1, tf.int64), b])
        )
        ds = tf.data.Dataset.zip(fed, seeds)
    else:
        ds = tf.data.Dataset.zip(
            tf.data.Dataset.from_tensor_slices((indices, label_arr)).batch(batch),
            tf.data.Dataset.from_tensors(tf.zeros([2], tf.int64)).repeat(),
        )

    def load(pair, seed):
        index, label = pair
        images = tf.numpy_function(reader, [index], tf.as_dtype(dtype), stateful=False)
        images.set_shape((None, *shape))
        images = tf.cast(images, tf.float32)
        if dtype == np.uint8:
            # 8-bit tensors (the paper's scaling) are pixels already: as z-like values they pass
            # the same augmentations and come back unchanged by 127.5 + pixel_scale * z
            images = (images - 127.5) / settings.pixel_scale
        images = tf.image.resize(images, (size, size), method="bilinear")
        if which:
            images = augment_batch(images, seed, which)
        pixels = tf.clip_by_value(127.5 + settings.pixel_scale * images, 0.0, 255.0)
        if select is not None:
            # a zero channel is black (0), as the paper stacked BBBC014's two channels with zeros
            zeros = tf.zeros_like(pixels[..., :1])
            pixels = tf.concat([zeros if i < 0 else pixels[..., i : i + 1] for i in select], axis=-1)
        if pixels.shape[-1] != 3:
            raise ValueError(
                f"networks take 3 channels; the tensors have {pixels.shape[-1]} "
                "(map them with the dataset's network_channels / training input_channels)"
            )
        pixels = preprocess(pixels)
        out = (pixels,) if labels is None else (pixels, label)
        if with_index:
            out = out + (index,)
        return out if len(out) > 1 else out[0]

    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


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
    keras.utils.set_random_seed(settings.seed)
    if settings.deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        from tensorflow.python.framework.config import disable_op_determinism

        disable_op_determinism()
    keras.mixed_precision.set_global_policy("mixed_float16" if settings.mixed_precision else "float32")
    log.info("TensorFlow %s; GPUs used: %s (CUDA_VISIBLE_DEVICES=%s)", tf.__version__,
             [d.name for d in tf.config.get_visible_devices("GPU")], os.environ.get("CUDA_VISIBLE_DEVICES"))


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
    """Train on the fold's training crops, save the model, predict the held-out crops.

    An interrupted run resumes from the last finished epoch kept in ``checkpoint_dir``.
    Returns the predictions table.
    """
    import keras

    configure_tensorflow(settings)
    metadata = read_metadata(tensors)
    fold = select_fold(metadata, held_out, settings.fold_scheme)
    class_index = {c: i for i, c in enumerate(fold.classes)}
    train_labels = np.array([class_index[m] for m in metadata["moa"].iloc[fold.train_index]], np.int64)
    summary = fold.summary(metadata)
    summary["settings"] = asdict(settings)
    Path(fold_path).parent.mkdir(parents=True, exist_ok=True)
    Path(fold_path).write_text(json.dumps(summary, indent=2) + "\n")
    log.info("fold %s (%s): %d training crops, %d held-out crops, classes %s", held_out, fold.scheme,
             len(fold.train_index), len(fold.test_index), fold.classes)

    checkpoint = Checkpoint(Path(checkpoint_dir))
    model, done = checkpoint.restore()
    if model is None:
        model = models.build_classifier(
            settings.network, len(fold.classes), settings.input_size, settings.weights, settings.l2,
            settings.batchnorm_momentum, imagenet_file, head=settings.head,
        )
        model.compile(
            optimizer=_optimizer(settings),
            loss="binary_crossentropy" if settings.head == "sigmoid" else "sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=settings.jit_compile,
        )
    else:
        log.info("resuming from the checkpoint in %s after epoch %d of %d", checkpoint.folder, done, settings.epochs)
    callbacks = [checkpoint.callback()]
    if settings.lr_decay_epochs:
        every, factor, base = settings.lr_decay_epochs, settings.lr_decay_factor, settings.learning_rate
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch: base * factor ** (epoch // every)))
    # one pipeline through the epochs still to run; epoch e feeds the same batches whether the
    # run started at 0 or resumed at e, so a resumed fold ends with the weights of an uninterrupted one
    train_ds = make_dataset(
        tensors, fold.train_index, train_labels, settings, training=True, epochs=range(done, settings.epochs)
    )
    model.fit(
        train_ds,
        epochs=settings.epochs,
        initial_epoch=done,
        steps_per_epoch=steps_per_epoch(len(fold.train_index), settings.batch_size),
        class_weight=class_weights(train_labels, len(fold.classes)) if settings.class_weights else None,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline shuffles (seeded)
        verbose=0,
    )
    Path(model_path).parent.mkdir(parents=True, exist_ok=True)
    tmp_model = Path(model_path).with_name(f".{Path(model_path).stem}.tmp.keras")
    model.save(tmp_model)
    os.replace(tmp_model, model_path)

    predictions = predict_crops(model, tensors, metadata, fold.test_index, fold.classes, settings)
    predictions.insert(0, "Metadata_Fold", held_out)
    predictions.insert(0, "Metadata_Network", settings.network)
    write_tsv(predictions, predictions_path)
    if embeddings_path is not None:
        write_embeddings(model, tensors, settings, Path(embeddings_path), held_out)
    write_tsv(checkpoint.history(), history_path)
    shutil.rmtree(checkpoint.folder, ignore_errors=True)
    return predictions


class Checkpoint:
    """Per-epoch checkpoints that survive any kill: after every epoch the model (weights and
    optimizer state) is saved as ``model-epoch<N>.keras``, the history as ``history.tsv``, and only
    then ``state.json`` is replaced to point at them; every write goes to a temporary name first.
    A restart loads what ``state.json`` names, so a kill at any moment loses at most the epoch
    that was running.

    The folder is not a Snakemake output, so it survives a failed job (Snakemake deletes those).
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.state_path = self.folder / "state.json"

    def _state(self) -> dict | None:
        if not self.state_path.exists():
            return None
        return json.loads(self.state_path.read_text())

    def restore(self):
        """(model, finished epochs) from the checkpoint, or (None, 0) without one."""
        import keras

        state = self._state()
        if state is None:
            return None, 0
        model = keras.models.load_model(self.folder / state["model"])
        return model, int(state["epoch"])

    def history(self) -> pd.DataFrame:
        state = self._state()
        if state is None or not state.get("history"):
            return pd.DataFrame(columns=["epoch"])
        return pd.DataFrame(state["history"])

    def save(self, model, epoch: int, logs: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        previous = self._state()
        history = [row for row in (previous or {}).get("history", []) if row["epoch"] < epoch]
        history.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        name = f"model-epoch{epoch + 1}.keras"
        tmp = self.folder / f".{name}.tmp.keras"
        model.save(tmp)
        os.replace(tmp, self.folder / name)
        state_tmp = self.folder / ".state.json.tmp"
        state_tmp.write_text(json.dumps({"epoch": epoch + 1, "model": name, "history": history}))
        os.replace(state_tmp, self.state_path)
        history_tmp = self.folder / ".history.tsv.tmp"
        pd.DataFrame(history).to_csv(history_tmp, sep="\t", index=False)
        os.replace(history_tmp, self.folder / "history.tsv")  # for people watching the job
        if previous and previous["model"] != name:
            (self.folder / previous["model"]).unlink(missing_ok=True)

    def callback(self):
        import keras

        checkpoint = self

        class SaveEachEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = dict(logs or {})
                # the learning rate the epoch ran with (LearningRateScheduler also logs it)
                logs.setdefault("learning_rate", float(np.asarray(self.model.optimizer.learning_rate)))
                checkpoint.save(self.model, epoch, logs)
                shown = ", ".join(f"{k}={v:.4g}" for k, v in logs.items())
                log.info("epoch %d/%d: %s", epoch + 1, self.params.get("epochs", 0), shown)

        return SaveEachEpoch()


def write_embeddings(model, tensors: Path, settings: TrainSettings, path: Path, fold: str) -> None:
    """Penultimate-layer (global-average-pooled) features of every crop of the tensors file, as
    ``/embeddings`` (N, D) float16 aligned row by row with the tensors' ``/images``."""
    with h5py.File(tensors, "r") as f:
        n = f["images"].shape[0]
    features = models.embedding_model(model)
    ds = make_dataset(tensors, np.arange(n), None, settings, training=False)
    values = features.predict(ds, verbose=0) if n else np.zeros((0, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as out:
        out.create_dataset("embeddings", data=values.astype(np.float16))
        out.attrs["network"] = settings.network
        out.attrs["fold"] = fold
        out.attrs["tensors"] = str(tensors)
    os.replace(tmp, path)
    log.info("wrote %d x %d embeddings to %s", values.shape[0], values.shape[1], path)


def predict_crops(model, tensors, metadata, indices, classes, settings) -> pd.DataFrame:
    """Per-crop class probabilities with the crops' metadata (columns prefixed ``Metadata_``)."""
    ds = make_dataset(tensors, indices, None, settings, training=False)
    probs = model.predict(ds, verbose=0) if len(indices) else np.zeros((0, len(classes)))
    if probs.shape[1] == 1 and len(classes) == 2:  # sigmoid head: the probability of classes[1]
        probs = np.concatenate([1.0 - probs, probs], axis=1)
    table = metadata.iloc[indices].reset_index(drop=True)
    table.columns = [f"Metadata_{c.title().replace('_', '')}" if c != "moa" else "Metadata_MoA" for c in table.columns]
    for i, c in enumerate(classes):
        table[f"prob_{c}"] = probs[:, i].astype(np.float64)
    table["predicted_moa"] = [classes[i] for i in probs.argmax(axis=1)] if len(indices) else []
    return table


def write_tsv(frame: pd.DataFrame, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, sep="\t", index=False)
    os.replace(tmp, path)
