"""How a raw pixel becomes a stored value, and a stored value a network's pixel.

The one place where those values are decided.

1. illumination correction: raw / F (F the plate's illumination function of the channel, >= 1);
2. optionally Anscombe's variance-stabilising transform 2 sqrt(x + 3/8) (the paper);
3. z-score per channel by the mean and standard deviation of the plate's reference fields of the
   same cell line (BBBC021: the DMSO fields; a dataset without controls: all of the cell line's
   fields), over all their pixels;
4. storage: float16 z-scores, or (``stored_dtype: uint8``) each field min-max scaled over all its
   channels to 0..255 (the paper's 8-bit images);
5. at training time, a z-score becomes a network pixel ``127.5 + pixel_scale * z`` clipped to
   [0, 255] (:func:`z_to_pixels`); uint8 tensors are pixels already (:func:`pixels_to_z` maps
   them to z-like values that come back unchanged).

:class:`FieldNormalizer` is the fit/transform object: ``fit`` on the reference fields of a group
(cell line), ``transform`` one field's raw channel images. Without Anscombe its statistics can
come from :class:`ReferenceSums` gathered during the illumination pass (no second read of the
plate), since correction is a per-pixel division: sum(x / F) = sum_p S_p / F_p.

Examples
--------
>>> import numpy as np
>>> functions = {"DAPI": np.ones((2, 2), np.float32)}
>>> norm = FieldNormalizer(functions, ("DAPI",))
>>> _ = norm.fit("MCF-7", [[np.array([[0, 2], [0, 2]], np.uint16)]])
>>> norm.transform([np.array([[1, 3], [1, 3]], np.uint16)], "MCF-7")[..., 0]
array([[0., 2.],
       [0., 2.]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from cellmoa.preprocess.illumination import correct

#: the network pixel a z-score of 0 maps to (the middle of 0..255)
PIXEL_CENTRE = 127.5
PIXEL_RANGE = (0.0, 255.0)
STORED_DTYPES = ("float16", "uint8")


@dataclass(frozen=True)
class Normalization:
    """The value-deciding settings of ``preprocessing.normalization``."""

    #: variance-stabilising Anscombe transform 2 sqrt(x + 3/8) after illumination correction (the
    #: paper)
    anscombe: bool = False
    #: "float16": the z-scores as they are; "uint8": each field's z-scores min-max scaled to
    #: 0..255 over all its channels (the paper's 8-bit images)
    stored_dtype: str = "float16"

    def __post_init__(self):
        if self.stored_dtype not in STORED_DTYPES:
            raise ValueError(
                f"stored_dtype must be 'float16' or 'uint8', not {self.stored_dtype!r}"
            )

    def describe(self, reference_name: str) -> str:
        """The normalisation in words (stored with the tensors)."""
        return (
            "illumination-corrected"
            + (", Anscombe-transformed" if self.anscombe else "")
            + f", z-score per channel by the plate's {reference_name} of the same cell line"
        )


def anscombe(x: np.ndarray) -> np.ndarray:
    """Anscombe's variance-stabilising transform 2 sqrt(x + 3/8)."""
    return 2.0 * np.sqrt(np.maximum(x, 0.0) + 0.375)


def to_uint8(field: np.ndarray) -> np.ndarray:
    """The paper's scaling to 8 bits.

    A field's values min-max mapped to 0..255 over all its channels, rounded (a constant field
    becomes 0).
    """
    lo, hi = float(field.min()), float(field.max())
    scaled = (field - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(field)
    return np.rint(scaled).astype(np.uint8)


def z_to_pixels(z, pixel_scale: float):
    """Network pixels (before clipping to :data:`PIXEL_RANGE`) from z-scores; any array type."""
    return PIXEL_CENTRE + pixel_scale * z


def pixels_to_z(pixels, pixel_scale: float):
    """The inverse of :func:`z_to_pixels`.

    8-bit tensors enter the pipeline as z-like values so that they pass the same augmentations and
    come back as the same pixels.
    """
    return (pixels - PIXEL_CENTRE) / pixel_scale


def corrected_field(
    raws: list[np.ndarray], channels, functions, use_anscombe: bool = False
) -> np.ndarray:
    """A field's raw channel images illumination-corrected (and Anscombe-transformed).

    Returns an (H, W, C) float32 array.
    """
    field = np.stack([correct(raw, functions[c]) for raw, c in zip(raws, channels)], axis=-1)
    return anscombe(field).astype(np.float32) if use_anscombe else field


class ReferenceSums:
    """Per-pixel sums of a group's raw reference images, per channel (float64).

    The sum and the sum of squares, so that the mean and standard deviation of the *corrected*
    images (raw / F) follow exactly once the illumination function F is known: sum(x / F) = sum_p
    S_p / F_p and sum((x / F)^2) = sum_p Q_p / F_p^2.
    """

    def __init__(self, channels):
        self.channels = list(channels)
        self.count = 0
        self.total: dict[str, np.ndarray] = {}
        self.total_sq: dict[str, np.ndarray] = {}

    def add(self, images: list[np.ndarray]) -> None:
        """Add one reference field's raw channel images to the sums."""
        for channel, image in zip(self.channels, images):
            if channel not in self.total:
                self.total[channel] = np.zeros(image.shape, np.float64)
                self.total_sq[channel] = np.zeros(image.shape, np.float64)
            wide = image.astype(np.float64)
            self.total[channel] += wide
            wide *= wide
            self.total_sq[channel] += wide
        self.count += 1

    def statistics(self, functions: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) per channel of the corrected images."""
        mean, std = [], []
        for channel in self.channels:
            f = functions[channel].astype(np.float64)
            n = self.count * f.size
            m = float(np.sum(self.total[channel] / f)) / n
            ex2 = float(np.sum(self.total_sq[channel] / (f * f))) / n
            mean.append(m)
            std.append(np.sqrt(max(ex2 - m * m, 0.0)))
        return np.asarray(mean, np.float32), np.asarray(std, np.float32)


class FieldNormalizer:
    """Corrects and z-scores fields of a plate, one group (cell line) at a time.

    With the plate's illumination functions and the statistics of its reference fields.

    Parameters
    ----------
    functions : dict
        Illumination function per channel ((H, W) float32, >= 1).
    channels : sequence of str
        Channel order of the raw images passed to :meth:`fit` and :meth:`transform`.
    normalization : Normalization
        Anscombe and storage settings.
    """

    def __init__(
        self,
        functions: dict[str, np.ndarray],
        channels,
        normalization: Normalization = Normalization(),
    ):
        self.functions = functions
        self.channels = tuple(channels)
        self.normalization = normalization
        self.shape = next(iter(functions.values())).shape
        #: group -> (mean, std) per channel, float32
        self.statistics: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._scales: dict[str, list[np.ndarray]] = {}

    def set_statistics(self, group: str, mean, std) -> FieldNormalizer:
        """Use given statistics of the corrected reference fields.

        For example those of a :class:`ReferenceSums`.
        """
        mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        if np.any(~np.isfinite(std)) or np.any(std <= 0):
            raise ValueError(
                f"a channel of the reference images of {group!r} is constant; cannot standardise"
            )
        self.statistics[group] = (mean, std)
        if not self.normalization.anscombe:
            # (x / F - mean) / std = x * (1 / (F * std)) - mean / std: one multiply-add per pixel
            self._scales[group] = [
                (1.0 / (self.functions[c].astype(np.float64) * std[k])).astype(np.float32)
                for k, c in enumerate(self.channels)
            ]
        return self

    def fit(self, group: str, fields: Iterable[list[np.ndarray]]) -> FieldNormalizer:
        """Statistics of ``fields`` after correction (and Anscombe), per channel.

        Each field is a list of raw channel images; the statistics run over all their pixels.
        """
        total = np.zeros(len(self.channels))
        total_sq = np.zeros(len(self.channels))
        count = 0
        for raws in fields:
            flat = corrected_field(raws, self.channels, self.functions, self.normalization.anscombe)
            flat = flat.reshape(-1, flat.shape[-1])
            total += flat.sum(axis=0, dtype=np.float64)
            total_sq += np.square(flat).sum(axis=0, dtype=np.float64)
            count += flat.shape[0]
        if count == 0:
            raise ValueError(f"none of the reference (control) images of {group!r} could be read")
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        return self.set_statistics(group, mean, std)

    def transform(self, raws: list[np.ndarray], group: str) -> np.ndarray:
        """One field's raw channel images as (H, W, C) float32 z-scores."""
        mean, std = self.statistics[group]
        if self.normalization.anscombe:
            return (corrected_field(raws, self.channels, self.functions, True) - mean) / std
        shifts = mean / std
        field = np.empty(tuple(self.shape) + (len(raws),), np.float32)
        plane = np.empty(self.shape, np.float32)
        for k, raw in enumerate(raws):
            np.multiply(raw, self._scales[group][k], out=plane)
            plane -= np.float32(shifts[k])
            field[..., k] = plane
        return field

    def store(self, field: np.ndarray) -> np.ndarray:
        """A (resized) z-scored field in the stored dtype."""
        return (
            to_uint8(field)
            if self.normalization.stored_dtype == "uint8"
            else field.astype(np.float16)
        )
