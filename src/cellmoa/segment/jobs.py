"""The per-plate segmentation job, as the ``segment`` rule runs it and as tests call it.

Every field the tensors store (:func:`cellmoa.preprocess.plates.plate_fields`: the labelled
treatments, the unannotated compounds' fields, the control sample) is read, corrected by the
plate's illumination functions (the same correction as the tensors), and segmented
(:func:`~cellmoa.segment.fields.segment_field`): nuclei from the nucleus channel, cells grown from
them over the cell channel. The labels go to ``results/segmentation/<plate>.h5``
(:mod:`~cellmoa.segment.store`), the objects and the per-field QC records are returned as tables.
A field flagged by the QC (no nuclei, absurd areas; :mod:`~cellmoa.segment.qc`) is kept in the
files with its flag and left out of the features (:mod:`cellmoa.features`), never used silently.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.preprocess.images import BadImages, ImageError, check_shape, prefetched, read_channels
from cellmoa.preprocess.jobs import Progress
from cellmoa.preprocess.normalization import corrected_field
from cellmoa.preprocess.plates import PlateFields
from cellmoa.segment.fields import segment_field
from cellmoa.segment.settings import SegmentationSettings
from cellmoa.segment.store import LabelWriter

log = logging.getLogger(__name__)

#: channel names taken for the nuclei where ``segmentation.nucleus_channel`` is not set
NUCLEUS_NAMES = ("DAPI", "DNA", "Hoechst", "HOECHST", "nuclei", "Nuclei")
#: channel names taken for the cells (first found) where ``segmentation.cell_channel`` is not set
CELL_NAMES = ("Actin", "Phalloidin", "Tubulin", "AGP", "Mito", "ER", "RNA", "NFkB")


def segmentation_channels(
    channels, nucleus: str | None = None, cell: str | None = None
) -> tuple[str, str | None]:
    """The channels the nuclei and the cells are segmented on.

    Given names are checked against the dataset's ``channels``; an unset nucleus channel is the
    first of :data:`NUCLEUS_NAMES` present, an unset cell channel the first of :data:`CELL_NAMES`
    (None where the dataset has no other channel: nuclei only).

    Examples
    --------
    >>> segmentation_channels(("DAPI", "Tubulin", "Actin"))
    ('DAPI', 'Actin')
    >>> segmentation_channels(("NFkB", "DAPI"))
    ('DAPI', 'NFkB')
    """
    channels = list(channels)
    for name, value in (("nucleus_channel", nucleus), ("cell_channel", cell)):
        if value is not None and value not in channels:
            raise ValueError(
                f"segmentation.{name}: {value!r} is not one of the dataset's channels "
                f"({', '.join(channels)})"
            )
    if nucleus is None:
        found = [c for c in NUCLEUS_NAMES if c in channels]
        if not found:
            raise ValueError(
                "segmentation.nucleus_channel: none of the dataset's channels "
                f"({', '.join(channels)}) is a DNA stain by name; set it to the nuclear stain"
            )
        nucleus = found[0]
    if cell is None:
        found = [c for c in CELL_NAMES if c in channels and c != nucleus]
        others = [c for c in channels if c != nucleus]
        cell = found[0] if found else (others[0] if others else None)
    return nucleus, cell


def segment_plate(
    out_path: Path,
    plate: PlateFields,
    functions: dict[str, np.ndarray],
    settings: SegmentationSettings,
    nucleus_channel: str,
    cell_channel: str | None,
    bad: BadImages | None = None,
    prefetch: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Segment every stored field of a plate; write the labels, return (objects, QC).

    Parameters
    ----------
    out_path : Path
        ``results/segmentation/<plate>.h5``.
    plate : PlateFields
        The plate's stored fields.
    functions : dict
        The plate's illumination function per channel.
    settings : SegmentationSettings
        The segmentation parameters.
    nucleus_channel, cell_channel : str
        From :func:`segmentation_channels` (``cell_channel`` None: nuclei only).
    bad : BadImages, optional
        Fields already skipped (by the illumination job) and the policy for unreadable ones.
    prefetch : int
        Fields read ahead by a reader thread.

    Returns
    -------
    tuple of pandas.DataFrame
        The objects (:data:`~cellmoa.segment.qc.OBJECT_COLUMNS` and ``image_number``) and one QC
        record per field (:func:`~cellmoa.segment.qc.field_qc` and ``image_number``, ``well``,
        ``site``).
    """
    bad = bad or BadImages(skip=False)
    used = [nucleus_channel] + ([cell_channel] if cell_channel else [])
    todo = plate.rows[~plate.rows["image_number"].astype(int).isin(bad.image_numbers)]
    if todo.empty:
        raise ValueError(f"plate {plate.name}: no fields to segment")

    def prepare(row):
        raws = read_channels(row, plate.raw_dir, used)
        check_shape(row, plate.raw_dir, used, raws, raws[0].shape)
        return corrected_field(raws, used, functions)

    attrs = {
        "plate": plate.name,
        "nucleus_channel": nucleus_channel,
        "cell_channel": cell_channel or "",
        "settings": json.dumps(asdict(settings)),
    }
    objects, qc = _segment_fields(
        out_path, plate, todo, prepare, attrs, settings, cell_channel, bad, prefetch
    )
    if not qc:
        raise ValueError(f"plate {plate.name}: no readable fields to segment")
    qc_table = pd.DataFrame(qc)
    flagged = qc_table[~qc_table["usable"]]
    for _, rec in flagged.iterrows():
        log.warning("%s: segmentation flagged (%s): not measured", rec["field"], rec["flag"])
    log.info(
        "%s: %d fields segmented, %d nuclei (median %.0f a field), %d flagged",
        plate.name,
        len(qc_table),
        int(qc_table["n_nuclei"].sum()),
        float(qc_table["n_nuclei"].median()),
        len(flagged),
    )
    return pd.concat(objects, ignore_index=True), qc_table


def _segment_fields(out_path, plate, todo, prepare, attrs, settings, cell_channel, bad, prefetch):
    """The loop of :func:`segment_plate`: each field read, segmented and written in turn."""
    objects, qc = [], []
    progress = Progress(plate.name, "segmentation", len(todo))
    with contextlib.ExitStack() as stack:
        writer = None
        for row, field in prefetched(todo, prepare, prefetch):
            progress.step()
            if isinstance(field, ImageError):
                bad.handle(row, field, "segmentation")
                continue
            if writer is None:  # the plate's field shape is known from its first field
                writer = stack.enter_context(LabelWriter(out_path, field.shape[:2], attrs))
            keys = {
                "image_number": int(row["image_number"]),
                "well": str(row["well"]),
                "site": int(row["site"]),
            }
            name = f"{plate.name}/{keys['well']}/{keys['site']}"
            cyto = field[..., 1] if cell_channel else None
            out = segment_field(field[..., 0], cyto, settings, field=name)
            writer.add(out.nuclei, out.cells, **keys)
            objects.append(out.objects.assign(image_number=keys["image_number"]))
            qc.append({**out.qc, **keys})
    return objects, qc
