"""CellProfiler's per-object measurements of one field, with cp-measure (the field's library).

cp-measure computes CellProfiler's measurement modules as functions of a label image and an
intensity image; this module only chooses which, names the columns the way CellProfiler does
(``<Objects>_<Category>_<Feature>_<Channel>``: ``Cells_Intensity_MeanIntensity_Tubulin``,
``Nuclei_AreaShape_Area``) and leaves out the measurements of where an object lies in the field
(centres, bounding boxes, the location of its intensity), which are not phenotypes.

Feature groups (``features.groups``; what each costs on a 1024 x 1280 field with ~140 cells is
in ``docs/benchmarks.md``: granularity and the radial distribution most):

- per object: ``sizeshape`` (MeasureObjectSizeShape), ``zernike``, ``feret``;
- per object and channel: ``intensity`` (MeasureObjectIntensity), ``texture`` (Haralick,
  MeasureTexture), ``granularity`` (MeasureGranularity), ``radial_distribution`` and
  ``radial_zernikes`` (MeasureObjectIntensityDistribution);
- per object and channel pair (``features.correlations``): ``pearson``, ``manders_fold``,
  ``rwc`` (MeasureColocalization).

Images are given as CellProfiler sees them: intensities scaled to 0..1 (:func:`unit_scale`).

Examples
--------
>>> labels = np.zeros((20, 20), np.int32)
>>> labels[2:8, 2:8], labels[10:18, 10:16] = 1, 2
>>> image = np.linspace(0, 1, 400).reshape(20, 20)
>>> table = measure_objects({"Cells": labels}, {"DNA": image}, FeatureSettings(("intensity",)))
>>> table.shape[0], "Cells_Intensity_MeanIntensity_DNA" in table.columns
(2, True)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: groups measured once per object (no intensity image)
SHAPE_GROUPS = ("sizeshape", "zernike", "feret")
#: groups measured per object and channel
INTENSITY_GROUPS = ("intensity", "texture", "granularity", "radial_distribution", "radial_zernikes")
#: colocalisation measurements per object and channel pair
CORRELATIONS = ("pearson", "manders_fold", "rwc")
#: the CellProfiler category a group's bare feature names are given
#: (cp-measure names the others' category itself: ``Intensity_``, ``Correlation_``, ...)
CATEGORY = {"sizeshape": "AreaShape_", "zernike": "AreaShape_", "feret": "AreaShape_",
            "texture": "Texture_"}  # fmt: skip
#: parts of a feature name that say where an object is, not what it looks like (left out)
LOCATION_PARTS = ("Location_", "Center_", "BoundingBoxMinimum", "BoundingBoxMaximum")


@dataclass(frozen=True)
class FeatureSettings:
    """Which measurements are made (``features:`` in the config).

    Examples
    --------
    >>> FeatureSettings(("intensity", "sizeshape")).groups
    ('intensity', 'sizeshape')
    """

    #: the measurement groups (:data:`SHAPE_GROUPS`, :data:`INTENSITY_GROUPS`)
    groups: tuple = ("sizeshape", "intensity", "granularity", "texture", "radial_distribution")
    #: the colocalisation measurements, for every pair of channels (:data:`CORRELATIONS`)
    correlations: tuple = ("pearson",)

    def __post_init__(self):
        known = SHAPE_GROUPS + INTENSITY_GROUPS
        for name, values, allowed in (
            ("groups", self.groups, known),
            ("correlations", self.correlations, CORRELATIONS),
        ):
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise ValueError(
                    f"features.{name}: unknown {', '.join(map(repr, unknown))}; use any of "
                    f"{', '.join(allowed)}"
                )
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "correlations", tuple(self.correlations))


def unit_scale(image: np.ndarray, maximum: float) -> np.ndarray:
    """An image as CellProfiler reads it: divided by its format's maximum, within 0..1 (float64).

    Examples
    --------
    >>> unit_scale(np.array([0, 32768, 70000.0]), 65535).round(3).tolist()
    [0.0, 0.5, 1.0]
    """
    return np.clip(np.asarray(image, np.float64) / float(maximum), 0.0, 1.0)


def _functions():
    # cp-measure is imported only where features are measured (it is slow to import)
    from cp_measure.bulk import get_core_measurements, get_correlation_measurements

    return get_core_measurements(), get_correlation_measurements()


def _named(values: dict, prefix: str, group: str, suffix: str) -> dict:
    category = CATEGORY.get(group, "")
    return {
        f"{prefix}_{category}{name}{suffix}": np.asarray(v, np.float64)
        for name, v in values.items()
        if not any(part in name for part in LOCATION_PARTS)
    }


def measure_objects(
    labels: dict[str, np.ndarray], images: dict[str, np.ndarray], settings: FeatureSettings
) -> pd.DataFrame:
    """CellProfiler measurements of every object of one field.

    Parameters
    ----------
    labels : dict
        Object name (``Nuclei``, ``Cells``) -> int label image; the objects are its labels 1..n.
        Objects of the same label in the label images are the same cell (a nucleus and its
        cell); every label image must hold the same labels.
    images : dict
        Channel name -> the channel scaled to 0..1 (:func:`unit_scale`).
    settings : FeatureSettings
        What to measure.

    Returns
    -------
    pandas.DataFrame
        One row per object, indexed by its label, one column per feature (float64).
    """
    core, correlation = _functions()
    columns: dict[str, np.ndarray] = {}
    index = None
    for prefix, mask in labels.items():
        present = np.unique(mask)
        present = present[present > 0]
        if index is None:
            index = present
        elif not np.array_equal(index, present):
            raise ValueError(f"{prefix}: its labels are not those of {next(iter(labels))}")
        if present.size == 0:
            continue
        any_image = next(iter(images.values()))
        for group in settings.groups:
            if group in SHAPE_GROUPS:
                columns.update(_named(core[group](mask, any_image), prefix, group, ""))
                continue
            for channel, image in images.items():
                columns.update(_named(core[group](mask, image), prefix, group, f"_{channel}"))
        for name, (a, b) in itertools.product(settings.correlations, _pairs(images)):
            values = correlation[name](images[a], images[b], mask)
            columns.update(_named(values, prefix, name, f"_{a}_{b}"))
    index = np.zeros(0, np.int64) if index is None else index
    return pd.DataFrame(columns, index=pd.Index(index, name="label"))


def _pairs(images: dict) -> list[tuple[str, str]]:
    return list(itertools.combinations(list(images), 2))
