"""The per-plate feature job, as the ``features`` rule runs it and as tests call it.

For every field of a plate's segmentation (``results/segmentation/<plate>.h5``) that its QC found
usable, the plate's channels are read, illumination-corrected as for the tensors and scaled to
0..1 (:func:`~cellmoa.features.measure.unit_scale`), and every cell measured
(:func:`~cellmoa.features.measure.measure_objects`; a cell is its nucleus and the cell grown from
it, measured as ``Nuclei_*`` and ``Cells_*``). The cells of a well are aggregated to the well's
profile by the median of each feature (pycytominer's ``aggregate``) one well at a time, so that
the job's memory holds one well's cells, not the plate's; the single-cell rows are not kept.
Fields the QC flagged are named in the log and left out.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.columns import PLATE, WELL
from cellmoa.features.measure import FeatureSettings, measure_objects, unit_scale
from cellmoa.preprocess.images import read_channels
from cellmoa.preprocess.jobs import Progress
from cellmoa.preprocess.normalization import corrected_field
from cellmoa.preprocess.plates import PlateFields
from cellmoa.segment.store import field_index, read_fields

log = logging.getLogger(__name__)

#: the number of cells and fields behind a well's profile
CELLS, FIELDS = "Metadata_Cells", "Metadata_Fields"


def scale_of(raw: np.ndarray) -> float:
    """The maximum of an image's format: 65535 for 16-bit, 255 for 8-bit, 1 for float images.

    Examples
    --------
    >>> scale_of(np.zeros(2, np.uint16)), scale_of(np.zeros(2, np.float32))
    (65535.0, 1.0)
    """
    if np.issubdtype(raw.dtype, np.integer):
        return float(np.iinfo(raw.dtype).max)
    return 1.0


def paired_labels(nuclei: np.ndarray, cells: np.ndarray) -> dict[str, np.ndarray]:
    """The objects of one field: nuclei and their cells, only where both exist.

    A field segmented without a cell channel (``cells`` all 0) gives the nuclei alone.

    Examples
    --------
    >>> nuclei, cells = np.array([[1, 0, 2]]), np.array([[1, 1, 0]])
    >>> {k: v.tolist() for k, v in paired_labels(nuclei, cells).items()}
    {'Nuclei': [[1, 0, 0]], 'Cells': [[1, 1, 0]]}
    """
    if not cells.any():
        return {"Nuclei": nuclei}
    both = np.intersect1d(np.unique(nuclei), np.unique(cells))
    both = both[both > 0]
    return {
        "Nuclei": np.where(np.isin(nuclei, both), nuclei, 0),
        "Cells": np.where(np.isin(cells, both), cells, 0),
    }


def measure_plate(
    segmentation: Path,
    plate: PlateFields,
    functions: dict[str, np.ndarray],
    settings: FeatureSettings,
    usable: set[int] | None = None,
) -> pd.DataFrame:
    """Every cell of a plate's usable fields measured, aggregated to well profiles.

    Parameters
    ----------
    segmentation : Path
        The plate's segmentation file.
    plate : PlateFields
        The plate's stored fields (their image files and channels).
    functions : dict
        The plate's illumination function per channel.
    settings : FeatureSettings
        What to measure.
    usable : set of int, optional
        The image numbers whose segmentation the QC passed; None: every field.

    Returns
    -------
    pandas.DataFrame
        One row per well: ``Metadata_Plate``, ``Metadata_Well``, ``Metadata_Cells``,
        ``Metadata_Fields``, then the median of every feature over the well's cells.
    """
    rows = plate.rows.set_index(plate.rows["image_number"].astype(int))
    index = field_index(segmentation)
    # one well at a time: a well's cells in memory, never the plate's (flat in the plate's size)
    by_well: dict[str, list[int]] = {}
    for i, field in enumerate(index):
        if usable is None or field["image_number"] in usable:
            by_well.setdefault(field["well"], []).append(i)
    skipped = [f"{f['well']}/{f['site']}" for f in index if usable is not None
               and f["image_number"] not in usable]  # fmt: skip
    if skipped:
        log.warning("%s: %d field(s) left out (segmentation QC): %s", plate.name, len(skipped),
                    ", ".join(skipped))  # fmt: skip
    if not by_well:
        raise ValueError(f"plate {plate.name}: no usable segmented fields to measure")
    progress = Progress(plate.name, "features", sum(len(v) for v in by_well.values()))
    wells = []
    for fields in by_well.values():
        cells = []
        for field in read_fields(segmentation, fields):
            progress.step()
            cells.append(_measure_field(field, rows.loc[field["image_number"]], plate, functions,
                                        settings))  # fmt: skip
        wells.append(well_profiles(pd.concat(cells, ignore_index=True), plate.name))
    return pd.concat(wells, ignore_index=True)


def _measure_field(field: dict, row, plate: PlateFields, functions, settings) -> pd.DataFrame:
    """One segmented field's cells measured (:func:`measure_objects`), with their well and field."""
    raws = read_channels(row, plate.raw_dir, plate.channels)
    corrected = corrected_field(raws, plate.channels, functions)
    images = {
        c: unit_scale(corrected[..., i], scale_of(raws[i])) for i, c in enumerate(plate.channels)
    }
    table = measure_objects(paired_labels(field["nuclei"], field["cells"]), images, settings)
    return table.reset_index(drop=True).assign(
        **{WELL: field["well"], FIELDS: field["image_number"]}
    )


def well_profiles(cells: pd.DataFrame, plate: str) -> pd.DataFrame:
    """The median of every feature over each well's cells (pycytominer's ``aggregate``).

    ``cells`` has ``Metadata_Well``, ``Metadata_Fields`` (the cell's image number) and features.

    Examples
    --------
    >>> cells = pd.DataFrame({"Metadata_Well": ["B02", "B02", "B03"],
    ...                       "Metadata_Fields": [1, 2, 3], "Cells_Area": [10.0, 30.0, 5.0]})
    >>> wells = well_profiles(cells, "P1")
    >>> wells[["Metadata_Well", "Metadata_Cells", "Cells_Area"]].values.tolist()
    [['B02', 2, 20.0], ['B03', 1, 5.0]]
    """
    from pycytominer import aggregate  # heavy: imported where wells are aggregated

    cells = cells.assign(**{PLATE: plate})
    features = [c for c in cells.columns if not c.startswith("Metadata_")]
    wells = aggregate(cells, strata=[PLATE, WELL], features=features, operation="median")
    counts = cells.groupby(WELL).agg(**{CELLS: (PLATE, "size"), FIELDS: (FIELDS, "nunique")})
    wells = wells.merge(counts, left_on=WELL, right_index=True)
    return wells[[PLATE, WELL, CELLS, FIELDS, *features]].reset_index(drop=True)
