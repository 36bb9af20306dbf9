"""Batch effects of synthetic weeks and plates (``batch_effects`` of a synthesizer spec).

Batch effects (:class:`BatchEffects`; all off by default, on in the demo) make the weeks differ
the way real batches do: per-week and per-plate gains and background offsets per channel, a stain
that fades from week to week and along each plate's acquisition order, a defocus blur, a cell
density and autofluorescent debris that differ between weeks. Gains, offsets and the
week-to-week fading are affine per plate and channel, so the per-plate z-score of the DMSO fields
(:mod:`cellmoa.preprocess.normalization`) removes most of them; the within-plate drift, the blur,
the density and the debris survive it, as on real screens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cellmoa.data.datasets.bbbc021 import CHANNELS
from cellmoa.data.synthetic.rendering import from_settings, stable_seed


@dataclass(frozen=True)
class BatchEffects:
    """Effect sizes of the batch effects.

    Each week's values are spread evenly over the range (``-x..x`` or ``0..x``) in an order drawn
    from the seed, so that two weeks always differ by the whole range; a plate adds a third of the
    week's spread at random. 0 turns an effect off.

    Examples
    --------
    >>> effects = BatchEffects(blur=2.0, density=0.2)
    >>> [round(effects.week(0, w, 2)["blur"], 2) for w in (1, 2)]
    [0.0, 2.0]
    >>> effects.week(0, 1, 2)["density"] in (0.8, 1.2)
    True
    """

    #: each week's gain per channel: log-gain spread over -x..x (0.2: gains 0.82..1.22)
    channel_gain: float = 0.0
    #: each week's background offset per channel, spread over -x..x, as a fraction of the
    #: background
    channel_offset: float = 0.0
    #: fraction of the stains' signal (not the background) lost per week, stain by stain 0.5-1.5x
    #: of it
    stain_fade: float = 0.0
    #: fraction of the stains' signal lost from the first well of a plate to the last
    #: (acquisition order)
    plate_drift: float = 0.0
    #: defocus: a Gaussian blur of the signal, sigma (pixels) spread over weeks in 0..x
    blur: float = 0.0
    #: cells per field: each week's density factor spread over 1-x..1+x
    density: float = 0.0
    #: autofluorescent debris (precipitate, dust of a plate lot): out-of-focus specks per field,
    #: each week's count spread over 0..x, brightest in DAPI
    debris: float = 0.0

    @classmethod
    def from_dict(cls, values: dict | None) -> "BatchEffects":
        """The effects of a ``batch_effects`` config section (unknown keys are an error)."""
        return from_settings(cls, values, "batch effect")

    def week(self, seed: int, week: int, weeks: int) -> dict:
        """The effects of one week.

        Parameters
        ----------
        seed : int
            The dataset's seed (it orders the weeks).
        week : int
            The week, 1-based.
        weeks : int
            How many weeks there are.

        Returns
        -------
        dict
            ``gain``/``offset``/``stain`` per channel, ``blur`` (sigma in pixels), ``density``
            (factor), ``debris`` (mean specks per field).
        """

        def spread(name: str, centred: bool) -> float:
            order = np.random.default_rng(stable_seed(seed, "batch-order", name)).permutation(weeks)
            t = float(order[week - 1]) / (weeks - 1) if weeks > 1 else 0.0
            return 2.0 * t - 1.0 if centred else t

        out = {"gain": {}, "offset": {}, "stain": {}}
        for i, channel in enumerate(CHANNELS):
            out["gain"][channel] = float(
                np.exp(self.channel_gain * spread(f"gain-{channel}", True))
            )
            out["offset"][channel] = self.channel_offset * spread(f"offset-{channel}", True)
            rate = self.stain_fade * (0.5 + 0.5 * i)
            out["stain"][channel] = float((1.0 - min(rate, 0.95)) ** (week - 1))
        out["blur"] = self.blur * spread("blur", False)
        out["density"] = 1.0 + self.density * spread("density", True)
        out["debris"] = self.debris * spread("debris", False)
        return out

    def plate(self, rng: np.random.Generator, effects: dict) -> dict:
        """A plate's own share: a third of the week's gain and offset spread, drawn from ``rng``."""
        out = {k: dict(v) if isinstance(v, dict) else v for k, v in effects.items()}
        for channel in CHANNELS:
            out["gain"][channel] *= float(np.exp(self.channel_gain / 3.0 * rng.uniform(-1, 1)))
            out["offset"][channel] += self.channel_offset / 3.0 * float(rng.uniform(-1, 1))
        return out


#: how bright debris is in each stain's channel, relative to DAPI
DEBRIS_WEIGHTS = {"DAPI": 1.0, "Tubulin": 0.6, "Actin": 0.4}


def add_debris(rng: np.random.Generator, layers: dict[str, np.ndarray], mean_count: float) -> None:
    """Add out-of-focus autofluorescent specks to a field's signal layers, in place.

    A Poisson number of Gaussian blobs (sigma 1.5-4 px, amplitude 0.3-0.9), in every channel
    (DAPI brightest, :data:`DEBRIS_WEIGHTS`).
    """
    h, w = next(iter(layers.values())).shape
    for _ in range(rng.poisson(mean_count)):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        sigma, amplitude = rng.uniform(1.5, 4.0), rng.uniform(0.3, 0.9)
        r = int(np.ceil(4 * sigma))
        rows, cols = (
            slice(max(int(cy) - r, 0), min(int(cy) + r + 1, h)),
            slice(max(int(cx) - r, 0), min(int(cx) + r + 1, w)),
        )
        yy, xx = np.ogrid[rows, cols]  # the blob's window only
        blob = amplitude * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        for channel, weight in DEBRIS_WEIGHTS.items():
            layers[channel][rows, cols] += weight * blob


def batch_effects(spec, week: int, plate: str) -> dict:
    """The batch effects of one plate (see :class:`BatchEffects`); neutral values when off."""
    effects = spec.batch_effects.week(spec.seed, week, spec.weeks)
    rng = np.random.default_rng(stable_seed(spec.seed, "plate-effects", plate))
    return spec.batch_effects.plate(rng, effects)
