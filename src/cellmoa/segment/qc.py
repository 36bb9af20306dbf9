"""Per-object tables and per-field quality control of a segmentation.

A field whose segmentation is absent or absurd is named, never used silently: :func:`field_qc`
gives every field a ``flag`` (empty when the field is usable) saying what is wrong:

- no nuclei;
- a median nucleus area outside ``qc_area_range`` times the expected area (the wrong
  ``nucleus_diameter``, an out-of-focus field, a threshold split in the noise);
- nuclei over :data:`MAX_COVER` of the field (a threshold in the background: an empty field);
- nuclei under :data:`MIN_CONTRAST` times as bright as the background (an empty or unstained
  field, whose Otsu threshold splits the noise and the illumination fall-off into "nuclei");
- over :data:`MAX_TOUCHING` of the nuclei touching another (nuclei cut into pieces: a
  ``nucleus_diameter`` far too small makes pieces whose area follows it, which the area check
  cannot see).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.measure import regionprops_table

from cellmoa.segment.settings import SegmentationSettings

#: the most of a field nuclei may cover before the field is flagged
MAX_COVER = 0.5
#: the least ratio of the median nucleus pixel to the median background pixel (DNA stain)
MIN_CONTRAST = 1.5
#: the most of the nuclei that may touch another nucleus (measured: 0.0-0.3 on synthetic fields,
#: 0.1-0.4 on real BBBC021 fields, 0.4-0.8 on BBBC014's clumps; 0.99 cut into pieces)
MAX_TOUCHING = 0.85
#: the columns of :func:`object_table`
OBJECT_COLUMNS = ("field", "object", "kind", "label", "centroid_y", "centroid_x", "area")


def object_table(labels: np.ndarray, kind: str, field: str) -> pd.DataFrame:
    """One row per object of a label image.

    Parameters
    ----------
    labels : numpy.ndarray
        int labels (0 the background).
    kind : str
        "nucleus" or "cell".
    field : str
        The field's name (its plate, well and site).

    Returns
    -------
    pandas.DataFrame
        :data:`OBJECT_COLUMNS`: ``object`` is ``<field>/<label>`` (a nucleus and its cell share
        it), the centroid in pixels (row, column), the area in pixels.

    Examples
    --------
    >>> labels = np.zeros((10, 10), np.int32)
    >>> labels[2:4, 2:6] = 1
    >>> object_table(labels, "nucleus", "P1/B02/1").iloc[0].to_dict()["area"]
    8
    """
    props = regionprops_table(labels.astype(np.int32), properties=("label", "centroid", "area"))
    table = pd.DataFrame(
        {
            "field": field,
            "object": [f"{field}/{k}" for k in props["label"]],
            "kind": kind,
            "label": props["label"].astype(np.int32),
            "centroid_y": props["centroid-0"],
            "centroid_x": props["centroid-1"],
            "area": props["area"].astype(np.int64),
        }
    )
    return table[list(OBJECT_COLUMNS)]


def touching_fraction(labels: np.ndarray) -> float:
    """The fraction of objects that share a border (8-connected) with another object.

    Examples
    --------
    >>> touching_fraction(np.array([[1, 2, 0, 3]]))
    0.6666666666666666
    """
    touching: set = set()
    for a, b in (
        (labels[:, :-1], labels[:, 1:]),
        (labels[:-1, :], labels[1:, :]),
        (labels[:-1, :-1], labels[1:, 1:]),
        (labels[:-1, 1:], labels[1:, :-1]),
    ):
        meet = (a > 0) & (b > 0) & (a != b)
        touching.update(np.unique(a[meet]).tolist(), np.unique(b[meet]).tolist())
    n = int(np.count_nonzero(np.bincount(labels.ravel())[1:]))
    return len(touching) / n if n else 0.0


def field_qc(
    dna: np.ndarray,
    nuclei: np.ndarray,
    cells: np.ndarray | None,
    settings: SegmentationSettings,
    field: str,
) -> dict:
    """The quality record of one field's segmentation (the module docstring has the flags).

    Parameters
    ----------
    dna : numpy.ndarray
        The DNA stain the nuclei came from.
    nuclei, cells : numpy.ndarray
        The labels (``cells`` None where cells were not segmented).
    settings : SegmentationSettings
        Its ``nucleus_diameter`` and ``qc_area_range``.
    field : str
        The field's name.

    Returns
    -------
    dict
        ``field``, ``n_nuclei``, ``n_cells``, ``median_nucleus_area``, ``expected_nucleus_area``,
        ``nucleus_cover`` (fraction of the field), ``contrast``, ``touching`` (the fraction of
        nuclei touching another), ``flag`` ("" where usable) and
        ``usable``.

    Examples
    --------
    >>> field_qc(np.ones((8, 8)), np.zeros((8, 8), int), None, SegmentationSettings(), "F")["flag"]
    'no nuclei'
    """
    areas = np.bincount(nuclei.ravel())[1:]
    areas = areas[areas > 0]
    inside = nuclei > 0
    median_area = float(np.median(areas)) if areas.size else 0.0
    background = float(np.median(dna[~inside])) if (~inside).any() else float("nan")
    contrast = float(np.median(dna[inside])) / max(background, 1e-9) if areas.size else 0.0
    touching = touching_fraction(nuclei)
    lo, hi = (a * settings.expected_area for a in settings.qc_area_range)
    flags = []
    if areas.size == 0:
        flags.append("no nuclei")
    else:
        if not lo <= median_area <= hi:
            flags.append(f"median nucleus area {median_area:.0f} px outside {lo:.0f}-{hi:.0f} px")
        if inside.mean() > MAX_COVER:
            flags.append(f"nuclei cover {inside.mean():.0%} of the field")
        if contrast < MIN_CONTRAST:
            flags.append(f"nuclei only {contrast:.2f}x the background")
        if touching > MAX_TOUCHING:
            flags.append(f"{touching:.0%} of the nuclei touch another (cut into pieces?)")
    return {
        "field": field,
        "n_nuclei": int(areas.size),
        "n_cells": None if cells is None else int(np.count_nonzero(np.bincount(cells.ravel())[1:])),
        "median_nucleus_area": median_area,
        "expected_nucleus_area": settings.expected_area,
        "nucleus_cover": float(inside.mean()),
        "contrast": contrast,
        "touching": touching,
        "flag": "; ".join(flags),
        "usable": not flags,
    }


def usable_mask(qc: pd.DataFrame) -> pd.Series:
    """Which rows of a QC table (read back from TSV: ``usable`` as text) are usable fields."""
    return qc["usable"].astype(str).str.lower().isin(["true", "1"])


def usable_fields(qc: pd.DataFrame) -> set[int]:
    """The image numbers of a plate's QC table (read back from TSV) whose segmentation is usable.

    Examples
    --------
    >>> usable_fields(pd.DataFrame({"image_number": [3, 4], "usable": ["True", "False"]}))
    {3}
    """
    return set(qc.loc[usable_mask(qc), "image_number"].astype(int))
