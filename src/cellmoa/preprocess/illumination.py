"""Illumination functions per plate and channel (Singh et al. 2014).

As CellProfiler's CorrectIlluminationCalculate with "Regular" images, "Each" = per plate, and
division:

1. the mean of all the plate's images of a channel, computed streaming (a running sum);
2. smoothed with a median filter (default) or a Gaussian, on a block-averaged copy for speed;
3. divided by a robust minimum (the 2nd percentile) and floored at 1, so the function is >= 1
   and correcting (dividing by it) never brightens the dimmest region beyond its own level.

``results/illumination/<plate>.h5``: ``/function`` (C, H, W) float32 with the ``channels``,
``plate`` and parameter attributes; ``/reference_mean`` and ``/reference_std`` (G, C), the
statistics of the plate's corrected reference fields per group (cell line, ``reference_groups``)
computed in the same read (:func:`cellmoa.preprocess.jobs.illumination_pass`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from scipy import ndimage
from skimage.transform import resize

from cellmoa import __version__
from cellmoa.files import atomic_path


@dataclass(frozen=True)
class IlluminationParams:
    """How a plate's illumination functions are estimated (``illumination:`` config section)."""

    #: "median" (robust to cells) or "gaussian"
    smoothing: str = "median"
    #: filter size as a fraction of the image's shorter side (median: window; gaussian: 1/3 of it
    #: is sigma)
    size: float = 0.25
    #: percentile of the smoothed mean that becomes 1
    robust_percentile: float = 2.0
    #: the smoothing runs on a block-averaged copy whose shorter side is about this many pixels
    working_size: int = 64

    @classmethod
    def from_dict(cls, values: dict | None) -> "IlluminationParams":
        """The parameters of a config section (None = the defaults)."""
        return cls(**(values or {}))


class RunningMean:
    """Mean of equally shaped 2-D images, one at a time (O(1) images in memory).

    Images of 8- or 16-bit integers are summed exactly in uint32 (twice as fast as float64 here)
    while no sum can overflow (65,536 images), then in float64; anything else in float64.
    """

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.count = 0

    def add(self, image: np.ndarray) -> None:
        """Add one image to the running sum."""
        image = np.asarray(image)
        if self.total is None:
            small_int = image.dtype.kind == "u" and image.dtype.itemsize <= 2
            self.total = np.zeros(image.shape, np.uint32 if small_int else np.float64)
        elif image.shape != self.total.shape:
            raise ValueError(f"image of shape {image.shape} in a mean of shape {self.total.shape}")
        if self.total.dtype == np.uint32 and not (
            image.dtype.kind == "u" and image.dtype.itemsize <= 2 and self.count < 65536
        ):
            self.total = self.total.astype(np.float64)
        np.add(self.total, image, out=self.total, casting="unsafe")
        self.count += 1

    @property
    def mean(self) -> np.ndarray:
        """The mean of the images added; refused before any was."""
        if self.total is None or self.count == 0:
            raise ValueError("no images were added")
        return self.total / self.count


def _block_factor(shape: tuple[int, int], working_size: int) -> int:
    return max(1, min(shape) // max(1, working_size))


def smooth(mean: np.ndarray, params: IlluminationParams) -> np.ndarray:
    """Smooth a mean image; returns an array of the same shape."""
    factor = _block_factor(mean.shape, params.working_size)
    h, w = mean.shape
    hh, ww = h // factor * factor, w // factor * factor
    small = mean[:hh, :ww].reshape(hh // factor, factor, ww // factor, factor).mean(axis=(1, 3))
    window = max(3, int(round(params.size * min(small.shape))) | 1)
    if params.smoothing == "median":
        smoothed = ndimage.median_filter(small, size=window, mode="reflect")
    elif params.smoothing == "gaussian":
        smoothed = ndimage.gaussian_filter(small, sigma=window / 3.0, mode="reflect")
    else:
        raise ValueError(
            f"unknown illumination smoothing {params.smoothing!r}; use 'median' or 'gaussian'"
        )
    if factor == 1 and (hh, ww) == (h, w):
        return smoothed
    return resize(smoothed, (h, w), order=1, mode="edge", anti_aliasing=False, preserve_range=True)


def illumination_function(mean: np.ndarray, params: IlluminationParams) -> np.ndarray:
    """The illumination function (float32, >= 1) from a plate's mean image of one channel."""
    smoothed = smooth(np.asarray(mean, np.float64), params)
    floor = np.percentile(smoothed, params.robust_percentile)
    if not np.isfinite(floor) or floor <= 0:
        raise ValueError(
            "the smoothed mean image has a non-positive robust minimum; the plate's images are "
            "empty or black"
        )
    return np.maximum(smoothed / floor, 1.0).astype(np.float32)


def correct(image: np.ndarray, function: np.ndarray) -> np.ndarray:
    """Apply an illumination function by division (float32 result)."""
    if image.shape != function.shape:
        raise ValueError(
            f"image shape {image.shape} does not match the illumination function's {function.shape}"
        )
    return image.astype(np.float32) / function


def write_illumination(
    path: Path,
    plate: str,
    functions: dict[str, np.ndarray],
    params: IlluminationParams,
    reference_stats: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> None:
    """Write a plate's illumination functions (and reference statistics) to ``path``.

    ``/function`` (C, H, W) float32 plus ``channels``, ``plate`` and the parameters as attributes;
    with ``reference_stats``, ``/reference_mean`` and ``/reference_std`` (G, C) of the corrected
    reference images per cell line (attribute ``reference_groups``).
    """
    channels = list(functions)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("function", data=np.stack([functions[c] for c in channels]))
        f.attrs["channels"] = channels
        f.attrs["plate"] = plate
        for key, value in vars(params).items():
            f.attrs[key] = value
        if reference_stats:
            groups = sorted(reference_stats)
            f.attrs["reference_groups"] = groups
            f.create_dataset(
                "reference_mean", data=np.stack([reference_stats[g][0] for g in groups])
            )
            f.create_dataset(
                "reference_std", data=np.stack([reference_stats[g][1] for g in groups])
            )
        f.attrs["cellmoa_version"] = __version__


def read_illumination(path: Path) -> dict[str, np.ndarray]:
    """The illumination function per channel of an illumination file."""
    with h5py.File(path, "r") as f:
        return {c: f["function"][i] for i, c in enumerate(f.attrs["channels"])}


def read_reference_statistics(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The reference statistics an illumination file holds ({} when it holds none)."""
    with h5py.File(path, "r") as f:
        if "reference_mean" not in f:
            return {}
        groups = [str(g) for g in f.attrs["reference_groups"]]
        return {g: (f["reference_mean"][i], f["reference_std"][i]) for i, g in enumerate(groups)}


@dataclass(frozen=True)
class IlluminationQC:
    """Plausibility checks of a plate's illumination functions (``preprocessing.illumination_qc``).

    Real microscope fall-off is smooth and moderate: BBBC021's fields are ~2-3x brighter in the
    centre than in the corners. A function that is much steeper, or that has structure at the
    scale of cells (a mean of too few fields still shows its cells through the smoothing), would
    divide morphology into the images instead of removing shading; it is reported, not refused.

    - ``max_ratio``: warn when a channel's max/min exceeds it;
    - ``max_structure``: warn when the function departs from its best smooth (polynomial) surface
      by more than this (root-mean-square relative residual around a degree-4 polynomial surface,
      on a 64-pixel copy);
    - ``min_fields``: warn when fewer fields fed the plate's functions.

    >>> y, x = np.mgrid[0:64, 0:80] / 64.0
    >>> smooth = 2.0 - (x - 0.6) ** 2 - (y - 0.5) ** 2
    >>> IlluminationQC().check({"DAPI": smooth / smooth.min()}, n_fields=240)["warnings"].tolist()
    ['']
    """

    max_ratio: float = 4.0
    max_structure: float = 0.05
    min_fields: int = 20

    @classmethod
    def from_dict(cls, values: dict | None) -> "IlluminationQC":
        """The thresholds of a config section (None = the defaults)."""
        return cls(**(values or {}))

    def check(self, functions: dict[str, np.ndarray], n_fields: int):
        """One row per channel: channel, n_fields, max_min_ratio, structure, warnings.

        ``warnings`` is "" where there are none.
        """
        import pandas as pd

        rows = []
        for channel, function in functions.items():
            f = np.asarray(function, np.float64)
            ratio = float(f.max() / f.min())
            structure = _structure(f)
            warnings = []
            if ratio > self.max_ratio:
                warnings.append(
                    f"max/min {ratio:.1f} is above {self.max_ratio:g} (real fall-off is ~2-3x)"
                )
            if structure > self.max_structure:
                warnings.append(
                    f"{100 * structure:.1f}% structure beyond a smooth surface (above "
                    f"{100 * self.max_structure:g}%): "
                    "cells showing through? more fields or a larger smoothing size help"
                )
            if n_fields < self.min_fields:
                warnings.append(f"only {n_fields} fields fed it (fewer than {self.min_fields})")
            rows.append(
                {
                    "channel": channel,
                    "n_fields": int(n_fields),
                    "max_min_ratio": ratio,
                    "structure": structure,
                    "warnings": "; ".join(warnings),
                }
            )
        return pd.DataFrame(
            rows, columns=["channel", "n_fields", "max_min_ratio", "structure", "warnings"]
        )


def _structure(function: np.ndarray, size: int = 64) -> float:
    """RMS relative residual of ``function`` around its degree-4 polynomial surface.

    The least-squares polynomial surface of degree 4: smooth shading of any common shape fits it;
    cell-scale structure does not.
    """
    h, w = function.shape
    factor = max(1, min(h, w) // size)
    hh, ww = h // factor * factor, w // factor * factor
    small = function[:hh, :ww].reshape(hh // factor, factor, ww // factor, factor).mean(axis=(1, 3))
    y, x = np.mgrid[0 : small.shape[0], 0 : small.shape[1]]
    y = y.ravel() / max(1, small.shape[0] - 1)
    x = x.ravel() / max(1, small.shape[1] - 1)
    design = np.stack([x**i * y**j for i in range(5) for j in range(5 - i)], axis=1)  # degree <= 4
    values = small.ravel()
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    fit = design @ coef
    return float(np.sqrt(np.mean((values / fit - 1.0) ** 2)))
