"""The ImageNet-pretrained networks cellmoa knows, and where their weights come from.

:data:`NETWORKS` holds the paper's three keras.applications networks (input sizes, the no-top
ImageNet weights file Keras publishes and its md5, relative training cost); other
keras.applications constructors are accepted by name (:func:`network`).

Weights are ``"imagenet"``, a path to a local weights file of the backbone (no top), or ``None``.
``"imagenet"`` never downloads inside a training job (cluster nodes are often offline, and Keras'
own download has no time-out): the no-top file is fetched once, before training, by the
``fetch_weights`` rule into ``resources/weights/`` (:func:`fetch_imagenet_weights`, checked
against the md5 Keras publishes), or found in the Keras cache (``$KERAS_HOME/models``, default
``~/.keras/models``); otherwise :func:`resolve_weights` raises a clear error saying where to put
it. Nothing here imports Keras.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cellmoa.data.http import DownloadError, fetch

WEIGHTS_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications"


@dataclass(frozen=True)
class Network:
    """A keras.applications network: its module, input sizes, ImageNet weights and cost."""

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
        """Where Keras publishes the network's no-top ImageNet weights (None if it does not)."""
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
    """A job's relative training cost, for ordering jobs longest first.

    Images x pixels x the network's relative cost.
    """
    return network(name).relative_cost * input_size**2 * epochs


class WeightsError(RuntimeError):
    """Weights cannot be found or do not match; the message says where to put them."""


def network(name: str) -> Network:
    """The network called ``name``: a known one, or another keras.applications constructor."""
    if name in NETWORKS:
        return NETWORKS[name]
    if name in _OTHER_MODULES:
        return Network(name, _OTHER_MODULES[name], 224, 32)
    raise ValueError(
        f"unknown network {name!r}; use one of {', '.join(NETWORKS)} or another keras.applications "
        f"constructor ({', '.join(sorted(_OTHER_MODULES))})"
    )


def keras_cache_dir() -> Path:
    """The Keras cache of downloaded weights: ``$KERAS_HOME/models`` (``~/.keras/models``)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def md5sum(path: Path) -> str:
    """The md5 hex digest of a file, read in chunks."""
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
            f"ImageNet weights for {name} are missing: none of {', '.join(map(str, candidates))} "
            "exists. "
            f"Run 'snakemake --cores 1 {imagenet_weights_file(name)}' (the fetch_weights rule) "
            f"on a machine with internet access, or download {net.weights_url} and put it at one "
            "of those paths (KERAS_HOME moves the Keras cache), or set weights to a local file or "
            "none in the config."
        )
    if check_hash and md5sum(path) != net.weights_md5:
        raise WeightsError(
            f"{path} does not have the md5 Keras publishes for it ({net.weights_md5}); delete it "
            "and fetch it again"
        )
    return str(path)
