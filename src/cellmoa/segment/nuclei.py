"""Nuclei from the DNA stain: smoothing, an Otsu threshold of the log intensities, watershed.

The method (lengths from :class:`~cellmoa.segment.settings.SegmentationSettings`, in nucleus
diameters):

1. Gaussian smoothing (sigma ``smoothing``) against camera noise;
2. the foreground: an Otsu threshold of the log intensities (relative to the field's median), so
   that a nucleus in a corner dimmed 2.5x by the illumination fall-off is as far above the
   background as one in the centre; with ``threshold="local"`` also above the local mean
   (block ``local_block``); holes filled, objects under ``min_area`` removed;
3. touching nuclei split by a watershed from one seed per local maximum (at least
   ``seed_distance`` apart) of the stain, further smoothed by ``declump_smoothing``
   (``declump="intensity"``, the default: real clumps are dimmer between their nuclei) or of the
   distance transform (``declump="shape"``: necks between round nuclei);
4. the edges: the log threshold puts a bright nucleus's edge out in its blur, so each nucleus's
   edge is moved to ``edge`` (half) of the way from the local background up to its own
   brightness (:func:`refine_edges`); fragments under ``min_area`` removed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_local, threshold_otsu
from skimage.segmentation import watershed

from cellmoa.segment.settings import SegmentationSettings


def smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """The image as float32, Gaussian-smoothed (``sigma`` in pixels; 0 for none)."""
    smoothed = image.astype(np.float32)
    return ndi.gaussian_filter(smoothed, sigma) if sigma > 0 else smoothed


def log_intensity(smoothed: np.ndarray) -> np.ndarray:
    """An image in logs relative to its median (floored at 1/20 of the median).

    Parameters
    ----------
    smoothed : numpy.ndarray
        A 2-D float image (the smoothed stain).

    Returns
    -------
    numpy.ndarray
        float32, 0 at the median intensity.
    """
    median = float(np.median(smoothed))
    scale = median if median > 0 else max(float(smoothed.max()), 1.0) * 1e-3
    return np.log(np.maximum(smoothed / scale, 0.05)).astype(np.float32)


def threshold_mask(logs: np.ndarray, settings: SegmentationSettings) -> np.ndarray:
    """The foreground of a log image: over its Otsu threshold (and the local mean if asked).

    Returns
    -------
    numpy.ndarray
        bool, all False for a flat image (no threshold exists).
    """
    if float(logs.max()) - float(logs.min()) < 1e-6:
        return np.zeros(logs.shape, bool)
    mask = logs > threshold_otsu(logs)
    if settings.threshold == "local":
        block = max(3, int(round(settings.pixels(settings.local_block))) | 1)
        mask &= logs > threshold_local(logs, block, method="mean")
    return mask


def split_touching(
    mask: np.ndarray, settings: SegmentationSettings, intensity: np.ndarray | None = None
) -> np.ndarray:
    """Label a binary mask, splitting touching objects by a watershed.

    Parameters
    ----------
    mask : numpy.ndarray
        bool foreground.
    settings : SegmentationSettings
        ``seed_distance`` (in nucleus diameters): the least distance between two seeds;
        ``declump``: "shape" floods the distance transform from its local maxima (round objects
        with necks between them), "intensity" floods the stain (``intensity``, smoothed by
        ``declump_smoothing``) from its local maxima (clumps without necks, dimmer between
        nuclei).
    intensity : numpy.ndarray, optional
        The stain, for ``declump="intensity"``.

    Returns
    -------
    numpy.ndarray
        int32 labels; a connected component without a seed keeps one label of its own.
    """
    components, n = ndi.label(mask)
    if n == 0:
        return components.astype(np.int32)
    if settings.declump == "intensity" and intensity is not None:
        sigma = settings.pixels(settings.declump_smoothing)
        relief = (
            ndi.gaussian_filter(intensity.astype(np.float32), sigma) if sigma > 0 else intensity
        )
    else:
        relief = ndi.distance_transform_edt(mask)
    min_distance = max(1, int(round(settings.pixels(settings.seed_distance))))
    peaks = peak_local_max(
        relief, min_distance=min_distance, labels=components, exclude_border=False
    )
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    labels = watershed(-relief, markers, mask=mask).astype(np.int32)
    # a component whose seed was lost (a plateau) is still one object
    unseeded = mask & (labels == 0)
    if unseeded.any():
        extra, _ = ndi.label(unseeded)
        labels[unseeded] = extra[unseeded] + labels.max()
    return labels


def refine_edges(
    labels: np.ndarray, smoothed: np.ndarray, foreground: np.ndarray, settings: SegmentationSettings
) -> np.ndarray:
    """Move each object's edge to where its intensity is ``edge`` of the way up from background.

    The log threshold finds the objects wherever they are but puts the edges of bright ones out
    in their blur; this sets each object's edge by its own brightness: a pixel stays where it is
    over ``bg + edge * (top - bg)``, ``top`` the object's 90th percentile and ``bg`` the median
    of the background pixels within ``seed_distance`` diameters of its bounding box.

    Parameters
    ----------
    labels : numpy.ndarray
        int32 objects (from :func:`split_touching`).
    smoothed : numpy.ndarray
        The smoothed linear intensities.
    foreground : numpy.ndarray
        bool, the foreground the objects came from (its complement is the background).
    settings : SegmentationSettings
        ``edge`` and ``seed_distance``.

    Returns
    -------
    numpy.ndarray
        int32, the objects with their pixels under their edge removed (holes filled).
    """
    out = np.zeros_like(labels)
    pad = max(2, int(round(settings.pixels(settings.seed_distance))))
    h, w = labels.shape
    for k, where in enumerate(ndi.find_objects(labels), start=1):
        if where is None:
            continue
        rows = slice(max(where[0].start - pad, 0), min(where[0].stop + pad, h))
        cols = slice(max(where[1].start - pad, 0), min(where[1].stop + pad, w))
        values, mine = smoothed[rows, cols], labels[rows, cols] == k
        background = values[~foreground[rows, cols]]
        if background.size == 0:
            out[rows, cols][mine] = k
            continue
        bg, top = float(np.median(background)), float(np.percentile(values[mine], 90))
        keep = ndi.binary_fill_holes(mine & (values > bg + settings.edge * (top - bg)))
        out[rows, cols][keep & mine] = k
    return out


def remove_small(labels: np.ndarray, min_area: float) -> np.ndarray:
    """Drop objects smaller than ``min_area`` pixels and number the rest 1..n (int32)."""
    areas = np.bincount(labels.ravel())
    keep = areas >= min_area
    keep[0] = False
    new = np.zeros(len(areas), np.int32)
    new[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return new[labels]


def segment_nuclei(image: np.ndarray, settings: SegmentationSettings | None = None) -> np.ndarray:
    """Label the nuclei of one field's DNA stain (the module docstring has the method).

    Parameters
    ----------
    image : numpy.ndarray
        The DNA channel (2-D, any dtype; raw counts, no illumination correction needed).
    settings : SegmentationSettings, optional
        The parameters; the defaults expect nuclei ~14 px across.

    Returns
    -------
    numpy.ndarray
        int32 labels, 0 the background, nuclei 1..n.

    Examples
    --------
    >>> yy, xx = np.mgrid[0:64, 0:64]
    >>> image = 100 + 1000 * (((yy - 20) ** 2 + (xx - 20) ** 2 < 49) | ((yy - 44) ** 2
    ...     + (xx - 40) ** 2 < 49))
    >>> labels = segment_nuclei(image, SegmentationSettings(nucleus_diameter=14))
    >>> int(labels.max()), int((labels == 1).sum()) in range(140, 170)
    (2, True)
    """
    settings = settings or SegmentationSettings()
    smoothed = smooth(image, settings.pixels(settings.smoothing))
    mask = ndi.binary_fill_holes(threshold_mask(log_intensity(smoothed), settings))
    mask = remove_small(ndi.label(mask)[0], settings.min_area_px) > 0
    labels = split_touching(mask, settings, smoothed)
    if settings.edge > 0:
        labels = refine_edges(labels, smoothed, mask, settings)
    return remove_small(labels, settings.min_area_px)
