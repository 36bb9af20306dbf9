"""One synthetic field with its ground truth: where every nucleus and cell was drawn.

For tests and benchmarks of segmentation (:mod:`cellmoa.segment`). The synthesizers do not use
it: the images a dataset writes are the same with or without it
(:func:`~cellmoa.data.synthetic.phenotypes.render_field` draws nothing more for the truth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cellmoa.data.datasets.bbbc021 import CHANNELS
from cellmoa.data.synthetic.bbbc021 import SyntheticSpec, to_camera
from cellmoa.data.synthetic.phenotypes import DMSO_PHENOTYPE, archetype, render_field
from cellmoa.data.synthetic.rendering import illumination_field, stable_seed


@dataclass
class FieldTruth:
    """A synthetic field's camera images and its true label images."""

    #: channel (``DAPI``, ``Tubulin``, ``Actin``) -> uint16 image, as BBBC021's TIFFs hold it
    images: dict
    #: int32 label image of the nuclei (0 background; labels need not be consecutive)
    nuclei: np.ndarray
    #: int32 label image of the cells; cell ``k`` holds nucleus ``k``
    cells: np.ndarray


def synthetic_field(spec: SyntheticSpec | None = None, moa: str | None = None, seed: int = 0):
    """Render one field of BBBC021-like cells and return it with its ground truth.

    The field is drawn as the BBBC021 synthesizer draws one (its phenotypes, illumination
    fall-off, camera noise), without batch effects.

    Parameters
    ----------
    spec : SyntheticSpec, optional
        Image size, nucleus radius, cells per field, illumination fall-off (the defaults: 256 x
        320, radius 4, 60 cells).
    moa : str, optional
        The cells' MoA (its archetype phenotype at full strength); None for DMSO cells.
    seed : int
        Which field (with ``spec.seed``).

    Returns
    -------
    FieldTruth
        The images and the true nuclei and cells.

    Examples
    --------
    >>> field = synthetic_field(SyntheticSpec(image_height=64, image_width=80, cells_per_field=5))
    >>> field.images["DAPI"].shape, field.images["DAPI"].dtype.name, field.nuclei.dtype.name
    ((64, 80), 'uint16', 'int32')
    >>> bool((field.nuclei > 0).any()) and bool((field.cells[field.nuclei > 0] > 0).all())
    True
    """
    spec = spec or SyntheticSpec()
    pheno = dict(DMSO_PHENOTYPE) if moa is None else archetype(moa)
    rng = np.random.default_rng(stable_seed(spec.seed, "field with truth", seed))
    truth: dict = {}
    layers = render_field(rng, spec, pheno, truth=truth)
    images = {}
    for channel in CHANNELS:
        illumination = illumination_field(
            rng, spec.image_height, spec.image_width, spec.illumination_falloff
        )
        images[channel] = to_camera(rng, layers[channel], channel, illumination, 1.0)
    return FieldTruth(images, truth["nuclei"], truth["cells"])
