import json

import h5py
import numpy as np
import pandas as pd
import pytest

from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.train.augment import augment_batch, augment_batch_numpy
from cellmoa.train.folds import run_workload, select_fold
from cellmoa.train.inputs import steps_per_epoch
from cellmoa.train.numpy_pipeline import resize_bilinear
from cellmoa.train.pipeline import make_dataset
from cellmoa.train.settings import TrainSettings
from cellmoa.train.training import (
    FoldOutputs,
    FoldTrainer,
    class_weights,
    train_fold,
    train_folds,
)

#: the implementations of the input pipeline, (backend, training.inputs): streamed by tf.data
#: (TensorFlow backend) or numpy batches from reader threads (JAX, PyTorch), or gathered from the
#: memory cache (tf.data or a generator); the pipeline tests run on each
PIPELINES = pytest.mark.parametrize(
    "backend, inputs",
    [("tensorflow", "stream"), ("jax", "stream"), ("tensorflow", "memory"), ("jax", "memory")],
)


def _np(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def small_settings(**kw):
    values = dict(
        network="ResNet50",
        input_size=32,
        weights=None,
        epochs=1,
        batch_size=8,
        optimizer="adam",
        learning_rate=1e-3,
        seed=5,
    )
    values.update(kw)
    return TrainSettings(**values)


@pytest.mark.unit
def test_fold_holds_out_the_compound(tiny_tensors):
    meta = read_crop_metadata(tiny_tensors)
    fold = select_fold(meta, "nocodazole", "nsc")
    assert "nocodazole" not in set(meta.iloc[fold.train_index]["compound"])
    assert set(meta.iloc[fold.test_index]["compound"]) == {"nocodazole"}
    treatments = meta.is_control == 0
    assert len(fold.train_index) + len(fold.test_index) == treatments.sum()
    # the tensors hold control crops (for normalisation): never trained on, never a class, never
    # predicted
    assert (meta.is_control == 1).any()
    assert not meta.iloc[np.concatenate([fold.train_index, fold.test_index])]["is_control"].any()
    assert fold.classes == ["Actin disruptors", "Microtubule destabilizers"]


@pytest.mark.unit
def test_nscb_also_holds_out_the_batch(tiny_tensors):
    meta = read_crop_metadata(tiny_tensors)
    fold = select_fold(meta, "nocodazole", "nscb")
    held_batches = set(meta.loc[meta.compound == "nocodazole", "batch"])
    assert fold.excluded_batches == sorted(held_batches)
    assert not set(meta.iloc[fold.train_index]["batch"]) & held_batches
    assert len(fold.train_index) > 0


@pytest.mark.unit
def test_unknown_fold_compound_and_scheme(tiny_tensors):
    meta = read_crop_metadata(tiny_tensors)
    with pytest.raises(ValueError, match="'taxol' has no crops"):
        select_fold(meta, "taxol")
    with pytest.raises(ValueError, match="unknown fold scheme"):
        select_fold(meta, "nocodazole", "loo")


def _fed_by_epoch(ds, n_crops, batch_size, n_epochs):
    """The crop indices a training pipeline feeds, split into its epochs (and the first images)."""
    batches = list(ds)
    steps = steps_per_epoch(n_crops, batch_size)
    assert len(batches) == steps * n_epochs
    epochs = [
        np.concatenate([_np(b[-1]) for b in batches[e * steps : (e + 1) * steps]])
        for e in range(n_epochs)
    ]
    return epochs, batches


@pytest.mark.unit
@PIPELINES
def test_what_is_fed_never_contains_the_held_out_compound(tiny_tensors, backend, inputs):
    meta = read_crop_metadata(tiny_tensors)
    fold = select_fold(meta, "vincristine", "nsc")
    labels = np.zeros(len(fold.train_index), np.int64)
    ds = make_dataset(
        tiny_tensors,
        fold.train_index,
        labels,
        small_settings(backend=backend, inputs=inputs),
        training=True,
        with_index=True,
        epochs=range(2),
    )
    fed, batches = _fed_by_epoch(ds, len(fold.train_index), 8, 2)
    for epoch in fed:  # two epochs: reshuffled, still the same crops
        assert sorted(epoch) == sorted(fold.train_index)
    assert not np.array_equal(fed[0], fed[1]), "the order is reshuffled every epoch"
    assert "vincristine" not in set(meta.iloc[np.concatenate(fed)]["compound"])
    images, _, _ = batches[0]
    assert images.shape == (8, 32, 32, 3)


@pytest.mark.unit
@PIPELINES
def test_an_epoch_feeds_the_same_whatever_epoch_the_run_started_at(tiny_tensors, backend, inputs):
    """What a resumed run feeds in epoch 2 (order and augmented pixels) is what an uninterrupted
    run feeds in its epoch 2."""
    meta = read_crop_metadata(tiny_tensors)
    fold = select_fold(meta, "nocodazole", "nsc")
    n = len(fold.train_index)
    labels = np.arange(n) % 2
    settings = small_settings(batch_size=5, backend=backend, inputs=inputs)
    _, from_start = _fed_by_epoch(
        make_dataset(
            tiny_tensors,
            fold.train_index,
            labels,
            settings,
            training=True,
            with_index=True,
            epochs=range(3),
        ),
        n,
        5,
        3,
    )
    _, resumed = _fed_by_epoch(
        make_dataset(
            tiny_tensors,
            fold.train_index,
            labels,
            settings,
            training=True,
            with_index=True,
            epochs=range(2, 3),
        ),
        n,
        5,
        1,
    )
    steps = steps_per_epoch(n, 5)
    assert len(resumed) == steps
    for a, b in zip(from_start[2 * steps :], resumed):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(_np(x), _np(y))
    first = np.concatenate([_np(b[-1]) for b in from_start[:steps]])
    assert not np.array_equal(first, np.concatenate([_np(b[-1]) for b in resumed]))
    # augmented: a batch is not the plain crops
    plain = list(
        make_dataset(
            tiny_tensors,
            _np(resumed[0][-1]),
            None,
            small_settings(batch_size=5, backend=backend, inputs=inputs),
            training=False,
        )
    )
    first_plain = plain[0][0] if isinstance(plain[0], tuple) else plain[0]
    assert not np.allclose(_np(first_plain), _np(resumed[0][0]))


@pytest.mark.unit
@PIPELINES
def test_nscb_feeds_neither_the_compound_nor_its_batches(tiny_tensors, backend, inputs):
    meta = read_crop_metadata(tiny_tensors)
    fold = select_fold(meta, "latrunculin B", "nscb")
    labels = np.zeros(len(fold.train_index), np.int64)
    ds = make_dataset(
        tiny_tensors,
        fold.train_index,
        labels,
        small_settings(backend=backend, inputs=inputs),
        training=True,
        with_index=True,
    )
    fed = meta.iloc[np.concatenate([_np(idx) for _, _, idx in ds])]
    held_batches = set(meta.loc[meta.compound == "latrunculin B", "batch"])
    assert len(fed) == len(fold.train_index) > 0
    assert "latrunculin B" not in set(fed["compound"]) and not set(fed["batch"]) & held_batches


def _augment_tf(images, seed, which=("dihedral", "intensity", "blur", "noise")):
    import tensorflow as tf

    return augment_batch(tf.constant(images), tf.constant(seed, tf.int64), which).numpy()


#: augment(numpy batch, seed of 2 integers, which) -> numpy batch: tf.data's and the numpy
#: pipeline's
AUGMENTERS = pytest.mark.parametrize(
    "augment", [_augment_tf, augment_batch_numpy], ids=["tensorflow", "numpy"]
)


@pytest.mark.unit
@AUGMENTERS
def test_augmentation_is_seeded_and_per_image(augment):
    images = np.random.default_rng(2).normal(size=(6, 16, 16, 3)).astype(np.float32)
    a = augment(images, [7, 9])
    b = augment(images, [7, 9])
    np.testing.assert_array_equal(a, b)
    outs = {augment(images, [s, 0]).tobytes() for s in range(8)}
    assert len(outs) > 1
    # each image of a batch draws its own transform: the same image 16 times comes out several ways
    same = np.repeat(images[:1], 16, axis=0)
    assert len({img.tobytes() for img in augment(same, [3, 4])}) > 1
    np.testing.assert_array_equal(
        images, np.random.default_rng(2).normal(size=(6, 16, 16, 3)).astype(np.float32)
    )


def _dihedral(image):
    """The 8 rotations/flips of one (H, W, C) image."""
    out = []
    for k in range(4):
        rotated = np.rot90(image, k)
        out += [rotated, rotated[:, ::-1]]
    return out


@pytest.mark.unit
@AUGMENTERS
def test_dihedral_augmentation_gives_each_of_the_8_rotations_and_flips(augment):
    image = np.random.default_rng(0).normal(size=(12, 12, 3)).astype(np.float32)
    batch = np.repeat(image[None], 64, axis=0)
    seen = np.zeros(8, int)
    for seed in range(4):
        for out in augment(batch, [seed, 1], which=("dihedral",)):
            matches = [np.allclose(out, d, atol=1e-6) for d in _dihedral(image)]
            assert sum(matches) == 1, "not one of the 8 rotations/flips"
            seen[matches.index(True)] += 1
    assert (seen > 0).all(), seen  # 256 draws: every one of the 8 appears


@pytest.mark.unit
@AUGMENTERS
def test_intensity_blur_and_noise_change_what_they_should(augment):
    image = np.random.default_rng(1).uniform(1, 2, size=(10, 10, 3)).astype(np.float32)
    batch = np.repeat(image[None], 32, axis=0)
    seed = [5, 6]
    jittered = augment(batch, seed, which=("intensity",))
    ratio = jittered / image
    per_channel = ratio.reshape(32, -1, 3)
    np.testing.assert_allclose(
        per_channel, np.broadcast_to(per_channel[:, :1], per_channel.shape), rtol=1e-5
    )  # one factor per image and channel
    assert ratio.min() >= 0.75 - 1e-5 and ratio.max() <= 1.25 + 1e-5
    unchanged = np.isclose(ratio, 1.0).all(axis=(1, 2, 3))
    assert 0 < unchanged.sum() < 32, "applied to about half of the images"
    blurred = augment(batch, seed, which=("blur",))
    changed = ~np.isclose(blurred, image).all(axis=(1, 2, 3))
    assert 0 < changed.sum() < 32
    box = blurred[changed][0]
    np.testing.assert_allclose(box[4, 4], image[3:6, 3:6].mean(axis=(0, 1)), rtol=1e-5)
    noisy = augment(batch, seed, which=("noise",)) - image
    hit = ~np.isclose(noisy, 0).all(axis=(1, 2, 3))
    assert 0 < hit.sum() < 32
    assert 0.07 < noisy[hit].std() < 0.13
    # the edges are mirrored as in the TensorFlow pipeline
    np.testing.assert_allclose(
        box[0, 0], image[[0, 0, 1]][:, [0, 0, 1]].mean(axis=(0, 1)), rtol=1e-5
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    "shape, size",
    [((3, 96, 128, 3), 32), ((2, 20, 30, 3), 48), ((1, 32, 32, 2), 32), ((2, 7, 5, 1), 3)],
)
def test_the_numpy_resize_is_tensorflows_bilinear_resize(shape, size):
    """The numpy pipeline resizes as tf.image.resize(bilinear) does (down and up, non-square)."""
    import tensorflow as tf

    images = np.random.default_rng(4).normal(size=shape).astype(np.float32)
    expected = tf.image.resize(images, (size, size), method="bilinear").numpy()
    np.testing.assert_allclose(resize_bilinear(images, size), expected, atol=2e-5)


@pytest.mark.unit
def test_the_two_pipelines_feed_the_same_plain_crops(tiny_tensors):
    """Without augmentation (prediction) both pipelines give the same network inputs."""
    index = np.arange(11)
    tf_batches = list(make_dataset(tiny_tensors, index, None, small_settings(), training=False))
    np_batches = list(
        make_dataset(tiny_tensors, index, None, small_settings(backend="jax"), training=False)
    )
    assert [len(b[0]) for b in np_batches] == [8, 3]
    np.testing.assert_allclose(
        np.concatenate([b[0] for b in np_batches]),
        np.concatenate([b.numpy() for b in tf_batches]),
        atol=1e-3,
    )


@pytest.mark.unit
def test_balanced_class_weights():
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    assert w[0] == pytest.approx(4 / (2 * 3)) and w[1] == pytest.approx(4 / (2 * 1)) and w[2] == 0.0


@pytest.mark.unit
def test_settings_from_config_with_per_network_overrides():
    training = {
        "networks": ["ResNet50", "InceptionV3"],
        "folds": {"scheme": "nscb", "compounds": ["a"]},
        "epochs": 10,
        "per_network": {"InceptionV3": {"epochs": 12}},
    }
    assert TrainSettings.from_config(training, "ResNet50").epochs == 10
    incv3 = TrainSettings.from_config(training, "InceptionV3")
    assert incv3.epochs == 12 and incv3.input_size == 299 and incv3.fold_scheme == "nscb"


@pytest.mark.unit
def test_an_unknown_training_setting_is_refused_with_its_name():
    """A typo in training or in one network's overrides is an error, not silently ignored."""
    training = {
        "networks": ["ResNet50"],
        "folds": {"scheme": "nsc", "compounds": ["a"]},
        "per_network": {"ResNet50": {"epoch": 3}},
    }
    with pytest.raises(
        ValueError, match=r"training\.per_network\.ResNet50: unknown setting\(s\) epoch"
    ):
        TrainSettings.from_config(training, "ResNet50")
    with pytest.raises(ValueError, match=r"training: unknown setting\(s\) learnig_rate"):
        TrainSettings.from_config({**training, "per_network": {}, "learnig_rate": 0.1}, "ResNet50")


def _run(tensors, out, seed=5):
    settings = small_settings(seed=seed)
    return train_fold(
        tensors,
        "cytochalasin B",
        settings,
        out / "model.keras",
        out / "history.tsv",
        out / "predictions.tsv",
        out / "fold.json",
        out / "checkpoint",
    )


def _outputs(folder):
    return FoldOutputs(
        folder / "model.keras",
        folder / "history.tsv",
        folder / "predictions.tsv",
        folder / "fold.json",
        folder / "checkpoint",
        folder / "embeddings.h5",
    )


@pytest.mark.e2e
def test_folds_trained_in_one_process_equal_folds_trained_alone(tiny_tensors, tmp_path, caplog):
    """training.jobs: per_network trains fold after fold on one model object (one graph trace):
    each fold must start from the initial weights and optimizer state, so its predictions are
    those of the fold trained alone; a finished fold is not trained again on a rerun."""
    folds = {c: _outputs(tmp_path / "together" / c) for c in ("nocodazole", "cytochalasin B")}
    together = train_folds(tiny_tensors, folds, small_settings())
    alone = _run(tiny_tensors, tmp_path / "alone")
    prob_cols = [c for c in alone.columns if c.startswith("prob_")]
    np.testing.assert_array_equal(
        together["cytochalasin B"][prob_cols].to_numpy(), alone[prob_cols].to_numpy()
    )
    assert not (tmp_path / "together" / "nocodazole" / "checkpoint").exists()
    with (
        h5py.File(folds["cytochalasin B"].embeddings) as f,
        h5py.File(folds["nocodazole"].embeddings) as g,
    ):
        assert f["embeddings"].shape == g["embeddings"].shape and not np.array_equal(
            f["embeddings"][()], g["embeddings"][()]
        )
    # a fold that finished in a per_network job killed later keeps its results in its checkpoint
    # folder; the rerun (Snakemake has deleted the incomplete job's outputs) restores them,
    # untrained
    done = folds["cytochalasin B"]
    trainer = FoldTrainer(tiny_tensors, small_settings())
    first = trainer.train("cytochalasin B", done, keep_checkpoint=True)
    history, embeddings = done.history.read_text(), done.embeddings.read_bytes()
    for path in done.files():
        path.unlink()
    caplog.clear()
    with caplog.at_level("INFO"):
        again = trainer.train("cytochalasin B", done, keep_checkpoint=True)
    assert "results restored" in caplog.text and "epoch 1/1:" not in caplog.text
    np.testing.assert_array_equal(first[prob_cols].to_numpy(), again[prob_cols].to_numpy())
    assert done.history.read_text() == history and done.embeddings.read_bytes() == embeddings
    assert done.model.is_file()
    # an incomplete set of kept results is not restored: the fold is made again (from its model
    # checkpoint)
    (done.checkpoint_dir / "results" / "predictions.tsv").unlink()
    done.predictions.unlink()
    caplog.clear()
    with caplog.at_level("INFO"):
        trainer.train("cytochalasin B", done, keep_checkpoint=True)
    assert "results restored" not in caplog.text and done.predictions.is_file()
    # results kept by other settings are never restored
    for path in done.files():
        path.unlink()
    caplog.clear()
    with caplog.at_level("INFO"):
        FoldTrainer(tiny_tensors, small_settings(seed=9)).train(
            "cytochalasin B", done, keep_checkpoint=True
        )
    assert "results restored" not in caplog.text and "kept results of other settings" in caplog.text


@pytest.mark.e2e
def test_the_all_compound_fold_trains_on_every_annotated_compound_and_predicts_the_others(
    tiny_tensors_unannotated, tmp_path
):
    """Fold "all": trained on every annotated crop (never an unannotated or control one), it
    predicts exactly the unannotated crops and embeds every crop; a leave-one-out fold's model
    embeds all but the unannotated ones (NaN rows). training.fold_models: false writes no model
    for a leave-one-out fold."""
    from cellmoa.preprocess.tensors import read_crop_metadata
    from cellmoa.train.folds import ALL_FOLD

    meta = read_crop_metadata(tiny_tensors_unannotated)
    new = (meta["annotated"] == 0) & (meta["is_control"] == 0)
    assert new.any()
    loco = _outputs(tmp_path / "nocodazole")
    loco = FoldOutputs(
        None, loco.history, loco.predictions, loco.fold, loco.checkpoint_dir, loco.embeddings
    )
    folds = {"nocodazole": loco, ALL_FOLD: _outputs(tmp_path / "all")}
    results = train_folds(tiny_tensors_unannotated, folds, small_settings())
    assert (
        not (tmp_path / "nocodazole" / "model.keras").exists()
        and (tmp_path / "all" / "model.keras").is_file()
    )
    predicted = results[ALL_FOLD]
    assert (
        set(predicted["Metadata_Compound"]) == set(meta.loc[new, "compound"])
        and len(predicted) == new.sum()
    )
    assert (predicted["Metadata_Fold"] == ALL_FOLD).all()
    info = json.loads((tmp_path / "all" / "fold.json").read_text())
    assert info["n_train_crops"] == int((meta["annotated"] == 1).sum())
    assert set(info["train_compounds"]) == set(meta.loc[meta["annotated"] == 1, "compound"])
    with h5py.File(folds[ALL_FOLD].embeddings) as f, h5py.File(loco.embeddings) as g:
        everything, held = (
            f["embeddings"][()].astype(np.float32),
            g["embeddings"][()].astype(np.float32),
        )
    assert len(everything) == len(held) == len(meta) and np.isfinite(everything).all()
    assert np.isnan(held[new.to_numpy()]).all() and np.isfinite(held[~new.to_numpy()]).all()


@pytest.mark.e2e
def test_train_fold_outputs_and_seeded_repeatability(tiny_tensors, tmp_path):
    a = _run(tiny_tensors, tmp_path / "a")
    b = _run(tiny_tensors, tmp_path / "b")
    prob_cols = [c for c in a.columns if c.startswith("prob_")]
    np.testing.assert_array_equal(a[prob_cols].to_numpy(), b[prob_cols].to_numpy())
    assert set(a["Metadata_Compound"]) == {"cytochalasin B"}
    np.testing.assert_allclose(a[prob_cols].sum(axis=1), 1.0, rtol=1e-5)
    for name in ("model.keras", "history.tsv", "predictions.tsv", "fold.json"):
        assert (tmp_path / "a" / name).is_file()
    assert not (tmp_path / "a" / "checkpoint").exists(), (
        "the checkpoint is removed once the fold is done"
    )
    history = pd.read_csv(tmp_path / "a" / "history.tsv", sep="\t")
    assert list(history["epoch"]) == [0] and "loss" in history
    fold = json.loads((tmp_path / "a" / "fold.json").read_text())
    assert "cytochalasin B" not in fold["train_compounds"] and fold["n_test_crops"] == len(a)


RUN_FOLD = """
import logging, sys
from pathlib import Path
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s", force=True)
from cellmoa.train.backends import use_backend
from cellmoa.train.settings import TrainSettings
from cellmoa.train.training import train_fold
out = Path(sys.argv[2])
settings = TrainSettings(network="ResNet50", input_size=48, weights=None, epochs=4, batch_size=4,
                         optimizer="sgd", learning_rate=1e-2, momentum=0.9, lr_decay_epochs=2,
                         lr_decay_factor=0.5, seed=1, backend=sys.argv[3], inputs=sys.argv[4],
                         threads=1)
use_backend(settings.backend, settings.deterministic)
train_fold(Path(sys.argv[1]), "nocodazole", settings, out / "model.keras", out / "history.tsv",
           out / "predictions.tsv", out / "fold.json", out / "checkpoint")
"""


def _backend_available(backend):
    import importlib.util

    return (
        importlib.util.find_spec(
            {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
        )
        is not None
    )


#: TensorFlow (the default) and JAX (``pip install -e '.[jax]'``, which make install does); PyTorch
#: where it is installed
BACKENDS = [
    pytest.param(
        b, marks=pytest.mark.skipif(not _backend_available(b), reason=f"{b} is not installed")
    )
    for b in ("tensorflow", "jax", "torch")
]


#: (backend, input mode): the default memory mode on every backend; streaming once (what its
#: resumed epochs feed is checked per pipeline by test_an_epoch_feeds_the_same_whatever_epoch_...)
RESUMED = [
    pytest.param(*b.values, "memory", marks=b.marks, id=f"{b.values[0]}-memory") for b in BACKENDS
]
RESUMED.append(pytest.param("tensorflow", "stream", id="tensorflow-stream"))


@pytest.mark.e2e
@pytest.mark.parametrize("backend, inputs", RESUMED)
def test_a_killed_training_resumes_from_its_last_epoch(tiny_tensors, tmp_path, backend, inputs):
    """On each backend and input mode: a fold trains and predicts, resumes after kill -9 from
    its last epoch, and ends bit for bit where an uninterrupted run of the same seed ends."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "run_fold.py"
    script.write_text(RUN_FOLD)
    out = tmp_path / "fold"
    history = (
        out / "checkpoint" / "history.tsv"
    )  # the history lives beside the checkpoint while training
    cmd = [sys.executable, str(script), str(tiny_tensors), str(out), backend, inputs]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    # wait for the first finished epoch (a row in the history), then kill -9 the job
    while time.monotonic() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (
        "the run ended before it could be killed after its first epoch"
    )
    assert not (out / "predictions.tsv").exists()
    assert (out / "checkpoint").exists()
    done_before = len(history.read_text().splitlines()) - 1
    assert 1 <= done_before < 4

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "resuming from the checkpoint" in rerun.stdout
    log = pd.read_csv(out / "history.tsv", sep="\t")
    assert list(log["epoch"]) == [0, 1, 2, 3], log
    np.testing.assert_allclose(
        log["learning_rate"], [1e-2, 1e-2, 5e-3, 5e-3], rtol=1e-6
    )  # step decay survives
    assert (out / "predictions.tsv").is_file()
    assert not (out / "checkpoint").exists()

    # the resumed run ends exactly where an uninterrupted run of the same seed ends
    whole = tmp_path / "uninterrupted"
    uninterrupted = subprocess.run(
        [sys.executable, str(script), str(tiny_tensors), str(whole), backend, inputs],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert uninterrupted.returncode == 0, (
        uninterrupted.stdout[-3000:] + uninterrupted.stderr[-3000:]
    )
    assert "resuming" not in uninterrupted.stdout
    resumed, straight = (pd.read_csv(d / "predictions.tsv", sep="\t") for d in (out, whole))
    prob_cols = [c for c in resumed.columns if c.startswith("prob_")]
    np.testing.assert_array_equal(resumed[prob_cols].to_numpy(), straight[prob_cols].to_numpy())
    pd.testing.assert_frame_equal(log, pd.read_csv(whole / "history.tsv", sep="\t"))


@pytest.mark.e2e
def test_mixed_precision_and_xla_train_on_the_cpu(tiny_tensors, tmp_path):
    """The GPU options take the same path on the CPU: float16 compute under loss scaling, an
    XLA-compiled step, float32 probabilities."""
    import keras

    with pytest.raises(ValueError, match="deterministic: false"):
        small_settings(jit_compile=True)  # Keras would quietly drop XLA under deterministic ops
    settings = small_settings(mixed_precision=True, jit_compile=True, deterministic=False)
    out = tmp_path / "mp"
    try:
        predictions = train_fold(
            tiny_tensors,
            "nocodazole",
            settings,
            out / "model.keras",
            out / "history.tsv",
            out / "predictions.tsv",
            out / "fold.json",
            out / "checkpoint",
            embeddings_path=out / "embeddings.h5",
        )
        model = keras.models.load_model(out / "model.keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    assert model.dtype_policy.name == "mixed_float16"
    assert model.get_layer("moa").dtype_policy.name == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.jit_compile
    probs = predictions[[c for c in predictions.columns if c.startswith("prob_")]].to_numpy()
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(pd.read_csv(out / "history.tsv", sep="\t")["loss"]).all()


@pytest.mark.unit
def test_run_workload_counts_every_fold(tiny_tensors):
    meta = read_crop_metadata(tiny_tensors)
    compounds = ["nocodazole", "vincristine", "cytochalasin B", "latrunculin B"]
    work = run_workload(meta, compounds, "nsc", epochs=3)
    labelled = ((meta.moa != "") & (meta.is_control == 0)).sum()
    # every labelled treatment crop is held out once, so it trains in (folds - 1) folds; every
    # crop (controls included) is embedded by every fold
    assert work["train_images"] == 3 * labelled * (len(compounds) - 1)
    assert work["inference_images"] == labelled + len(compounds) * len(meta)
    assert work["folds"] == 4 and work["crops"] == len(meta)


@pytest.mark.unit
def test_a_checkpoint_is_resumed_only_by_a_job_with_the_same_settings(tmp_path, caplog):
    """A fold killed mid-training and rerun with other settings (say a new learning rate, which
    reruns the job) must not continue the model trained with the old ones: it starts anew."""
    import keras

    from cellmoa.train.checkpoints import Checkpoint

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), epochs=1, verbose=0)
    old = Checkpoint(tmp_path / "checkpoint", made_with='{"learning_rate": 0.001}')
    old.end_epoch(model, 0, {"loss": 1.0}, last=False)
    old.end_epoch(model, 1, {"loss": 0.5}, last=False)
    same, done = Checkpoint(tmp_path / "checkpoint", made_with='{"learning_rate": 0.001}').restore()
    assert done == 2 and same is not None
    np.testing.assert_array_equal(same.get_weights()[0], model.get_weights()[0])
    other = Checkpoint(tmp_path / "checkpoint", made_with='{"learning_rate": 0.01}')
    with caplog.at_level("WARNING"):
        assert other.restore() == (None, 0)
    assert "trained with other settings" in caplog.text and other.history().empty
    # a checkpoint written before the settings were recorded is not resumed either
    state = json.loads((tmp_path / "checkpoint/state.json").read_text())
    del state["made_with"]
    (tmp_path / "checkpoint/state.json").write_text(json.dumps(state))
    assert Checkpoint(tmp_path / "checkpoint", made_with='{"learning_rate": 0.001}').restore() == (
        None,
        0,
    )
