import time

import numpy as np
import pytest

from cellmoa import models


@pytest.mark.parametrize("name", ["ResNet50", "InceptionV3", "InceptionResNetV2"])
def test_each_network_builds_and_takes_a_training_step(name):
    import keras

    model = models.build_classifier(name, n_classes=3, input_size=75, weights=None, l2=1e-4)
    assert model.output_shape == (None, 3)
    model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9), loss="sparse_categorical_crossentropy", jit_compile=False)
    x = np.random.default_rng(0).uniform(0, 255, (2, 75, 75, 3)).astype("float32")
    x = models.preprocess_fn(name)(x)
    before = [w.numpy().copy() for w in model.get_layer("moa").weights]
    loss = model.train_on_batch(x, np.array([0, 2]))
    assert np.isfinite(loss)
    after = [w.numpy() for w in model.get_layer("moa").weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after)), "the step changed no weight"


def test_local_weights_round_trip(tmp_path):
    """Weights saved from a built backbone load into a new classifier and give identical features."""
    import keras

    keras.utils.set_random_seed(1)
    source = models.build_backbone("ResNet50", 32, None)
    path = tmp_path / "resnet50_notop.weights.h5"
    source.save_weights(path)
    keras.utils.set_random_seed(2)  # a different initialisation, overwritten by the file
    model = models.build_classifier("ResNet50", 4, 32, weights=str(path))
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(models.embedding_model(model).predict(x, verbose=0), source.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    keras.utils.set_random_seed(2)
    fresh = models.build_classifier("ResNet50", 4, 32, weights=None)
    assert not np.allclose(models.embedding_model(fresh).predict(x, verbose=0), source.predict(x, verbose=0))


def test_imagenet_without_cache_fails_fast_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(models.WeightsError) as err:
        models.build_classifier("InceptionV3", 3, 75, weights="imagenet")
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert str(tmp_path / "models" / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5") in message
    assert "fetch_weights" in message and models.NETWORKS["InceptionV3"].weights_url in message


def test_imagenet_cache_with_a_wrong_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / models.NETWORKS["ResNet50"].weights_file).write_bytes(b"not the weights")
    with pytest.raises(models.WeightsError, match="md5"):
        models.resolve_weights("ResNet50", "imagenet")


def test_weights_choices():
    assert models.resolve_weights("ResNet50", None) is None
    assert models.resolve_weights("ResNet50", "none") is None
    with pytest.raises(models.WeightsError, match="does not exist"):
        models.resolve_weights("ResNet50", "/nonexistent/w.h5")


def test_unknown_network_and_too_small_input():
    with pytest.raises(ValueError, match="unknown network 'ResNet49'"):
        models.network("ResNet49")
    with pytest.raises(ValueError, match="at least 75 px"):
        models.build_backbone("InceptionV3", 64, None)
    assert models.network("MobileNetV2").module == "mobilenet_v2"


def test_fetch_weights_from_a_local_server_and_load_them(tmp_path):
    """The fetch_weights path end to end against a server on 127.0.0.1: download, md5 check,
    then a classifier built with 'imagenet' loads exactly those weights."""
    import h5py
    import keras
    from httpserver import ScriptedServer
    from keras.src.legacy.saving import legacy_h5_format

    from cellmoa.download import DownloadError

    keras.utils.set_random_seed(3)
    source = models.build_backbone("ResNet50", 32, None)
    saved = tmp_path / "saved.h5"
    with h5py.File(saved, "w") as f:  # the legacy HDF5 layout Keras publishes its ImageNet files in
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    data = saved.read_bytes()
    net = models.NETWORKS["ResNet50"]
    with ScriptedServer() as server:
        server.files[f"{net.weights_subdir}/{net.weights_file}"] = data
        dest = tmp_path / models.imagenet_weights_file("ResNet50")
        with pytest.raises(DownloadError, match="differs from the published"):
            models.fetch_imagenet_weights("ResNet50", dest, base_url=server.url, retries=0, timeout=5)
        assert not dest.exists()
        md5 = models.md5sum(saved)
        models.fetch_imagenet_weights("ResNet50", dest, base_url=server.url, md5=md5, retries=0, timeout=5)
    assert models.md5sum(dest) == md5
    # the training path: 'imagenet' resolved to the fetched file (hash check off: not Keras' file)
    resolved = models.resolve_weights("ResNet50", "imagenet", check_hash=False, imagenet_file=dest)
    assert resolved == str(dest)
    keras.utils.set_random_seed(4)
    model = models.build_classifier("ResNet50", 2, 32, weights=resolved)
    x = np.random.default_rng(1).normal(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(models.embedding_model(model).predict(x, verbose=0), source.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
