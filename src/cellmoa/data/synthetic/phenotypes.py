"""MoA phenotypes of synthetic cells, and one field of such cells in BBBC021's three stains.

A phenotype is a dict of :data:`PARAMS`, factors relative to DMSO (1.0 = unchanged). An MoA's
phenotype is its archetype (:data:`ARCHETYPES`, what BBBC021's MoAs look like, exaggerated; a
deterministic one derived from the name for any other MoA), varied from compound to compound
inside the MoA and growing with the dose. :func:`render_field` draws the cells of one field of
view (nuclear size, shape, brightness and count; tubulin amount and texture; actin rings and
puncta) as signal layers in ``DAPI``, ``Tubulin`` and ``Actin``; the synthesizers add the
microscope (:mod:`cellmoa.data.synthetic.rendering`) and the batch effects
(:mod:`cellmoa.data.synthetic.batches`).
"""

from __future__ import annotations

import numpy as np

from cellmoa.data.datasets.bbbc021 import CHANNELS
from cellmoa.data.synthetic.rendering import (
    cell_window,
    nucleus_mask,
    smooth_noise,
    soft_inside,
    stable_seed,
)

#: Phenotype parameters relative to DMSO (1.0 = unchanged).
#: nucleus_size, nucleus_intensity, elongation, density, cytoplasm_size,
#: tubulin_intensity, tubulin_texture, actin_intensity, actin_ring, actin_puncta
PARAMS = (
    "nucleus_size",
    "nucleus_intensity",
    "elongation",
    "density",
    "cytoplasm_size",
    "tubulin_intensity",
    "tubulin_texture",
    "actin_intensity",
    "actin_ring",
    "actin_puncta",
)
DMSO_PHENOTYPE = dict.fromkeys(PARAMS, 1.0)

#: Archetypes for BBBC021's 12 MoAs (what the real phenotypes look like, exaggerated).
ARCHETYPES = {
    "Actin disruptors": dict(
        actin_ring=0.2, actin_puncta=4.0, actin_intensity=1.3, cytoplasm_size=0.8
    ),
    "Aurora kinase inhibitors": dict(
        nucleus_size=1.7, nucleus_intensity=1.4, density=0.6, elongation=1.3
    ),
    "Cholesterol-lowering": dict(cytoplasm_size=0.75, actin_ring=1.8, tubulin_intensity=0.8),
    "DNA damage": dict(
        nucleus_size=1.6, nucleus_intensity=0.6, density=0.7, cytoplasm_size=1.15, elongation=1.25
    ),
    "DNA replication": dict(nucleus_size=1.3, density=0.75, tubulin_texture=0.5),
    "Eg5 inhibitors": dict(
        nucleus_size=0.7, nucleus_intensity=2.0, elongation=0.6, tubulin_intensity=1.8
    ),
    "Epithelial": dict(density=1.5, cytoplasm_size=0.8, actin_ring=2.2, elongation=1.4),
    "Kinase inhibitors": dict(cytoplasm_size=1.35, actin_intensity=0.6, tubulin_texture=1.8),
    "Microtubule destabilizers": dict(
        nucleus_size=0.75, nucleus_intensity=1.8, tubulin_texture=0.1, tubulin_intensity=0.5
    ),
    "Microtubule stabilizers": dict(tubulin_intensity=2.2, tubulin_texture=3.0, elongation=0.7),
    "Protein degradation": dict(nucleus_size=0.85, actin_puncta=2.5, tubulin_intensity=1.4),
    "Protein synthesis": dict(
        density=0.5, cytoplasm_size=0.7, nucleus_intensity=0.8, actin_intensity=0.6
    ),
}


def archetype(moa: str) -> dict:
    """Phenotype of an MoA: a known archetype, or a deterministic one derived from its name."""
    if moa in ARCHETYPES:
        pheno = dict(DMSO_PHENOTYPE)
        pheno.update(ARCHETYPES[moa])
        return pheno
    rng = np.random.default_rng(stable_seed("moa", moa))
    factors = np.exp(rng.normal(0.0, 0.45, len(PARAMS)))
    return dict(zip(PARAMS, factors.tolist()))


def compound_phenotype(spec, moa: str, compound: str) -> dict:
    """The MoA archetype with a compound-specific deviation.

    ``spec`` is a synthesizer spec: its ``seed`` and ``compound_variation`` are used.
    """
    base = archetype(moa)
    rng = np.random.default_rng(stable_seed(spec.seed, "compound", compound))
    jitter = np.exp(rng.normal(0.0, spec.compound_variation, len(PARAMS)))
    return {k: base[k] * j for k, j in zip(PARAMS, jitter)}


def dose_strength(concentration: float, concentrations: list[float]) -> float:
    """Effect strength in [0.75, 1]: 0.75 at the lowest dose, 1 at the highest (log-linear)."""
    lo, hi = np.log10(min(concentrations)), np.log10(max(concentrations))
    if hi == lo:
        return 1.0
    return float(0.75 + 0.25 * (np.log10(concentration) - lo) / (hi - lo))


def apply_dose(pheno: dict, strength: float) -> dict:
    """Interpolate (in log space) between DMSO and the full phenotype."""
    return {k: float(np.exp(strength * np.log(v))) for k, v in pheno.items()}


def render_field(
    rng: np.random.Generator, spec, pheno: dict, density: float = 1.0, truth: dict | None = None
) -> dict[str, np.ndarray]:
    """Signal (before illumination, background and noise) of one field, per channel, in [0, ~1].

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the cells.
    spec : SyntheticSpec or ScreenSpec
        A synthesizer spec: its ``image_height``, ``image_width``, ``cells_per_field`` and
        ``nucleus_radius``.
    pheno : dict
        The cells' phenotype (:data:`PARAMS`).
    density : float
        Multiplies the phenotype's cells per field (a batch effect).
    truth : dict, optional
        Where given, receives the ground truth (:func:`paint_truth`): ``nuclei`` and ``cells``,
        int32 label images (0 background, cell ``k`` labelled ``k`` in both). It draws nothing
        from ``rng``: the layers are the same with or without it.

    Returns
    -------
    dict
        ``DAPI``, ``Tubulin`` and ``Actin`` layers.
    """
    h, w = spec.image_height, spec.image_width
    layers = {c: np.zeros((h, w), np.float64) for c in CHANNELS}
    cyto_mask = np.zeros((h, w), np.float64)
    ring = np.zeros((h, w), np.float64)
    n_cells = rng.poisson(spec.cells_per_field * pheno["density"] * density)
    r_nuc0 = spec.nucleus_radius * pheno["nucleus_size"]
    weights = _start_truth(truth, (h, w))
    for _ in range(n_cells):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = r_nuc0 * float(np.exp(rng.normal(0, 0.12)))
        elong = pheno["elongation"] * float(np.exp(rng.normal(0, 0.1)))
        big_r = (
            2.2 * spec.nucleus_radius * pheno["cytoplasm_size"] * float(np.exp(rng.normal(0, 0.1)))
        )
        extent = int(np.ceil(max(r * np.sqrt(elong), r / np.sqrt(elong), big_r) * 1.4)) + 2
        cell = cell_window(rng, (h, w), cy, cx, extent)
        if cell is None:
            continue
        at = (cell.rows, cell.cols)
        d_cell = np.sqrt(cell.dx**2 + cell.dy**2) / big_r
        nucleus = nucleus_mask(cell, r, elong)
        body = soft_inside(d_cell, 6.0)
        if truth is not None:
            paint_truth(truth, weights, at, nucleus, np.maximum(body, nucleus))
        layers["DAPI"][at] += pheno["nucleus_intensity"] * nucleus * rng.uniform(0.8, 1.2)
        cyto_mask[at] += body * (1.0 - 0.7 * nucleus)
        ring[at] += np.exp(-((d_cell - 0.95) ** 2) / (2 * 0.12**2))
        n_puncta = (
            rng.poisson(3.0 * (pheno["actin_puncta"] - 1.0)) if pheno["actin_puncta"] > 1 else 0
        )
        for _ in range(n_puncta):
            py = cy + rng.normal(0, big_r * 0.5)
            px = cx + rng.normal(0, big_r * 0.5)
            layers["Actin"][at] += 1.5 * np.exp(
                -((cell.yy - py) ** 2 + (cell.xx - px) ** 2) / (2 * 1.2**2)
            )
    texture = smooth_noise(rng, h, w, 1.0)
    tub_tex = np.clip(1.0 + 0.35 * pheno["tubulin_texture"] * texture, 0.0, None)
    layers["Tubulin"] += 0.45 * pheno["tubulin_intensity"] * np.clip(cyto_mask, 0, 1.5) * tub_tex
    layers["Actin"] += pheno["actin_intensity"] * (
        0.25 * np.clip(cyto_mask, 0, 1.5) + 0.35 * pheno["actin_ring"] * np.clip(ring, 0, 1.5)
    )
    return layers


def _start_truth(truth: dict | None, shape: tuple[int, int]) -> dict | None:
    """Empty ground-truth label images in ``truth`` and their weights (None without truth)."""
    if truth is None:
        return None
    truth.update(nuclei=np.zeros(shape, np.int32), cells=np.zeros(shape, np.int32))
    return {"nuclei": np.zeros(shape, np.float32), "cells": np.zeros(shape, np.float32), "n": 0}


def paint_truth(truth: dict, weights: dict, at: tuple, nucleus: np.ndarray, cell: np.ndarray):
    """Label one drawn cell in the ground truth (``truth``'s label images), in place.

    A pixel belongs to an object where the object's soft mask is over 0.5 (its drawn edge); where
    two objects overlap, to the one whose soft mask is higher there (nearer its centre, in units
    of its size), so that every pixel has at most one label.

    Parameters
    ----------
    truth : dict
        ``nuclei`` and ``cells`` label images.
    weights : dict
        The soft-mask value of each pixel's current label, per label image, and ``n``: the cells
        labelled so far (this one gets ``n + 1``).
    at : tuple of slice
        The cell's window in the image.
    nucleus, cell : numpy.ndarray
        The soft masks (0..1) of the cell's nucleus and of the whole cell, over the window.
    """
    weights["n"] += 1
    label = weights["n"]
    for key, soft in (("nuclei", nucleus), ("cells", cell)):
        labels, weight = truth[key][at], weights[key][at]  # views into the images
        inside = (soft > 0.5) & (soft > weight)
        labels[inside] = label
        weight[inside] = soft[inside]
