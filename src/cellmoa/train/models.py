"""ImageNet-pretrained networks from ``keras.applications`` with a global-average-pooling +
softmax head, and where their weights come from.

Weights are ``"imagenet"``, a path to a local weights file of the backbone (no top), or ``None``.
``"imagenet"`` never downloads inside a training job (cluster nodes are often offline, and Keras'
own download has no time-out): the no-top file is fetched once, before training, by the
``fetch_weights`` rule into ``resources/weights/`` (checked against the md5 Keras publishes), or
found in the Keras cache (``$KERAS_HOME/models``, default ``~/.keras/models``); otherwise a clear
error says where to put it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellmoa.data.download import DownloadError, fetch

WEIGHTS_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications"


@dataclass(frozen=True)
class Network:
    name: str
    #: module under keras.applications holding ``preprocess_input``
    module: str
    #: the input size the network was pretrained at (the paper's default)
    default_size: int
    #: the smallest input the architecture accepts
    min_size: int
    #: file name of the no-top ImageNet weights and its path under WEIGHTS_BASE_URL
    weights_file: str | None = None
    weights_subdir: str | None = None
    #: md5 Keras publishes for that file
    weights_md5: str | None = None
    #: training time per image relative to ResNet50 at the same input size (measured on the
    #: 2-core CPU at 75 px: ResNet50 ~42 ms, InceptionV3 ~26 ms, InceptionResNetV2 ~66 ms);
    #: used to start the longest jobs first
    relative_cost: float = 1.0

    @property
    def weights_url(self) -> str | None:
        if self.weights_file is None:
            return None
        return f"{WEIGHTS_BASE_URL}/{self.weights_subdir}/{self.weights_file}"


#: The paper's three networks. Other keras.applications names are accepted through config
#: (their weights then come from a local file, or Keras' own mechanism when online).
NETWORKS = {
    "ResNet50": Network(
        "ResNet50",
        "resnet50",
        224,
        32,
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "resnet",
        "4d473c1dd8becc155b73f8504c6f6626",
        1.0,
    ),
    "InceptionV3": Network(
        "InceptionV3",
        "inception_v3",
        299,
        75,
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "inception_v3",
        "bcbd6486424b2319ff4ef7d526e38f63",
        0.62,
    ),
    "InceptionResNetV2": Network(
        "InceptionResNetV2",
        "inception_resnet_v2",
        299,
        75,
        "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "inception_resnet_v2",
        "d19885ff4a710c122648d3b5c3b684e4",
        1.6,
    ),
}

# Modules of other keras.applications constructors, for preprocess_input.
_OTHER_MODULES = {
    "ResNet101": "resnet",
    "ResNet152": "resnet",
    "ResNet50V2": "resnet_v2",
    "ResNet101V2": "resnet_v2",
    "ResNet152V2": "resnet_v2",
    "Xception": "xception",
    "VGG16": "vgg16",
    "VGG19": "vgg19",
    "DenseNet121": "densenet",
    "DenseNet169": "densenet",
    "DenseNet201": "densenet",
    "MobileNet": "mobilenet",
    "MobileNetV2": "mobilenet_v2",
    "MobileNetV3Small": "mobilenet_v3",
    "MobileNetV3Large": "mobilenet_v3",
    "EfficientNetB0": "efficientnet",
    "EfficientNetV2B0": "efficientnet_v2",
    "ConvNeXtTiny": "convnext",
    "NASNetMobile": "nasnet",
}


def training_cost(name: str, input_size: int, epochs: int) -> float:
    """A job's relative training cost (images x pixels x the network's relative cost), for ordering
    jobs longest first."""
    return network(name).relative_cost * input_size**2 * epochs


class WeightsError(RuntimeError):
    """Weights cannot be found or do not match; the message says where to put them."""


def network(name: str) -> Network:
    if name in NETWORKS:
        return NETWORKS[name]
    if name in _OTHER_MODULES:
        return Network(name, _OTHER_MODULES[name], 224, 32)
    raise ValueError(
        f"unknown network {name!r}; use one of {', '.join(NETWORKS)} or another keras.applications "
        f"constructor ({', '.join(sorted(_OTHER_MODULES))})"
    )


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def imagenet_weights_file(name: str) -> str:
    """Where the ``fetch_weights`` rule keeps a network's ImageNet no-top weights."""
    return f"resources/weights/{name}_imagenet_notop.h5"


def fetch_imagenet_weights(
    name: str, dest, base_url: str = WEIGHTS_BASE_URL, md5: str | None = None, **fetch_kw
):
    """Download a network's ImageNet no-top weights to ``dest`` and check their md5.

    ``md5`` defaults to the one Keras publishes. A mismatching file is removed.
    """
    net = network(name)
    if net.weights_file is None:
        raise WeightsError(
            f"no ImageNet weights URL is known for {name}; give a local weights file in the config"
        )
    url = f"{base_url.rstrip('/')}/{net.weights_subdir}/{net.weights_file}"
    dest = Path(dest)
    fetch(url, dest, **fetch_kw)
    expected = md5 or net.weights_md5
    actual = md5sum(dest)
    if actual != expected:
        dest.unlink()
        raise DownloadError(
            f"{url}: md5 {actual} differs from the published {expected}; the file was removed"
        )
    return dest


def resolve_weights(
    name: str, weights: str | None, check_hash: bool = True, imagenet_file: str | Path | None = None
) -> str | None:
    """What to pass as ``weights=`` to the keras.applications constructor.

    ``None``/``"none"`` -> None; a path -> that path (must exist); ``"imagenet"`` -> the no-top
    file at ``imagenet_file`` (where the ``fetch_weights`` rule puts it) or in the Keras cache,
    else an error that says where to put it.
    """
    if weights is None or str(weights).lower() == "none":
        return None
    net = network(name)
    if str(weights) != "imagenet":
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"weights file {path} for {name} does not exist")
        return str(path)
    if net.weights_file is None:
        return "imagenet"  # Keras' own lookup for networks outside the paper's three
    candidates = ([Path(imagenet_file)] if imagenet_file else []) + [
        keras_cache_dir() / net.weights_file
    ]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise WeightsError(
            f"ImageNet weights for {name} are missing: none of {', '.join(map(str, candidates))} exists. "
            f"Run 'snakemake --cores 1 {imagenet_weights_file(name)}' (the fetch_weights rule) on a "
            f"machine with internet access, or download {net.weights_url} and put it at one of those "
            "paths (KERAS_HOME moves the Keras cache), or set weights to a local file or none in the config."
        )
    if check_hash and md5sum(path) != net.weights_md5:
        raise WeightsError(
            f"{path} does not have the md5 Keras publishes for it ({net.weights_md5}); delete it and "
            "fetch it again"
        )
    return str(path)


def preprocess_fn(name: str, channels: int = 3):
    """The network's own ``preprocess_input`` (expects RGB-like pixels in [0, 255]).

    With ``channels`` other than 3 (the stem adapter, :func:`widen_stem`), the first three channels
    are preprocessed as R, G, B and every further channel as a grey image would be: the mean of
    what ``preprocess_input`` makes of it in R, G and B (ResNet50: minus the mean of the three
    ImageNet means; the Inceptions: scaled to [-1, 1] as every channel). Works on NumPy arrays
    and TensorFlow tensors.
    """
    import importlib

    module = importlib.import_module(f"keras.applications.{network(name).module}")
    rgb = module.preprocess_input
    if channels == 3:
        return rgb
    if channels < 3:
        raise ValueError(f"the stem adapter takes 3 or more channels; got {channels}")

    def preprocess(x):
        if isinstance(x, np.ndarray):
            concat, mean = np.concatenate, lambda v: v.mean(axis=-1, keepdims=True)
        else:
            import tensorflow as tf

            concat, mean = (
                (lambda parts, axis: tf.concat(parts, axis)),
                (lambda v: tf.reduce_mean(v, -1, keepdims=True)),
            )
        parts = [rgb(x[..., :3])]
        for c in range(3, channels):
            grey = x[..., c : c + 1]
            parts.append(mean(rgb(concat([grey, grey, grey], axis=-1))))
        return concat(parts, axis=-1)

    return preprocess


def build_backbone(
    name: str,
    input_size: int,
    weights: str | None,
    imagenet_file: str | Path | None = None,
    channels: int = 3,
):
    """The network without its top, average-pooled; ``channels`` other than 3 widens its first
    convolution (:func:`widen_stem`), keeping the pretrained weights of every other layer."""
    import keras

    net = network(name)
    if input_size < net.min_size:
        raise ValueError(f"{name} needs inputs of at least {net.min_size} px; got {input_size}")
    constructor = getattr(keras.applications, name)
    resolved = resolve_weights(name, weights, imagenet_file=imagenet_file)
    if channels == 3:
        return constructor(
            include_top=False,
            weights=resolved,
            input_shape=(input_size, input_size, 3),
            pooling="avg",
        )
    import warnings

    with warnings.catch_warnings():  # keras.applications warns of anything but 1 or 3 channels
        warnings.filterwarnings(
            "ignore", message="This model usually expects 1 or 3 input channels"
        )
        wide = constructor(
            include_top=False,
            weights=None,
            input_shape=(input_size, input_size, channels),
            pooling="avg",
        )
    if resolved is None:
        return wide
    pretrained = constructor(
        include_top=False, weights=resolved, input_shape=(input_size, input_size, 3), pooling="avg"
    )
    copy_into_wide(pretrained, wide)
    return wide


def stem_layer(model):
    """The first layer with a convolution kernel (the one that sees the input channels); refused
    where a layer that mixes channels comes before it (a network normalising its own input)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, (keras.layers.Normalization, keras.layers.Rescaling)):
            raise ValueError(
                f"{model.name} normalises its input inside the model ({layer.name}): the stem adapter "
                "supports networks whose first weighted layer is a convolution (ResNet, Inception)"
            )
        if isinstance(layer, keras.layers.Conv2D):
            return layer
    raise ValueError(f"{model.name} has no convolution")


def widen_stem(kernel: np.ndarray, channels: int) -> np.ndarray:
    """A first-convolution kernel ``(kh, kw, 3, filters)`` widened to ``channels`` inputs: the first
    three keep the RGB kernels, each further one gets their mean, and all are scaled by
    ``3 / channels`` so that activations keep their size (equal inputs on every channel give the
    original response). ``channels == 3`` returns the kernel unchanged.

    >>> k = np.arange(2 * 3, dtype=float).reshape(1, 1, 3, 2)
    >>> w = widen_stem(k, 5)
    >>> w.shape, bool(np.allclose(w.sum(axis=2), k.sum(axis=2)))
    ((1, 1, 5, 2), True)
    """
    if kernel.ndim != 4 or kernel.shape[2] != 3:
        raise ValueError(f"a stem kernel has shape (kh, kw, 3, filters); got {kernel.shape}")
    if channels < 3:
        raise ValueError(f"the stem adapter takes 3 or more channels; got {channels}")
    extra = np.repeat(kernel.mean(axis=2, keepdims=True), channels - 3, axis=2)
    return (np.concatenate([kernel, extra], axis=2) * (3.0 / channels)).astype(kernel.dtype)


def copy_into_wide(pretrained, wide) -> None:
    """Copy every layer's weights of a 3-channel network into the same network built for more
    channels, layer by layer in order, widening the stem's kernel (:func:`widen_stem`)."""
    stem = stem_layer(pretrained)
    channels = int(wide.input.shape[-1])
    layers_a = [layer for layer in pretrained.layers if layer.weights]
    layers_b = [layer for layer in wide.layers if layer.weights]
    if len(layers_a) != len(layers_b):
        raise ValueError(
            f"{wide.name}: {len(layers_b)} weighted layers, the pretrained network {len(layers_a)}"
        )
    for a, b in zip(layers_a, layers_b):
        values = a.get_weights()
        if a is stem:
            values = [widen_stem(values[0], channels), *values[1:]]
        if type(a) is not type(b) or [v.shape for v in values] != [
            tuple(w.shape) for w in b.weights
        ]:
            raise ValueError(f"{wide.name}: layer {b.name} does not match the pretrained {a.name}")
        b.set_weights(values)


def build_classifier(
    name: str,
    n_classes: int,
    input_size: int,
    weights: str | None = None,
    l2: float = 0.0,
    batchnorm_momentum: float | None = None,
    imagenet_file: str | Path | None = None,
    head: str = "softmax",
    channels: int = 3,
):
    """Backbone + global average pooling + dense softmax (``head="softmax"``, one unit per
    class) or one sigmoid unit (``head="sigmoid"``, two classes: the probability of the second).
    Returns a keras.Model.

    ``batchnorm_momentum`` overrides the backbone's BatchNormalization momentum (useful when
    training from scratch for few steps, where the default 0.99 leaves the moving statistics
    far from the data). ``channels`` other than 3: the stem adapter (:func:`build_backbone`).
    """
    import keras

    if head not in ("softmax", "sigmoid"):
        raise ValueError(f"unknown head {head!r}; use 'softmax' or 'sigmoid'")
    if head == "sigmoid" and n_classes != 2:
        raise ValueError(f"a sigmoid head classifies two classes; the tensors have {n_classes}")
    backbone = build_backbone(name, input_size, weights, imagenet_file, channels)
    if batchnorm_momentum is not None:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(batchnorm_momentum)
    regularizer = keras.regularizers.L2(l2) if l2 else None
    outputs = keras.layers.Dense(
        1 if head == "sigmoid" else n_classes,
        activation=head,
        kernel_regularizer=regularizer,
        dtype="float32",
        name="moa",
    )(backbone.output)
    return keras.Model(backbone.input, outputs, name=f"{name}_moa")


def embedding_model(model):
    """The same model cut before the softmax: global-average-pooled features."""
    import keras

    return keras.Model(model.input, model.get_layer("moa").input)
