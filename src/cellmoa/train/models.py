"""Keras models of the ImageNet-pretrained networks from ``keras.applications``.

The backbones get a global-average-pooling + softmax head; a stem adapter widens the first
convolution for more than three channels. Keras is imported when a model is built. The networks
and their weights: :mod:`cellmoa.train.networks`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cellmoa.train.networks import network, resolve_weights


def preprocess_fn(name: str, channels: int = 3):
    """The network's own ``preprocess_input`` (expects RGB-like pixels in [0, 255]).

    With ``channels`` other than 3 (the stem adapter, :func:`widen_stem`), the first three channels
    are preprocessed as R, G, B and every further channel as a grey image would be: the mean of
    what ``preprocess_input`` makes of it in R, G and B (ResNet50: minus the mean of the three
    ImageNet means; the Inceptions: scaled to [-1, 1] as every channel). Works on NumPy arrays
    and the backend's tensors.
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
            from keras import ops  # the backend's tensors (tf.data, or the memory mode's device)

            concat, mean = ops.concatenate, (lambda v: ops.mean(v, axis=-1, keepdims=True))
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
    """The network without its top, average-pooled.

    ``channels`` other than 3 widens its first convolution (:func:`widen_stem`), keeping the
    pretrained weights of every other layer.
    """
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
    """The first layer with a convolution kernel (the one that sees the input channels).

    Refused where a layer that mixes channels comes before it (a network normalising its own input).
    """
    import keras

    for layer in model.layers:
        if isinstance(layer, (keras.layers.Normalization, keras.layers.Rescaling)):
            raise ValueError(
                f"{model.name} normalises its input inside the model ({layer.name}): the stem "
                "adapter "
                "supports networks whose first weighted layer is a convolution (ResNet, Inception)"
            )
        if isinstance(layer, keras.layers.Conv2D):
            return layer
    raise ValueError(f"{model.name} has no convolution")


def widen_stem(kernel: np.ndarray, channels: int) -> np.ndarray:
    """A first-convolution kernel ``(kh, kw, 3, filters)`` widened to ``channels`` inputs.

    The first three keep the RGB kernels, each further one gets their mean, and all are scaled by
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
    """Copy a 3-channel network's weights into the same network built for more channels.

    Layer by layer in order, widening the stem's kernel (:func:`widen_stem`).
    """
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
    """Backbone + global average pooling + a dense head; returns a keras.Model.

    The head is a softmax (``head="softmax"``, one unit per class) or one sigmoid unit
    (``head="sigmoid"``, two classes: the probability of the second).

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
