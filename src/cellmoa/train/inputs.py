"""What every input pipeline shares: reading crops, feeding channels, ordering epochs.

The two pipelines (:mod:`cellmoa.train.tf_pipeline`, :mod:`cellmoa.train.numpy_pipeline`;
:func:`cellmoa.train.pipeline.make_dataset` picks one) read crops with a :class:`CropReader`,
learn what to make of them from an :class:`InputSpec`, and feed a training fold's crops in the
order :func:`epoch_order` gives every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from cellmoa.train import models
from cellmoa.train.augment import augmentations


def channel_selection(input_channels, stored: list[str]) -> list[int] | None:
    """Indices of the stored channels that feed the network's 3 inputs.

    Parameters
    ----------
    input_channels : list of (str or None) or None
        Three stored channel names, None for a zero channel; or None for the stored channels as
        they are.
    stored : list of str
        The tensors' channel names.

    Returns
    -------
    list of int or None
        One index per network input (-1 = a zero channel), or None.

    Examples
    --------
    >>> channel_selection(["Mito", None, "DNA"], ["DNA", "ER", "Mito"])
    [2, -1, 0]
    """
    if input_channels is None:
        return None
    if len(input_channels) != 3:
        raise ValueError(
            "input_channels must name 3 channels (or null for a zero channel); "
            f"got {input_channels}"
        )
    unknown = [c for c in input_channels if c is not None and c not in stored]
    if unknown:
        raise ValueError(
            f"input channel(s) {', '.join(unknown)} are not in the tensors' channels "
            f"{', '.join(stored)}"
        )
    return [-1 if c is None else stored.index(c) for c in input_channels]


class CropReader:
    """Reads crops from an HDF5 file one by one, the file opened lazily in the reading thread.

    h5py reads by index list are ~60x slower than the same samples read one at a time.

    Parameters
    ----------
    path : Path
        The tensors file (``/images`` (N, H, W, C)).
    """

    def __init__(self, path: Path):
        self.path = str(path)
        self._file = None
        self._images = None

    def __call__(self, indices) -> np.ndarray:
        """The crops at ``indices``, stacked."""
        if self._images is None:
            self._file = h5py.File(self.path, "r")
            self._images = self._file["images"]
        return np.stack([self._images[int(i)] for i in indices])

    def layout(self) -> tuple[tuple[int, ...], np.dtype, list[str]]:
        """(shape of one crop, dtype, channel names) of the images, in one opening of the file."""
        with h5py.File(self.path, "r") as f:
            images = f["images"]
            return (
                tuple(images.shape[1:]),
                np.dtype(images.dtype),
                [str(c) for c in f.attrs.get("channels", [])],
            )


def network_input(settings, stored: list[str], n_stored: int) -> tuple[list[int] | None, int]:
    """How the stored channels feed the network: ``(selection, channels)``.

    ``channel_adapter: select`` (default): ``input_channels`` picks three
    (:func:`channel_selection`), or the stored channels feed it as they are, which must then be
    three. ``stem``: every stored channel feeds a network whose first convolution takes them all
    (:func:`cellmoa.train.models.widen_stem`).
    """
    if getattr(settings, "channel_adapter", "select") == "stem":
        if n_stored < 3:
            raise ValueError(
                "channel_adapter: stem widens a network to more than 3 channels; the tensors "
                f"have {n_stored} (use channel_adapter: select with input_channels, which pads "
                "with zero channels)"
            )
        return None, n_stored
    select = channel_selection(settings.input_channels, stored)
    if select is None:
        require_three_channels(n_stored)
    return select, 3


def require_three_channels(n: int) -> None:
    """Refuse anything but 3 channels (what the networks take), with the way to map them."""
    if n != 3:
        raise ValueError(
            f"networks take 3 channels; the tensors have {n} (pick three with "
            "training.input_channels, or feed them all with training.channel_adapter: stem)"
        )


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which an epoch feeds ``n`` training crops.

    A permutation seeded by (seed, epoch), so a run resumed at any epoch feeds exactly what an
    uninterrupted run would have.

    Examples
    --------
    >>> bool((epoch_order(5, 0, 3) == epoch_order(5, 0, 3)).all())
    True
    """
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches of ``batch_size`` that feed ``n`` crops (the last one may be short).

    Examples
    --------
    >>> steps_per_epoch(10, 4)
    3
    """
    return -(-n // batch_size)


def backend_of(settings) -> str:
    """The Keras backend a job's settings name (``tensorflow`` unless given)."""
    return getattr(settings, "backend", None) or "tensorflow"


def index_arrays(indices, labels) -> tuple[np.ndarray, np.ndarray]:
    """The crop indices and their labels as int64 arrays (labels 0 when None)."""
    indices = np.asarray(indices, np.int64)
    if labels is None:
        return indices, np.zeros(len(indices), np.int64)
    return indices, np.asarray(labels, np.int64)


@dataclass(frozen=True)
class InputSpec:
    """What a pipeline makes of the stored crops, from the tensors' layout and the settings."""

    #: shape of one stored crop (H, W, C)
    shape: tuple[int, ...]
    #: the stored dtype (uint8 tensors are pixels already)
    dtype: np.dtype
    #: the stored channels feeding the network's inputs (:func:`network_input`), or None
    select: list[int] | None
    #: the network's (square) input size
    size: int
    #: the network's own ``preprocess_input`` (:func:`cellmoa.train.models.preprocess_fn`)
    preprocess: Callable
    #: the augmentations applied (none when not training)
    which: tuple[str, ...]
    #: z-scores become pixels as 127.5 + pixel_scale * z
    pixel_scale: float

    @classmethod
    def read(cls, tensors: Path, settings, training: bool) -> InputSpec:
        """The spec of the tensors file ``tensors`` fed with ``settings``."""
        shape, dtype, channels = CropReader(tensors).layout()
        select, n_input = network_input(settings, channels, shape[-1])
        return cls(
            shape=shape,
            dtype=dtype,
            select=select,
            size=int(settings.input_size),
            preprocess=models.preprocess_fn(settings.network, n_input),
            which=augmentations(settings.augment) if training else (),
            pixel_scale=settings.pixel_scale,
        )
