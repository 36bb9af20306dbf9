"""Cells grown from their nuclei over a cytoplasm stain (tubulin, actin, a cytoplasmic marker).

The method (lengths from :class:`~cellmoa.segment.settings.SegmentationSettings`, in nucleus
diameters):

1. the cell mask: the cytoplasm stain smoothed (sigma ``cell_smoothing``), an Otsu threshold of
   its log intensities (as for the nuclei, :func:`~cellmoa.segment.nuclei.threshold_mask`),
   joined with the nuclei, holes filled, and cut to ``cell_reach`` diameters from the nearest
   nucleus (a cell without a visible edge does not fill the field);
2. a watershed from the nuclei (each cell keeps its nucleus's label) over the distance to the
   nearest nucleus plus the darkness of the stain (``cell_intensity_weight``), so that two cells
   meet half-way between their nuclei, moved towards the dim border between them where the stain
   has one.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from cellmoa.segment.nuclei import log_intensity, smooth, threshold_mask
from cellmoa.segment.settings import SegmentationSettings


def cell_mask(
    cytoplasm: np.ndarray, nuclei: np.ndarray, settings: SegmentationSettings
) -> np.ndarray:
    """Where there are cells: the stain's foreground and the nuclei, near a nucleus (bool)."""
    smoothed = smooth(cytoplasm, settings.pixels(settings.cell_smoothing))
    mask = ndi.binary_fill_holes(threshold_mask(log_intensity(smoothed), settings) | (nuclei > 0))
    reach = ndi.distance_transform_edt(nuclei == 0) <= settings.pixels(settings.cell_reach)
    return mask & reach


def segment_cells(
    cytoplasm: np.ndarray, nuclei: np.ndarray, settings: SegmentationSettings | None = None
) -> np.ndarray:
    """Label the cells of one field, one per nucleus (the module docstring has the method).

    Parameters
    ----------
    cytoplasm : numpy.ndarray
        A cytoplasm stain of the field (2-D, any dtype).
    nuclei : numpy.ndarray
        The field's nuclei (int labels, :func:`~cellmoa.segment.nuclei.segment_nuclei`).
    settings : SegmentationSettings, optional
        The parameters (those the nuclei were found with).

    Returns
    -------
    numpy.ndarray
        int32 labels: cell ``k`` holds nucleus ``k``; 0 the background.

    Examples
    --------
    >>> nuclei = np.zeros((40, 60), np.int32)
    >>> nuclei[18:22, 18:22], nuclei[18:22, 38:42] = 1, 2
    >>> cytoplasm = np.full((40, 60), 100.0)
    >>> cytoplasm[8:32, 3:57] = 1000.0
    >>> cells = segment_cells(cytoplasm, nuclei, SegmentationSettings(nucleus_diameter=10))
    >>> int(cells.max()), bool((cells[nuclei > 0] == nuclei[nuclei > 0]).all())
    (2, True)
    >>> int(cells[20, 28]), int(cells[20, 32]), int(cells[20, 5])
    (1, 2, 0)
    """
    settings = settings or SegmentationSettings()
    nuclei = nuclei.astype(np.int32)
    if nuclei.max() == 0:
        return np.zeros(nuclei.shape, np.int32)
    mask = cell_mask(cytoplasm, nuclei, settings)
    distance = ndi.distance_transform_edt(nuclei == 0) / settings.nucleus_diameter
    elevation = distance
    if settings.cell_intensity_weight > 0:
        stain = log_intensity(smooth(cytoplasm, settings.pixels(settings.cell_smoothing)))
        inside = stain[mask]
        span = float(np.percentile(inside, 99) - np.percentile(inside, 1)) if inside.size else 1.0
        elevation = distance - settings.cell_intensity_weight * stain / max(span, 1e-6)
    cells = watershed(elevation, markers=nuclei, mask=mask).astype(np.int32)
    cells[nuclei > 0] = nuclei[nuclei > 0]
    return cells
