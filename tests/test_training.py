import json

import numpy as np
import pandas as pd
import pytest

from cellmoa.tensors import read_metadata
from cellmoa.training import TrainSettings, _augment, class_weights, make_dataset, select_fold, train_fold


def small_settings(**kw):
    values = dict(network="ResNet50", input_size=32, weights=None, epochs=1, batch_size=8, optimizer="adam",
                  learning_rate=1e-3, seed=5)
    values.update(kw)
    return TrainSettings(**values)


def test_fold_holds_out_the_compound(tiny_tensors):
    meta = read_metadata(tiny_tensors)
    fold = select_fold(meta, "nocodazole", "nsc")
    assert "nocodazole" not in set(meta.iloc[fold.train_index]["compound"])
    assert set(meta.iloc[fold.test_index]["compound"]) == {"nocodazole"}
    assert len(fold.train_index) + len(fold.test_index) == len(meta)
    assert fold.classes == ["Actin disruptors", "Microtubule destabilizers"]


def test_nscb_also_holds_out_the_batch(tiny_tensors):
    meta = read_metadata(tiny_tensors)
    fold = select_fold(meta, "nocodazole", "nscb")
    held_batches = set(meta.loc[meta.compound == "nocodazole", "batch"])
    assert fold.excluded_batches == sorted(held_batches)
    assert not set(meta.iloc[fold.train_index]["batch"]) & held_batches
    assert len(fold.train_index) > 0


def test_unknown_fold_compound_and_scheme(tiny_tensors):
    meta = read_metadata(tiny_tensors)
    with pytest.raises(ValueError, match="'taxol' has no crops"):
        select_fold(meta, "taxol")
    with pytest.raises(ValueError, match="unknown fold scheme"):
        select_fold(meta, "nocodazole", "loo")


def test_what_is_fed_never_contains_the_held_out_compound(tiny_tensors):
    meta = read_metadata(tiny_tensors)
    fold = select_fold(meta, "vincristine", "nsc")
    labels = np.zeros(len(fold.train_index), np.int64)
    ds = make_dataset(tiny_tensors, fold.train_index, labels, small_settings(), training=True, with_index=True)
    fed = []
    for _ in range(2):  # two epochs: reshuffled, still the same crops
        epoch = np.concatenate([idx.numpy() for _, _, idx in ds])
        fed.append(epoch)
        assert sorted(epoch) == sorted(fold.train_index)
    assert not np.array_equal(fed[0], fed[1]), "the order is reshuffled every epoch"
    assert "vincristine" not in set(meta.iloc[np.concatenate(fed)]["compound"])
    images, _, _ = next(iter(ds))
    assert images.shape == (8, 32, 32, 3)


def test_nscb_feeds_neither_the_compound_nor_its_batches(tiny_tensors):
    meta = read_metadata(tiny_tensors)
    fold = select_fold(meta, "latrunculin B", "nscb")
    labels = np.zeros(len(fold.train_index), np.int64)
    ds = make_dataset(tiny_tensors, fold.train_index, labels, small_settings(), training=True, with_index=True)
    fed = meta.iloc[np.concatenate([idx.numpy() for _, _, idx in ds])]
    held_batches = set(meta.loc[meta.compound == "latrunculin B", "batch"])
    assert len(fed) == len(fold.train_index) > 0
    assert "latrunculin B" not in set(fed["compound"]) and not set(fed["batch"]) & held_batches


def test_augmentation_is_seeded():
    import tensorflow as tf

    image = tf.random.stateless_normal([16, 16, 3], [1, 2])
    a = _augment(image, tf.constant([7, 9], tf.int64))
    b = _augment(image, tf.constant([7, 9], tf.int64))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    outs = {(_augment(image, tf.constant([s, 0], tf.int64)).numpy().tobytes()) for s in range(8)}
    assert len(outs) > 1


def test_balanced_class_weights():
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    assert w[0] == pytest.approx(4 / (2 * 3)) and w[1] == pytest.approx(4 / (2 * 1)) and w[2] == 0.0


def test_settings_from_config_with_per_network_overrides():
    training = {"networks": ["ResNet50", "InceptionV3"], "folds": {"scheme": "nscb", "compounds": ["a"]},
                "epochs": 10, "per_network": {"InceptionV3": {"epochs": 12}}}
    assert TrainSettings.from_config(training, "ResNet50").epochs == 10
    incv3 = TrainSettings.from_config(training, "InceptionV3")
    assert incv3.epochs == 12 and incv3.input_size == 299 and incv3.fold_scheme == "nscb"


def _run(tensors, out, seed=5):
    settings = small_settings(seed=seed)
    return train_fold(tensors, "cytochalasin B", settings, out / "model.keras", out / "history.tsv",
                      out / "predictions.tsv", out / "fold.json", out / "checkpoint")


def test_train_fold_outputs_and_seeded_repeatability(tiny_tensors, tmp_path):
    a = _run(tiny_tensors, tmp_path / "a")
    b = _run(tiny_tensors, tmp_path / "b")
    prob_cols = [c for c in a.columns if c.startswith("prob_")]
    np.testing.assert_array_equal(a[prob_cols].to_numpy(), b[prob_cols].to_numpy())
    assert set(a["Metadata_Compound"]) == {"cytochalasin B"}
    np.testing.assert_allclose(a[prob_cols].sum(axis=1), 1.0, rtol=1e-5)
    for name in ("model.keras", "history.tsv", "predictions.tsv", "fold.json"):
        assert (tmp_path / "a" / name).is_file()
    assert not (tmp_path / "a" / "checkpoint").exists(), "the checkpoint is removed once the fold is done"
    history = pd.read_csv(tmp_path / "a" / "history.tsv", sep="\t")
    assert list(history["epoch"]) == [0] and "loss" in history
    fold = json.loads((tmp_path / "a" / "fold.json").read_text())
    assert "cytochalasin B" not in fold["train_compounds"] and fold["n_test_crops"] == len(a)


RUN_FOLD = """
import logging, sys
from pathlib import Path
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s", force=True)
from cellmoa.training import TrainSettings, train_fold
out = Path(sys.argv[2])
settings = TrainSettings(network="ResNet50", input_size=48, weights=None, epochs=4, batch_size=4,
                         optimizer="adam", learning_rate=1e-3, seed=1)
train_fold(Path(sys.argv[1]), "nocodazole", settings, out / "model.keras", out / "history.tsv",
           out / "predictions.tsv", out / "fold.json", out / "checkpoint")
"""


def test_a_killed_training_resumes_from_its_last_epoch(tiny_tensors, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "run_fold.py"
    script.write_text(RUN_FOLD)
    out = tmp_path / "fold"
    history = out / "checkpoint" / "history.tsv"  # the history lives beside the checkpoint while training
    cmd = [sys.executable, str(script), str(tiny_tensors), str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    # wait for the first finished epoch (a row in the history), then kill -9 the job
    while time.monotonic() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed after its first epoch"
    assert not (out / "predictions.tsv").exists()
    assert (out / "checkpoint").exists()
    done_before = len(history.read_text().splitlines()) - 1
    assert 1 <= done_before < 4

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "resuming from the checkpoint" in rerun.stdout
    epochs = list(pd.read_csv(out / "history.tsv", sep="\t")["epoch"])
    assert epochs == [0, 1, 2, 3], epochs
    assert (out / "predictions.tsv").is_file()
    assert not (out / "checkpoint").exists()
