"""The two per-plate preprocessing jobs, as the rules run them and as tests and notebooks call them.

1. :func:`illumination_pass`: one streaming read of the plate gives the illumination function of
   every channel and, in the same read, the statistics of the reference fields per cell line
   (:class:`~cellmoa.preprocess.normalization.ReferenceSums`);
2. :func:`write_plate_tensors`: every stored field of the plate read again, normalised
   (:class:`~cellmoa.preprocess.normalization.FieldNormalizer`), resized and cut into crops
   (:class:`~cellmoa.preprocess.crops.CropGeometry`), the empty ones dropped, written well by well
   (:class:`~cellmoa.preprocess.tensors.PlateTensorWriter`).

:func:`plate_fields` decides which fields of a plate are stored (labelled, the
``preprocessing.restrictions`` applied, and a sample of the control fields flagged ``is_control``)
for the rule and for :func:`build_tensors` alike.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.preprocess.crops import field_cutter
from cellmoa.preprocess.illumination import IlluminationParams, RunningMean, illumination_function
from cellmoa.preprocess.images import BadImages, ImageError, check_shape, prefetched, read_channels
from cellmoa.preprocess.normalization import (
    FieldNormalizer,
    ReferenceSums,
    corrected_field,
)
from cellmoa.preprocess.plates import PlateFields, plate_fields
from cellmoa.preprocess.settings import TensorSettings
from cellmoa.preprocess.tensors import METADATA_FIELDS, PlateTensorWriter, assemble

log = logging.getLogger(__name__)


class Progress:
    """A log line at every tenth of a plate's fields (and the last).

    What a person watching a job's log sees move.
    """

    def __init__(self, plate: str, stage: str, total: int):
        self.plate, self.stage, self.total, self.done = plate, stage, total, 0
        self.every = max(1, -(-total // 10))

    def step(self, detail: str = "") -> None:
        """Count one field done; log at every tenth and the last."""
        self.done += 1
        if self.done % self.every == 0 or self.done == self.total:
            log.info(
                "%s %s: %d of %d fields (%d%%)%s",
                self.plate,
                self.stage,
                self.done,
                self.total,
                100 * self.done // max(1, self.total),
                detail,
            )


def illumination_pass(
    rows: pd.DataFrame,
    raw_dir: Path,
    channels: tuple[str, ...],
    params: IlluminationParams,
    bad: BadImages | None = None,
    reference: pd.DataFrame | None = None,
    prefetch: int = 1,
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """One streaming read of the plate (one field in memory at a time).

    The illumination function per channel, and, for the ``reference`` rows (BBBC021: DMSO), the mean
    and standard deviation per cell line and channel of their illumination-corrected images (exact
    up to float64 rounding; not for the Anscombe transform, which is not linear). ``prefetch``:
    fields read ahead by a reader thread (0 = none). Bad fields raise, or are skipped and recorded
    in ``bad``. Returns (functions, {cell line: (mean, std)}).
    """
    if rows.empty:
        raise ValueError("no images for this plate in the metadata")
    bad = bad or BadImages(skip=False)
    means = {c: RunningMean() for c in channels}
    ref_numbers = set() if reference is None else set(reference["image_number"].astype(int))
    sums: dict[str, ReferenceSums] = {}
    shape = None
    progress = Progress(str(rows["plate"].iloc[0]), "illumination", len(rows))
    for row, images in prefetched(rows, lambda r: read_channels(r, raw_dir, channels), prefetch):
        progress.step()
        try:
            if isinstance(images, ImageError):
                raise images
            check_shape(row, raw_dir, channels, images, shape or images[0].shape)
        except ImageError as err:
            bad.handle(row, err, "illumination")
            continue
        shape = images[0].shape
        for channel, image in zip(channels, images):
            means[channel].add(image)
        if int(row["image_number"]) in ref_numbers:
            sums.setdefault(str(row["cell_line"]), ReferenceSums(channels)).add(images)
    if shape is None:
        raise ValueError("no readable images for this plate")
    functions = {c: illumination_function(means[c].mean, params) for c in channels}
    return functions, {group: acc.statistics(functions) for group, acc in sorted(sums.items())}


def plate_illumination(rows, raw_dir, channels, params, bad=None) -> dict[str, np.ndarray]:
    """The illumination functions alone (see :func:`illumination_pass`)."""
    return illumination_pass(rows, raw_dir, channels, params, bad)[0]


def load_field(row, raw_dir: Path, channels, functions, use_anscombe: bool = False) -> np.ndarray:
    """One field of view read and illumination-corrected (and Anscombe-transformed).

    Returns an (H, W, C) float32 array.
    """
    return corrected_field(read_channels(row, raw_dir, channels), channels, functions, use_anscombe)


def _readable_fields(rows: pd.DataFrame, plate: PlateFields, shape, bad: BadImages):
    """Raw channel images of each row not already skipped; bad ones raise or are recorded."""
    for _, row in rows.iterrows():
        if int(row["image_number"]) in bad.image_numbers:
            continue
        try:
            raws = read_channels(row, plate.raw_dir, plate.channels)
            check_shape(row, plate.raw_dir, plate.channels, raws, shape)
        except ImageError as err:
            bad.handle(row, err, "tensors")
            continue
        yield raws


def fit_normalizer(
    plate: PlateFields,
    functions,
    settings: TensorSettings,
    bad: BadImages,
    reference_stats: dict | None = None,
) -> FieldNormalizer:
    """A normalizer for every cell line of ``plate.rows``.

    The statistics from ``reference_stats`` (the illumination pass; not with Anscombe), else from a
    read of the reference fields.
    """
    normalizer = FieldNormalizer(functions, plate.channels, settings.normalization)
    for group in sorted(plate.rows["cell_line"].unique()):
        try:
            if reference_stats and group in reference_stats and not settings.normalization.anscombe:
                normalizer.set_statistics(group, *reference_stats[group])
                continue
            ref = plate.reference[plate.reference["cell_line"] == group]
            if ref.empty:
                raise ValueError(
                    f"no reference fields ({plate.reference_name}) of cell line {group!r} to "
                    "normalise with"
                )
            normalizer.fit(group, _readable_fields(ref, plate, normalizer.shape, bad))
        except ValueError as err:
            raise ValueError(f"plate {plate.name}: {err}") from err
    return normalizer


def _well_order(rows: pd.DataFrame, skipped: set[int]) -> pd.DataFrame:
    """The rows to store, one well after the other in the order of the metadata."""
    todo = rows[~rows["image_number"].astype(int).isin(skipped)] if skipped else rows
    order = todo.groupby("well", sort=False).ngroup()
    return todo.iloc[np.argsort(order.to_numpy(), kind="stable")]


def _with_annotated(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with an ``annotated`` column.

    Rows not made by :func:`plate_fields` get one, the labelled fields that are not controls being
    annotated.
    """
    if "annotated" in rows.columns:
        return rows
    is_control = (
        rows["is_control"].astype(bool)
        if "is_control" in rows.columns
        else pd.Series(False, index=rows.index)
    )
    return rows.assign(annotated=((rows["moa"] != "") & ~is_control).astype(int))


def _crop_metadata(row, k: int) -> dict:
    """The ``/metadata`` values of crop ``k`` of a field.

    ``is_control`` and ``annotated`` are 0 where the row lacks them.
    """
    return {
        key: k
        if key == "crop"
        else row.get(key, 0)
        if key in ("is_control", "annotated")
        else row[key]
        for key in METADATA_FIELDS
    }


def write_plate_tensors(
    out_path: Path,
    plate: PlateFields,
    functions: dict[str, np.ndarray],
    settings: TensorSettings | None = None,
    bad: BadImages | None = None,
    reference_stats: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    prefetch: int = 1,
    centroids: dict[int, list] | None = None,
) -> int:
    """Write one plate's tensors (see the module docstring); returns N (crops).

    ``reference_stats`` ({cell line: (mean, std)}, from :func:`illumination_pass`) spares reading
    the reference fields again. Fields with a bad image raise, or with ``bad.skip`` are left out
    and recorded in ``bad``. Writes to a temporary file renamed on success. With single-cell
    crops (``settings.cells``), ``centroids`` gives each field's nuclei (image number ->
    [(label, row, column)], :func:`~cellmoa.preprocess.crops.nucleus_centroids`): a crop's
    ``crop`` is its nucleus's label.
    """
    settings = settings or TensorSettings()
    bad = bad or settings.bad_images()
    normalizer = fit_normalizer(plate, functions, settings, bad, reference_stats)
    geometry, empty = settings.crops.for_field(normalizer.shape), settings.empty_crops
    empty_channel = empty.channel_index(plate.channels)
    cut, crop_shape, capacity = field_cutter(
        settings.cells, geometry, normalizer, centroids, len(plate.rows)
    )

    def prepare(row):
        """Read, normalise, resize and cut one field (in the reader thread).

        Returns [(crop index, stored crop)] of the crops kept, and how many were dropped as
        empty.
        """
        raws = read_channels(row, plate.raw_dir, plate.channels)
        check_shape(row, plate.raw_dir, plate.channels, raws, normalizer.shape)
        crops, stored = cut(normalizer.transform(raws, row["cell_line"]), int(row["image_number"]))
        kept = [
            (k, stored_crop)
            for (k, crop), (_, stored_crop) in zip(crops, stored)
            if not empty.is_empty(crop, empty_channel)
        ]
        return kept, len(crops) - len(kept)

    n_empty = 0
    dtype = settings.normalization.stored_dtype
    todo = _well_order(_with_annotated(plate.rows), bad.image_numbers)
    progress = Progress(plate.name, "tensors", len(todo))
    with PlateTensorWriter(out_path, capacity, crop_shape, plate.channels, dtype) as writer:
        for row, prepared in prefetched(todo, prepare, prefetch):
            progress.step(f", {writer.count} crops written")
            if isinstance(prepared, ImageError):
                bad.handle(row, prepared, "tensors")
                continue
            kept, dropped = prepared
            n_empty += dropped
            for k, crop in kept:
                writer.add(crop, _crop_metadata(row, k))
        writer.attrs.update(
            _plate_attributes(plate, normalizer, settings, n_empty, len(bad.records), geometry)
        )
    if n_empty:
        log.info("%s: dropped %d empty crops (%s)", plate.name, n_empty, empty.channel)
    return writer.count


def _plate_attributes(
    plate: PlateFields,
    normalizer: FieldNormalizer,
    settings: TensorSettings,
    n_empty: int,
    n_skipped: int,
    geometry,
) -> dict:
    norm = settings.normalization
    groups = sorted(normalizer.statistics)
    out_shape = geometry.output_field(normalizer.shape)
    n_channels = len(plate.channels)
    description = norm.describe(plate.reference_name)
    if geometry.field_size is not None:
        description += f", resized to {out_shape[0]} x {out_shape[1]}"
    if norm.stored_dtype == "uint8":
        description += ", min-max scaled to 0..255 per field (uint8)"
    return {
        "plate": plate.name,
        "crop_grid": (geometry.rows, geometry.cols),
        "crop_mode": "fields" if settings.cells is None else f"cells of {settings.cells.size} px",
        "field_size": out_shape,
        "reference": plate.reference_name,
        "reference_groups": [str(g) for g in groups],
        "reference_mean": np.array(
            [normalizer.statistics[g][0] for g in groups], np.float32
        ).reshape(len(groups), n_channels),
        "reference_std": np.array(
            [normalizer.statistics[g][1] for g in groups], np.float32
        ).reshape(len(groups), n_channels),
        "anscombe": norm.anscombe,
        "empty_crops_dropped": n_empty,
        "fields_skipped": n_skipped,
        "normalization": description,
    }


def build_tensors(
    dataset,
    raw_dir: Path,
    out_dir: Path,
    plates: list[str] | None = None,
    illumination: IlluminationParams | None = None,
    settings: TensorSettings | None = None,
    restrictions: list[dict] | None = None,
    unannotated: bool = False,
) -> Path:
    """All stages from raw plate folders to ``out_dir/all.h5`` in one call.

    Through the same plate functions as the illumination, tensors and assemble_tensors rules (for
    tests, benchmarks, notebooks). ``settings`` defaults to the dataset's crop geometry;
    ``unannotated`` keeps the unannotated compounds' fields (:func:`plate_fields`).
    """
    settings = settings or TensorSettings.from_config({}, dataset)
    illumination = illumination or IlluminationParams()
    metadata = dataset.read_metadata(raw_dir)
    out_dir = Path(out_dir)
    paths = []
    for name in plates or sorted(metadata["plate"].unique()):
        plate = plate_fields(
            dataset, metadata, name, raw_dir, restrictions, settings.control_fields, unannotated
        )
        rows = metadata[metadata["plate"] == name]
        functions, stats = illumination_pass(
            rows, raw_dir, dataset.channels, illumination, reference=plate.reference
        )
        path = out_dir / f"{name}.h5"
        write_plate_tensors(path, plate, functions, settings, reference_stats=stats)
        paths.append(path)
    assemble(paths, out_dir / "all.h5")
    return out_dir / "all.h5"
