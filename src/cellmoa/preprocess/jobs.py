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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.preprocess.crops import CropGeometry, EmptyCropFilter
from cellmoa.preprocess.illumination import IlluminationParams, RunningMean, illumination_function
from cellmoa.preprocess.images import BadImages, ImageError, check_shape, prefetched, read_channels
from cellmoa.preprocess.normalization import (
    FieldNormalizer,
    Normalization,
    ReferenceSums,
    corrected_field,
)
from cellmoa.preprocess.tensors import METADATA_FIELDS, PlateTensorWriter, assemble

log = logging.getLogger(__name__)

ON_BAD_IMAGE = ("error", "skip")


class Progress:
    """A log line at every tenth of a plate's fields (and the last): what a person watching a
    job's log sees move."""

    def __init__(self, plate: str, stage: str, total: int):
        self.plate, self.stage, self.total, self.done = plate, stage, total, 0
        self.every = max(1, -(-total // 10))

    def step(self, detail: str = "") -> None:
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


@dataclass(frozen=True)
class TensorSettings:
    """What the tensors job makes of a plate's fields (``preprocessing`` config section)."""

    crops: CropGeometry = field(default_factory=CropGeometry)
    normalization: Normalization = field(default_factory=Normalization)
    empty_crops: EmptyCropFilter = field(default_factory=EmptyCropFilter)
    #: "error": a missing, corrupt or wrongly sized image stops the job; "skip": the field is
    #: left out, logged, and listed in the plate's report
    on_bad_image: str = "error"
    #: control fields per plate stored beside the treatments (``is_control`` = 1 in
    #: ``/metadata``), for control-based normalisation of profiles; never trained on or scored
    control_fields: int = 0

    def __post_init__(self):
        if self.on_bad_image not in ON_BAD_IMAGE:
            raise ValueError(f"on_bad_image must be 'error' or 'skip', not {self.on_bad_image!r}")
        if int(self.control_fields) < 0:
            raise ValueError(
                f"control_fields_per_plate must be 0 or more, not {self.control_fields}"
            )

    @classmethod
    def from_config(cls, preprocessing: dict, dataset) -> TensorSettings:
        """From the ``preprocessing:`` config section; crop geometry defaults from ``dataset``."""
        crops = preprocessing.get("crops") or {}
        norm = dict(preprocessing.get("normalization") or {})
        unknown = sorted(
            set(norm)
            - {
                "anscombe",
                "stored_dtype",
                "on_bad_image",
                "empty_crop_min_fraction",
                "empty_crop_channel",
                "empty_crop_z",
            }
        )
        if unknown:
            raise ValueError(
                f"preprocessing.normalization: unknown setting(s) {', '.join(unknown)}"
            )
        resize = crops.get("resize", dataset.field_size)
        return cls(
            crops=CropGeometry(
                crops.get("rows", dataset.crop_grid[0]),
                crops.get("cols", dataset.crop_grid[1]),
                tuple(resize) if resize is not None else None,
            ),
            normalization=Normalization(
                norm.get("anscombe", False), norm.get("stored_dtype", "float16")
            ),
            empty_crops=EmptyCropFilter(
                norm.get("empty_crop_min_fraction", 0.0),
                norm.get("empty_crop_channel", "DAPI"),
                norm.get("empty_crop_z", 2.0),
            ),
            on_bad_image=norm.get("on_bad_image", "error"),
            control_fields=int(preprocessing.get("control_fields_per_plate", 8)),
        )

    def bad_images(self) -> BadImages:
        return BadImages(skip=self.on_bad_image == "skip")


@dataclass(frozen=True)
class PlateFields:
    """One plate's fields as the preprocessing jobs see them."""

    name: str
    #: the fields to store (labelled treatments, then the control sample), one row each: the
    #: dataset's metadata columns and ``is_control``
    rows: pd.DataFrame
    #: the fields whose statistics standardise them (per cell line)
    reference: pd.DataFrame
    raw_dir: Path
    channels: tuple[str, ...]
    #: what the reference fields are, in words (stored with the tensors)
    reference_name: str = "DMSO control fields"


def plate_fields(
    dataset,
    metadata: pd.DataFrame,
    plate: str,
    raw_dir: Path,
    restrictions: list[dict] | None = None,
    control_fields: int = 0,
    unannotated: bool = False,
) -> PlateFields:
    """The fields of ``plate`` the tensors store: labelled (``annotated`` = 1), with
    ``unannotated`` the fields of compounds without an MoA too (``annotated`` = 0, to be
    predicted), ``restrictions`` applied to both, and ``control_fields`` of its control fields
    (:func:`control_sample`), flagged ``is_control``."""
    on_plate = metadata[metadata["plate"] == plate]
    labelled = dataset.labelled(on_plate)
    kept = restrict(labelled, restrictions).assign(is_control=0, annotated=1)
    if len(kept) < len(labelled):
        log.info(
            "%s: %d labelled field(s) left out by preprocessing.restrictions",
            plate,
            len(labelled) - len(kept),
        )
    if unannotated:
        others = dataset.unannotated(on_plate)
        kept_others = restrict(others, restrictions).assign(is_control=0, annotated=0)
        log.info(
            "%s: %d field(s) of %d unannotated compound(s) stored, to be predicted",
            plate,
            len(kept_others),
            kept_others["compound"].nunique(),
        )
        kept = pd.concat([kept, kept_others], ignore_index=True)
    controls = control_sample(dataset.controls(on_plate), control_fields)
    if control_fields:
        log.info(
            "%s: %d of %d control field(s) stored for profile normalisation",
            plate,
            len(controls),
            len(dataset.controls(on_plate)),
        )
    rows = (
        pd.concat([kept, controls.assign(is_control=1, annotated=0)], ignore_index=True)
        if len(controls)
        else kept
    )
    return PlateFields(
        plate,
        rows,
        dataset.reference(on_plate),
        Path(raw_dir),
        tuple(dataset.channels),
        dataset.reference_description,
    )


def control_sample(controls: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` control fields spread over the control wells: the first site of every well, then the
    second, and so on (deterministic; all of them if there are fewer)."""
    if n <= 0 or controls.empty:
        return controls.iloc[0:0]
    ordered = controls.sort_values(["well", "site"])
    rank = ordered.groupby("well").cumcount()
    ordered = ordered.assign(_rank=rank.to_numpy()).sort_values(
        ["_rank", "well", "site"], kind="stable"
    )
    return ordered.head(n).drop(columns="_rank").sort_values(["well", "site"])


def restrict(metadata: pd.DataFrame, restrictions: list[dict] | None) -> pd.DataFrame:
    """Keep a restricted compound's fields only where they match every criterion its restriction
    gives: ``batches`` (list), ``wells`` (a regular expression matched at the start of the well
    name) and ``concentrations`` (list, compared as floats). Other compounds are kept.

    Kensert et al. (2019) kept taxol only in the Week1 plates' D0x wells at 0.3, 1 and 3 uM: every
    BBBC021 plate also has taxol 0.3 uM positive-control wells, which would otherwise outnumber
    every other treatment.
    """
    keep = np.ones(len(metadata), bool)
    for rule in restrictions or []:
        unknown = sorted(set(rule) - {"compound", "batches", "wells", "concentrations"})
        if unknown or "compound" not in rule:
            raise ValueError(
                f"a restriction needs 'compound' and takes batches, wells, concentrations; got {sorted(rule)}"
            )
        match = np.ones(len(metadata), bool)
        if "batches" in rule:
            match &= metadata["batch"].isin(rule["batches"]).to_numpy()
        if "wells" in rule:
            match &= metadata["well"].str.match(rule["wells"]).to_numpy()
        if "concentrations" in rule:
            conc = metadata["concentration"].to_numpy(dtype=float)
            match &= np.isclose(
                conc[:, None], np.asarray(rule["concentrations"], float)[None, :], rtol=1e-6
            ).any(axis=1)
        keep &= ~(metadata["compound"] == rule["compound"]).to_numpy() | match
    return metadata[keep]


def illumination_pass(
    rows: pd.DataFrame,
    raw_dir: Path,
    channels: tuple[str, ...],
    params: IlluminationParams,
    bad: BadImages | None = None,
    reference: pd.DataFrame | None = None,
    prefetch: int = 1,
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """One streaming read of the plate (one field in memory at a time): the illumination function
    per channel, and, for the ``reference`` rows (BBBC021: DMSO), the mean and standard deviation
    per cell line and channel of their illumination-corrected images (exact up to float64
    rounding; not for the Anscombe transform, which is not linear). ``prefetch``: fields read ahead
    by a reader thread (0 = none). Bad fields raise, or are skipped and recorded in ``bad``.
    Returns (functions, {cell line: (mean, std)})."""
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
    """One field of view read and illumination-corrected (and Anscombe-transformed), (H, W, C) float32."""
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
    """A normalizer for every cell line of ``plate.rows``: the statistics from ``reference_stats``
    (the illumination pass; not with Anscombe), else from a read of the reference fields."""
    normalizer = FieldNormalizer(functions, plate.channels, settings.normalization)
    for group in sorted(plate.rows["cell_line"].unique()):
        try:
            if reference_stats and group in reference_stats and not settings.normalization.anscombe:
                normalizer.set_statistics(group, *reference_stats[group])
                continue
            ref = plate.reference[plate.reference["cell_line"] == group]
            if ref.empty:
                raise ValueError(
                    f"no reference fields ({plate.reference_name}) of cell line {group!r} to normalise with"
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


def write_plate_tensors(
    out_path: Path,
    plate: PlateFields,
    functions: dict[str, np.ndarray],
    settings: TensorSettings | None = None,
    bad: BadImages | None = None,
    reference_stats: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    prefetch: int = 1,
) -> int:
    """Write one plate's tensors (see the module docstring); returns N (crops).

    ``reference_stats`` ({cell line: (mean, std)}, from :func:`illumination_pass`) spares reading
    the reference fields again. Fields with a bad image raise, or with ``bad.skip`` are left out
    and recorded in ``bad``. Writes to a temporary file renamed on success.
    """
    settings = settings or TensorSettings()
    bad = bad or settings.bad_images()
    normalizer = fit_normalizer(plate, functions, settings, bad, reference_stats)
    geometry, empty = settings.crops.for_field(normalizer.shape), settings.empty_crops
    empty_channel = empty.channel_index(plate.channels)
    crop_shape = geometry.crop_shape(normalizer.shape)

    def prepare(row):
        """Read, normalise, resize, cut one field (in the reader thread): [(crop index, stored
        crop)] of the crops kept, and how many were dropped as empty."""
        raws = read_channels(row, plate.raw_dir, plate.channels)
        check_shape(row, plate.raw_dir, plate.channels, raws, normalizer.shape)
        field = geometry.resize(normalizer.transform(raws, row["cell_line"]))
        crops = geometry.cut(field)
        stored = geometry.cut(normalizer.store(field))
        kept = [
            (k, stored[k])
            for k, crop in enumerate(crops)
            if not empty.is_empty(crop, empty_channel)
        ]
        return kept, len(crops) - len(kept)

    n_empty = 0
    capacity = len(plate.rows) * geometry.rows * geometry.cols
    dtype = settings.normalization.stored_dtype
    rows = plate.rows
    if (
        "annotated" not in rows.columns
    ):  # rows not made by plate_fields: labelled ones are annotated
        is_control = (
            rows["is_control"].astype(bool)
            if "is_control" in rows.columns
            else pd.Series(False, index=rows.index)
        )
        rows = rows.assign(annotated=((rows["moa"] != "") & ~is_control).astype(int))
    todo = _well_order(rows, bad.image_numbers)
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
                writer.add(
                    crop,
                    {
                        key: k
                        if key == "crop"
                        else row.get(key, 0)
                        if key in ("is_control", "annotated")
                        else row[key]
                        for key in METADATA_FIELDS
                    },
                )
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
    """All stages from raw plate folders to ``out_dir/all.h5`` in one call, through the same
    plate functions as the illumination, tensors and assemble_tensors rules (for tests,
    benchmarks, notebooks). ``settings`` defaults to the dataset's crop geometry; ``unannotated``
    keeps the unannotated compounds' fields (:func:`plate_fields`)."""
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
