import time

import numpy as np
import pytest

from cellmoa.train import models, networks


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["ResNet50", "InceptionV3", "InceptionResNetV2"])
def test_each_network_builds_and_takes_a_training_step(name):
    import keras

    model = models.build_classifier(name, n_classes=3, input_size=75, weights=None, l2=1e-4)
    assert model.output_shape == (None, 3)
    model.compile(
        optimizer=keras.optimizers.SGD(1e-3, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    x = np.random.default_rng(0).uniform(0, 255, (2, 75, 75, 3)).astype("float32")
    x = models.preprocess_fn(name)(x)
    before = [w.numpy().copy() for w in model.get_layer("moa").weights]
    loss = model.train_on_batch(x, np.array([0, 2]))
    assert np.isfinite(loss)
    after = [w.numpy() for w in model.get_layer("moa").weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after)), (
        "the step changed no weight"
    )


@pytest.mark.e2e
def test_local_weights_round_trip(tmp_path):
    """Weights saved from a built backbone load into a new classifier.

    The new classifier gives identical features.
    """
    import keras

    keras.utils.set_random_seed(1)
    source = models.build_backbone("ResNet50", 32, None)
    path = tmp_path / "resnet50_notop.weights.h5"
    source.save_weights(path)
    keras.utils.set_random_seed(2)  # a different initialisation, overwritten by the file
    model = models.build_classifier("ResNet50", 4, 32, weights=str(path))
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        models.embedding_model(model).predict(x, verbose=0),
        source.predict(x, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
    keras.utils.set_random_seed(2)
    fresh = models.build_classifier("ResNet50", 4, 32, weights=None)
    assert not np.allclose(
        models.embedding_model(fresh).predict(x, verbose=0), source.predict(x, verbose=0)
    )


@pytest.mark.unit
def test_imagenet_without_cache_fails_fast_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(networks.WeightsError) as err:
        models.build_classifier("InceptionV3", 3, 75, weights="imagenet")
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert (
        str(tmp_path / "models" / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")
        in message
    )
    assert "fetch_weights" in message and networks.NETWORKS["InceptionV3"].weights_url in message


@pytest.mark.unit
def test_imagenet_cache_with_a_wrong_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / networks.NETWORKS["ResNet50"].weights_file).write_bytes(
        b"not the weights"
    )
    with pytest.raises(networks.WeightsError, match="md5"):
        networks.resolve_weights("ResNet50", "imagenet")


@pytest.mark.unit
def test_weights_choices():
    assert networks.resolve_weights("ResNet50", None) is None
    assert networks.resolve_weights("ResNet50", "none") is None
    with pytest.raises(networks.WeightsError, match="does not exist"):
        networks.resolve_weights("ResNet50", "/nonexistent/w.h5")


@pytest.mark.unit
def test_unknown_network_and_too_small_input():
    with pytest.raises(ValueError, match="unknown network 'ResNet49'"):
        networks.network("ResNet49")
    with pytest.raises(ValueError, match="at least 75 px"):
        models.build_backbone("InceptionV3", 64, None)
    assert networks.network("MobileNetV2").module == "mobilenet_v2"


@pytest.mark.e2e
def test_fetch_weights_from_a_local_server_and_load_them(tmp_path):
    """The fetch_weights path end to end against a server on 127.0.0.1: download, md5 check,
    then a classifier built with 'imagenet' loads exactly those weights."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from cellmoa.data.http import DownloadError
    from tests.helpers.httpserver import ScriptedServer

    keras.utils.set_random_seed(3)
    source = models.build_backbone("ResNet50", 32, None)
    saved = tmp_path / "saved.h5"
    with h5py.File(saved, "w") as f:  # the legacy HDF5 layout Keras publishes its ImageNet files in
        legacy_h5_format.save_weights_to_hdf5_group(f, source)
    data = saved.read_bytes()
    net = networks.NETWORKS["ResNet50"]
    with ScriptedServer() as server:
        server.files[f"{net.weights_subdir}/{net.weights_file}"] = data
        dest = tmp_path / networks.imagenet_weights_file("ResNet50")
        with pytest.raises(DownloadError, match="differs from the published"):
            networks.fetch_imagenet_weights(
                "ResNet50", dest, base_url=server.url, retries=0, timeout=5
            )
        assert not dest.exists()
        md5 = networks.md5sum(saved)
        networks.fetch_imagenet_weights(
            "ResNet50", dest, base_url=server.url, md5=md5, retries=0, timeout=5
        )
    assert networks.md5sum(dest) == md5
    # the training path: 'imagenet' resolved to the fetched file (hash check off: not Keras' file)
    resolved = networks.resolve_weights(
        "ResNet50", "imagenet", check_hash=False, imagenet_file=dest
    )
    assert resolved == str(dest)
    keras.utils.set_random_seed(4)
    model = models.build_classifier("ResNet50", 2, 32, weights=resolved)
    x = np.random.default_rng(1).normal(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        models.embedding_model(model).predict(x, verbose=0),
        source.predict(x, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.unit
def test_the_stem_kernel_widens_to_more_channels_keeping_the_response_to_equal_inputs():
    kernel = np.random.default_rng(0).normal(size=(7, 7, 3, 4)).astype("float32")
    assert models.widen_stem(kernel, 3) is not kernel and np.array_equal(
        models.widen_stem(kernel, 3), kernel
    )
    wide = models.widen_stem(kernel, 5)
    assert wide.shape == (7, 7, 5, 4) and wide.dtype == kernel.dtype
    np.testing.assert_allclose(wide[:, :, :3], kernel * 3 / 5, rtol=1e-6)
    np.testing.assert_allclose(wide[:, :, 3], kernel.mean(axis=2) * 3 / 5, rtol=1e-6)
    np.testing.assert_allclose(wide[:, :, 4], wide[:, :, 3])
    # the same value on every channel gives the original response: the activations keep their size
    np.testing.assert_allclose(wide.sum(axis=2), kernel.sum(axis=2), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="3 or more channels"):
        models.widen_stem(kernel, 2)
    with pytest.raises(ValueError, match=r"shape \(kh, kw, 3, filters\)"):
        models.widen_stem(kernel[:, :, :2], 5)


@pytest.mark.e2e
def test_a_three_channel_input_through_the_adapter_gives_the_original_networks_output():
    """The adapter's layer-by-layer copy into a network built for its own channel count, here 3."""
    import keras

    keras.utils.set_random_seed(1)
    original = models.build_backbone("ResNet50", 32, None)
    keras.utils.set_random_seed(2)
    copy = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg"
    )
    x = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    assert not np.allclose(copy.predict(x, verbose=0), original.predict(x, verbose=0))
    models.copy_into_wide(original, copy)
    np.testing.assert_allclose(
        copy.predict(x, verbose=0), original.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


@pytest.mark.e2e
def test_the_stem_adapter_feeds_five_channels_to_a_pretrained_network(tmp_path):
    """Pretrained weights (a local file) in a 5-channel InceptionV3: every layer but the stem as
    pretrained, the stem widened; a grey image on 5 channels gives what it gives on 3."""
    import keras

    keras.utils.set_random_seed(1)
    source = models.build_backbone("InceptionV3", 75, None)
    path = tmp_path / "inception_v3_notop.weights.h5"
    source.save_weights(path)
    keras.utils.set_random_seed(2)
    model = models.build_classifier("InceptionV3", 3, 75, weights=str(path), channels=5)
    assert model.input.shape[-1] == 5 and model.output.shape[-1] == 3
    wide = models.embedding_model(model)
    stem_a, stem_b = models.stem_layer(source), models.stem_layer(model)
    assert stem_b.kernel.shape == (*stem_a.kernel.shape[:2], 5, stem_a.kernel.shape[-1])
    np.testing.assert_allclose(
        np.asarray(stem_b.kernel), models.widen_stem(np.asarray(stem_a.kernel), 5)
    )
    others_a = [
        w
        for layer in source.layers
        if layer.weights and layer is not stem_a
        for w in layer.get_weights()
    ]
    others_b = [
        w
        for layer in model.layers[:-1]
        if layer.weights and layer is not stem_b
        for w in layer.get_weights()
    ]
    assert len(others_a) == len(others_b) and all(
        np.array_equal(a, b) for a, b in zip(others_a, others_b)
    )
    grey = np.random.default_rng(0).uniform(0, 255, size=(2, 75, 75, 1)).astype("float32")
    three = models.preprocess_fn("InceptionV3")(np.repeat(grey, 3, axis=-1))
    five = models.preprocess_fn("InceptionV3", 5)(np.repeat(grey, 5, axis=-1))
    assert five.shape[-1] == 5
    np.testing.assert_allclose(
        wide.predict(five, verbose=0), source.predict(three, verbose=0), rtol=1e-4, atol=1e-5
    )


@pytest.mark.unit
def test_preprocessing_more_channels_keeps_the_first_three_as_rgb():
    x = np.random.default_rng(0).uniform(0, 255, size=(1, 4, 4, 5)).astype("float32")
    rgb = models.preprocess_fn("ResNet50")
    out = models.preprocess_fn("ResNet50", 5)(x.copy())
    np.testing.assert_allclose(out[..., :3], rgb(x[..., :3].copy()))
    # a further channel as a grey image: minus the mean of the three ImageNet means
    np.testing.assert_allclose(
        out[..., 3], x[..., 3] - np.mean([103.939, 116.779, 123.68]), rtol=1e-5
    )
    with pytest.raises(ValueError, match="3 or more channels"):
        models.preprocess_fn("ResNet50", 2)


@pytest.mark.unit
def test_the_channel_adapter_choice_is_checked_against_the_tensors():
    from cellmoa.train.inputs import network_input
    from cellmoa.train.settings import TrainSettings

    stem = TrainSettings(
        network="ResNet50", channel_adapter="stem", input_channels=["DNA", "ER", "RNA"]
    )
    assert stem.input_channels is None
    assert network_input(stem, ["DNA", "ER", "RNA", "AGP", "Mito"], 5) == (None, 5)
    with pytest.raises(ValueError, match="the tensors have 2 .*channel_adapter: select"):
        network_input(stem, ["NFkB", "DAPI"], 2)
    select = TrainSettings(network="ResNet50", input_channels=["Mito", None, "DNA"])
    assert network_input(select, ["DNA", "ER", "RNA", "AGP", "Mito"], 5) == ([4, -1, 0], 3)
    with pytest.raises(ValueError, match="the tensors have 5 .*channel_adapter: stem"):
        network_input(TrainSettings(network="ResNet50"), ["DNA", "ER", "RNA", "AGP", "Mito"], 5)
    with pytest.raises(ValueError, match="channel_adapter must be select or stem"):
        TrainSettings(network="ResNet50", channel_adapter="pca")
