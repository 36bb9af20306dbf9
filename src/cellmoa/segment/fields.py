"""One field segmented: nuclei, cells, their per-object table and the field's QC record."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cellmoa.segment.cells import segment_cells
from cellmoa.segment.nuclei import segment_nuclei
from cellmoa.segment.qc import field_qc, object_table
from cellmoa.segment.settings import SegmentationSettings


@dataclass
class FieldSegmentation:
    """What :func:`segment_field` makes of one field."""

    #: int32 nuclei, 1..n
    nuclei: np.ndarray
    #: int32 cells, cell k holding nucleus k (None without a cytoplasm stain)
    cells: np.ndarray | None
    #: one row per nucleus and per cell (:data:`~cellmoa.segment.qc.OBJECT_COLUMNS`)
    objects: pd.DataFrame
    #: the field's QC record (:func:`~cellmoa.segment.qc.field_qc`)
    qc: dict


def segment_field(
    dna: np.ndarray,
    cytoplasm: np.ndarray | None = None,
    settings: SegmentationSettings | None = None,
    field: str = "field",
) -> FieldSegmentation:
    """Segment one field: nuclei from ``dna``, cells from them over ``cytoplasm``.

    Parameters
    ----------
    dna : numpy.ndarray
        The DNA stain (2-D).
    cytoplasm : numpy.ndarray, optional
        A cytoplasm stain of the same field; None segments the nuclei only.
    settings : SegmentationSettings, optional
        The parameters (defaults: nuclei ~14 px across).
    field : str
        The field's name, in the tables.

    Returns
    -------
    FieldSegmentation
        The labels, the per-object table and the QC record.

    Examples
    --------
    >>> yy, xx = np.mgrid[0:60, 0:80]
    >>> dna = 100 + 2000 * (((yy - 30) ** 2 + (xx - 20) ** 2) < 49)
    >>> cyto = 100 + 500 * (((yy - 30) ** 2 + (xx - 20) ** 2) < 300)
    >>> out = segment_field(dna, cyto, field="P1/B02/1")
    >>> out.qc["n_nuclei"], out.qc["usable"], sorted(set(out.objects["kind"]))
    (1, True, ['cell', 'nucleus'])
    """
    settings = settings or SegmentationSettings()
    nuclei = segment_nuclei(dna, settings)
    cells = None if cytoplasm is None else segment_cells(cytoplasm, nuclei, settings)
    tables = [object_table(nuclei, "nucleus", field)]
    if cells is not None:
        tables.append(object_table(cells, "cell", field))
    objects = pd.concat(tables, ignore_index=True)
    return FieldSegmentation(nuclei, cells, objects, field_qc(dna, nuclei, cells, settings, field))
