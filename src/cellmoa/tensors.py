"""Per-plate HDF5 tensors: illumination-corrected, DMSO-standardised crops with aligned metadata.

Layout of ``results/tensors/<plate>.h5`` (readable with plain h5py):

- ``/images``: float16, shape (N, H, W, C), chunked one crop per chunk; channel order in the
  ``channels`` attribute (BBBC021: DAPI, Tubulin, Actin; BBBC014: NFkB, DAPI). Values are
  z-scores: each channel of each illumination-corrected field minus the mean of its plate's and
  cell line's reference fields (BBBC021: the DMSO fields; BBBC014, which has no controls: all the
  cell line's fields), divided by their standard deviation (``reference_mean`` /
  ``reference_std`` attributes, one row per cell line in ``reference_groups``, one value per
  channel).
- ``/metadata/<column>``: one 1-D dataset per column, row i describing ``/images[i]``:
  plate, batch, cell_line, well, site, crop, replicate, compound, concentration, moa, image_number.
- attributes: plate, channels, crop_grid (rows, cols), crop_shape, field_size, reference,
  reference_groups, reference_mean, reference_std, normalization, cellmoa_version.

``results/tensors/all.h5`` assembles every plate without copying: ``/images`` is an HDF5 virtual
dataset over the plate files (kept beside it, referenced by file name), ``/metadata/*`` the
concatenated columns.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import tifffile

from cellmoa import __version__
from cellmoa.illumination import IlluminationParams, RunningMean, correct, illumination_function

log = logging.getLogger(__name__)

METADATA_FIELDS = [
    "plate",
    "batch",
    "cell_line",
    "well",
    "site",
    "crop",
    "replicate",
    "compound",
    "concentration",
    "moa",
    "image_number",
]
STRING_FIELDS = {"plate", "batch", "cell_line", "well", "compound", "moa"}
FLOAT_FIELDS = {"concentration"}


class ImageError(RuntimeError):
    """An input image is missing, unreadable or of the wrong size; the message names the file."""


@dataclass(frozen=True)
class Normalization:
    """How corrected fields become tensors (the ``preprocessing.normalization`` config section)."""

    #: variance-stabilising Anscombe transform 2 sqrt(x + 3/8) after illumination correction (the paper)
    anscombe: bool = False
    #: drop crops with too little signal (the paper's empty-crop filter): a crop is kept when at
    #: least ``empty_crop_min_fraction`` of its ``empty_crop_channel`` pixels exceed
    #: ``empty_crop_z`` DMSO standard deviations; 0 disables the filter
    empty_crop_min_fraction: float = 0.0
    empty_crop_channel: str = "DAPI"
    empty_crop_z: float = 2.0
    #: "error": a missing, corrupt or wrongly sized image stops the job; "skip": the field is
    #: left out, logged, and listed in the plate's report
    on_bad_image: str = "error"
    #: "float16": the z-scores as they are; "uint8": each field's z-scores min-max scaled to
    #: 0..255 over all its channels (the paper's 8-bit images)
    stored_dtype: str = "float16"

    @classmethod
    def from_dict(cls, values: dict | None) -> "Normalization":
        norm = cls(**(values or {}))
        if norm.on_bad_image not in ("error", "skip"):
            raise ValueError(f"on_bad_image must be 'error' or 'skip', not {norm.on_bad_image!r}")
        if norm.stored_dtype not in ("float16", "uint8"):
            raise ValueError(f"stored_dtype must be 'float16' or 'uint8', not {norm.stored_dtype!r}")
        return norm


def to_uint8(field: np.ndarray) -> np.ndarray:
    """The paper's scaling to 8 bits: a field's values min-max mapped to 0..255 over all its
    channels, rounded (a constant field becomes 0)."""
    lo, hi = float(field.min()), float(field.max())
    scaled = (field - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(field)
    return np.rint(scaled).astype(np.uint8)


class BadImages:
    """Fields left out because of a bad image (with ``on_bad_image: skip``)."""

    def __init__(self, skip: bool):
        self.skip = skip
        self.records: list[dict] = []

    def handle(self, row, error: ImageError, stage: str) -> None:
        if not self.skip:
            raise error
        log.warning("skipping field %s (image %s) in %s: %s", row.get("well"), row.get("image_number"), stage, error)
        self.records.append({"image_number": int(row["image_number"]), "well": row["well"], "site": int(row["site"]),
                             "stage": stage, "reason": str(error)})

    @property
    def image_numbers(self) -> set[int]:
        return {r["image_number"] for r in self.records}

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.records, columns=["image_number", "well", "site", "stage", "reason"])


def _decode(path: Path) -> np.ndarray:
    """TIFFs with tifffile (BBBC021), anything else (BBBC014's BMPs, PNGs) with Pillow."""
    if path.suffix.lower() in (".tif", ".tiff"):
        kind = "a TIFF"
        try:
            image = tifffile.imread(path)
        except Exception as exc:  # tifffile raises several types for corrupt files
            raise ImageError(f"{path}: cannot be read as {kind} ({exc})") from exc
    else:
        from PIL import Image

        kind = f"an image ({path.suffix or 'no suffix'})"
        try:
            with Image.open(path) as img:
                if img.mode == "P":  # palette BMPs: the grey levels, not the palette indices
                    img = img.convert("L")
                image = np.asarray(img)
        except Exception as exc:  # Pillow raises several types for corrupt files
            raise ImageError(f"{path}: cannot be read as {kind} ({exc})") from exc
        if image.ndim == 3 and image.shape[-1] in (3, 4):
            rgb = image[..., :3]
            if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
                raise ImageError(f"{path}: expected a grey-level image, got colour (RGB channels differ)")
            image = rgb[..., 0]
    if image.size == 0:
        raise ImageError(f"{path}: cannot be read as {kind} (no image data; the file is corrupt or truncated)")
    return image


def read_image(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read one single-channel image (TIFF, BMP, PNG) as float32, checking it exists, decodes
    and has ``shape``."""
    return read_raw(path, shape).astype(np.float32)


def read_raw(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """:func:`read_image` without the conversion: the stored dtype (uint16, uint8)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: image listed in the metadata is missing")
    image = np.squeeze(_decode(path))
    if image.ndim != 2:
        raise ImageError(f"{path}: expected a single-channel 2-D image, got shape {image.shape}")
    _require_shape(path, image, shape)
    return image


def _require_shape(path: Path, image: np.ndarray, shape) -> None:
    if shape is not None and image.shape != tuple(shape):
        raise ImageError(f"{path}: image is {image.shape[0]} x {image.shape[1]}, expected {shape[0]} x {shape[1]}")


def prefetched(rows: pd.DataFrame, load, ahead: int = 2):
    """Yield ``(row, load(row))`` for every row in order, the ImageError in place of the result
    where ``load`` raised one. With ``ahead`` > 0, ``ahead`` reader threads load rows ahead (at
    most 2 ``ahead`` fields in memory) while the caller works on the current one (file reads and
    NumPy release the GIL for much of their time); 0 loads in the calling thread."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    def safe(row):
        try:
            return load(row)
        except ImageError as err:
            return err

    records = (row for _, row in rows.iterrows())
    if ahead <= 0:
        for row in records:
            yield row, safe(row)
        return
    with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="cellmoa-reader") as pool:
        pending: deque = deque()
        for row in records:
            pending.append((row, pool.submit(safe, row)))
            if len(pending) > 2 * ahead:
                done_row, future = pending.popleft()
                yield done_row, future.result()
        while pending:
            done_row, future = pending.popleft()
            yield done_row, future.result()


def _read_channels(row, raw_dir: Path, channels) -> list[np.ndarray]:
    return [read_raw(Path(raw_dir) / row[f"file_{c}"]) for c in channels]


def _check_shape(row, raw_dir: Path, channels, images: list[np.ndarray], shape) -> None:
    for channel, image in zip(channels, images):
        _require_shape(Path(raw_dir) / row[f"file_{channel}"], image, shape)


class _ReferenceSums:
    """Per-pixel sum and sum of squares of a group's raw reference images, per channel (float64),
    so that the mean and standard deviation of the *corrected* images (raw / F) follow exactly
    once the illumination function F is known: sum(x / F) = sum_p S_p / F_p and
    sum((x / F)^2) = sum_p Q_p / F_p^2."""

    def __init__(self, channels):
        self.channels = list(channels)
        self.count = 0
        self.total: dict[str, np.ndarray] = {}
        self.total_sq: dict[str, np.ndarray] = {}

    def add(self, images: list[np.ndarray]) -> None:
        for channel, image in zip(self.channels, images):
            if channel not in self.total:
                self.total[channel] = np.zeros(image.shape, np.float64)
                self.total_sq[channel] = np.zeros(image.shape, np.float64)
            wide = image.astype(np.float64)
            self.total[channel] += wide
            wide *= wide
            self.total_sq[channel] += wide
        self.count += 1

    def statistics(self, functions: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        mean, std = [], []
        for channel in self.channels:
            f = functions[channel].astype(np.float64)
            n = self.count * f.size
            m = float(np.sum(self.total[channel] / f)) / n
            ex2 = float(np.sum(self.total_sq[channel] / (f * f))) / n
            mean.append(m)
            std.append(np.sqrt(max(ex2 - m * m, 0.0)))
        return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def plate_illumination(
    rows: pd.DataFrame,
    raw_dir: Path,
    channels: tuple[str, ...],
    params: IlluminationParams,
    bad: BadImages | None = None,
) -> dict[str, np.ndarray]:
    """Illumination function per channel from all of one plate's images (streaming mean: one
    field in memory at a time). Bad fields raise, or are skipped and recorded in ``bad``."""
    return illumination_pass(rows, raw_dir, channels, params, bad)[0]


def illumination_pass(
    rows: pd.DataFrame,
    raw_dir: Path,
    channels: tuple[str, ...],
    params: IlluminationParams,
    bad: BadImages | None = None,
    reference: pd.DataFrame | None = None,
    prefetch: int = 1,
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """One streaming read of the plate: the illumination function per channel, and, for the
    ``reference`` rows (BBBC021: DMSO), the mean and standard deviation per cell line and channel
    of their illumination-corrected images: what :func:`reference_statistics` computes with a
    second read, here without one (exact up to float64 rounding; not for the Anscombe transform,
    which is not linear). ``prefetch``: fields read ahead by a reader thread (0 = none). Returns
    (functions, {cell line: (mean, std)})."""
    if rows.empty:
        raise ValueError("no images for this plate in the metadata")
    bad = bad or BadImages(skip=False)
    means = {c: RunningMean() for c in channels}
    ref_numbers = set() if reference is None else set(reference["image_number"].astype(int))
    sums: dict[str, _ReferenceSums] = {}
    shape = None
    for row, images in prefetched(rows, lambda r: _read_channels(r, raw_dir, channels), prefetch):
        try:
            if isinstance(images, ImageError):
                raise images
            _check_shape(row, raw_dir, channels, images, shape or images[0].shape)
        except ImageError as err:
            bad.handle(row, err, "illumination")
            continue
        shape = images[0].shape
        for channel, image in zip(channels, images):
            means[channel].add(image)
        if int(row["image_number"]) in ref_numbers:
            sums.setdefault(str(row["cell_line"]), _ReferenceSums(channels)).add(images)
    if shape is None:
        raise ValueError("no readable images for this plate")
    functions = {c: illumination_function(means[c].mean, params) for c in channels}
    return functions, {group: acc.statistics(functions) for group, acc in sorted(sums.items())}


def write_illumination(
    path: Path,
    plate: str,
    functions: dict[str, np.ndarray],
    params: IlluminationParams,
    reference_stats: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> None:
    """``/function`` (C, H, W) float32 plus ``channels``, ``plate`` and the parameters as
    attributes; with ``reference_stats``, ``/reference_mean`` and ``/reference_std`` (G, C) of the
    corrected reference images per cell line (attribute ``reference_groups``)."""
    channels = list(functions)
    tmp = _tmp_path(path)
    with h5py.File(tmp, "w") as f:
        f.create_dataset("function", data=np.stack([functions[c] for c in channels]))
        f.attrs["channels"] = channels
        f.attrs["plate"] = plate
        for key, value in vars(params).items():
            f.attrs[key] = value
        if reference_stats:
            groups = sorted(reference_stats)
            f.attrs["reference_groups"] = groups
            f.create_dataset("reference_mean", data=np.stack([reference_stats[g][0] for g in groups]))
            f.create_dataset("reference_std", data=np.stack([reference_stats[g][1] for g in groups]))
        f.attrs["cellmoa_version"] = __version__
    os.replace(tmp, path)


def read_illumination(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {c: f["function"][i] for i, c in enumerate(f.attrs["channels"])}


def read_reference_statistics(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The reference statistics an illumination file holds ({} when it holds none)."""
    with h5py.File(path, "r") as f:
        if "reference_mean" not in f:
            return {}
        groups = [str(g) for g in f.attrs["reference_groups"]]
        return {g: (f["reference_mean"][i], f["reference_std"][i]) for i, g in enumerate(groups)}


def _tmp_path(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def anscombe(x: np.ndarray) -> np.ndarray:
    """Anscombe's variance-stabilising transform 2 sqrt(x + 3/8)."""
    return 2.0 * np.sqrt(np.maximum(x, 0.0) + 0.375)


def load_field(row, raw_dir: Path, channels, functions, shape=None, use_anscombe: bool = False) -> np.ndarray:
    """One field of view, illumination-corrected (and Anscombe-transformed), as (H, W, C) float32."""
    raws = _read_channels(row, raw_dir, channels)
    _check_shape(row, raw_dir, channels, raws, shape)
    return corrected_field(raws, channels, functions, use_anscombe)


def corrected_field(raws: list[np.ndarray], channels, functions, use_anscombe: bool = False) -> np.ndarray:
    """A field's raw channel images illumination-corrected (and Anscombe-transformed), (H, W, C) float32."""
    field = np.stack([correct(raw, functions[c]) for raw, c in zip(raws, channels)], axis=-1)
    return anscombe(field).astype(np.float32) if use_anscombe else field


def reference_statistics(
    rows: pd.DataFrame, raw_dir: Path, channels, functions, use_anscombe: bool = False, bad: BadImages | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over all pixels of the given corrected fields (the
    plate's DMSO fields for BBBC021)."""
    if rows.empty:
        raise ValueError("the plate has no reference (control) images to normalise with")
    bad = bad or BadImages(skip=False)
    shape = next(iter(functions.values())).shape
    total = np.zeros(len(channels))
    total_sq = np.zeros(len(channels))
    count = 0
    for _, row in rows.iterrows():
        if int(row["image_number"]) in bad.image_numbers:
            continue
        try:
            field = load_field(row, raw_dir, channels, functions, shape, use_anscombe)
        except ImageError as err:
            bad.handle(row, err, "tensors")
            continue
        flat = field.reshape(-1, field.shape[-1])
        total += flat.sum(axis=0, dtype=np.float64)
        total_sq += np.square(flat).sum(axis=0, dtype=np.float64)
        count += flat.shape[0]
    if count == 0:
        raise ValueError("none of the plate's reference (control) images could be read")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    if np.any(std <= 0):
        raise ValueError("a channel of the reference images is constant; cannot standardise")
    return mean.astype(np.float32), std.astype(np.float32)


def _standardised_field(raws: list[np.ndarray], scales, shape, shifts) -> np.ndarray:
    """One field's raw channel images corrected and z-scored with one multiply-add per pixel
    (raw * scale - shift), (H, W, C) float32."""
    field = np.empty(tuple(shape) + (len(raws),), np.float32)
    plane = np.empty(shape, np.float32)
    for k, raw in enumerate(raws):
        np.multiply(raw, scales[k], out=plane)
        plane -= np.float32(shifts[k])
        field[..., k] = plane
    return field


def crop_grid(field: np.ndarray, rows: int, cols: int) -> list[np.ndarray]:
    """Cut an (H, W, C) field into rows x cols equal crops, row-major (remainder pixels dropped)."""
    h, w = field.shape[0] // rows, field.shape[1] // cols
    return [field[r * h : (r + 1) * h, c * w : (c + 1) * w] for r in range(rows) for c in range(cols)]


def resize_field(field: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize an (H, W, C) field to ``size`` = (height, width) by area averaging (anti-aliased
    linear interpolation; BBBC014: 1024 x 1360 -> 1024 x 1024, as the paper did); None keeps it."""
    if size is None or tuple(field.shape[:2]) == tuple(size):
        return field
    from skimage.transform import resize

    out = resize(field, (size[0], size[1], field.shape[2]), order=1, mode="edge", anti_aliasing=True,
                 preserve_range=True)
    return out.astype(np.float32)


def write_plate_tensors(
    out_path: Path,
    plate: str,
    rows: pd.DataFrame,
    reference: pd.DataFrame,
    raw_dir: Path,
    channels: tuple[str, ...],
    functions: dict[str, np.ndarray],
    crop_rows: int = 2,
    crop_cols: int = 2,
    normalization: Normalization = Normalization(),
    bad: BadImages | None = None,
    field_size: tuple[int, int] | None = None,
    reference_name: str = "DMSO control fields",
    reference_stats: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    prefetch: int = 1,
) -> int:
    """Write one plate's tensors (labelled fields in ``rows``, standardised with the statistics of
    the ``reference`` fields of the same cell line: BBBC021's DMSO fields, or all of a cell
    line's fields for a dataset without controls).

    ``reference_stats`` ({cell line: (mean, std)}, from :func:`illumination_pass`) spares reading
    the reference fields again; a cell line missing from it (or any, with the Anscombe transform)
    is computed here. Each corrected field is standardised, resized to ``field_size`` (None =
    kept) and cut into ``crop_rows`` x ``crop_cols`` crops. Processes one well at a time; writes to a temporary file
    renamed on success. Fields with a bad image raise, or with ``bad.skip`` are left out and
    recorded in ``bad``. Returns N (crops).
    """
    bad = bad or BadImages(skip=normalization.on_bad_image == "skip")
    norm = normalization
    groups = sorted(rows["cell_line"].unique())
    stats = {}
    for group in groups:
        if reference_stats and group in reference_stats and not norm.anscombe:
            stats[group] = tuple(np.asarray(v, np.float32) for v in reference_stats[group])
            if np.any(stats[group][1] <= 0):
                raise ValueError(f"plate {plate}: a channel of the reference images of {group!r} is constant; cannot standardise")
            continue
        ref = reference[reference["cell_line"] == group]
        if ref.empty:
            raise ValueError(f"plate {plate}: no reference fields ({reference_name}) of cell line {group!r} to normalise with")
        stats[group] = reference_statistics(ref, raw_dir, channels, functions, norm.anscombe, bad)
    shape = next(iter(functions.values())).shape
    # without Anscombe, correction and standardisation fold into one multiply-add per pixel:
    # (x / F - mean) / std = x * (1 / (F * std)) - mean / std, with 1 / (F * std) per cell line
    scales = {
        group: [(1.0 / (functions[c].astype(np.float64) * stats[group][1][k])).astype(np.float32)
                for k, c in enumerate(channels)]
        for group in (groups if not norm.anscombe else [])
    }
    out_shape = tuple(field_size) if field_size is not None else shape
    ch, cw = out_shape[0] // crop_rows, out_shape[1] // crop_cols
    if ch < 1 or cw < 1:
        raise ValueError(f"crops of {out_shape[0]} x {out_shape[1]} fields in a {crop_rows} x {crop_cols} grid would be empty")
    capacity = len(rows) * crop_rows * crop_cols
    empty_channel = list(channels).index(norm.empty_crop_channel) if norm.empty_crop_min_fraction > 0 else None
    n_empty = 0
    tmp = _tmp_path(out_path)
    meta: dict[str, list] = {k: [] for k in METADATA_FIELDS}
    with h5py.File(tmp, "w") as f:
        images = f.create_dataset(
            "images",
            shape=(capacity, ch, cw, len(channels)),
            maxshape=(None, ch, cw, len(channels)),
            dtype=np.dtype(norm.stored_dtype),
            chunks=(1, ch, cw, len(channels)),
        )
        i = 0
        skipped = bad.image_numbers
        todo = rows[~rows["image_number"].astype(int).isin(skipped)] if skipped else rows
        # one well after the other (in the order of the metadata), fields read ahead by a thread
        order = todo.groupby("well", sort=False).ngroup()
        todo = todo.iloc[np.argsort(order.to_numpy(), kind="stable")]
        def prepare(row):
            """Read, correct, standardise, resize, scale and cut one field (in the reader thread):
            the crops to store as (index, crop) and how many were dropped as empty."""
            raw = _read_channels(row, raw_dir, channels)
            _check_shape(row, raw_dir, channels, raw, shape)
            mean, std = stats[row["cell_line"]]
            if norm.anscombe:
                field = (corrected_field(raw, channels, functions, True) - mean) / std
            else:
                field = _standardised_field(raw, scales[row["cell_line"]], shape, mean / std)
            field = resize_field(field, field_size)
            stored = to_uint8(field) if norm.stored_dtype == "uint8" else field.astype(np.float16)
            kept, empty = [], 0
            crops = zip(crop_grid(field, crop_rows, crop_cols), crop_grid(stored, crop_rows, crop_cols))
            for k, (crop, stored_crop) in enumerate(crops):
                if empty_channel is not None and (
                    np.mean(crop[..., empty_channel] > norm.empty_crop_z) < norm.empty_crop_min_fraction
                ):
                    empty += 1
                else:
                    kept.append((k, stored_crop))
            return kept, empty

        well = None
        for row, prepared in prefetched(todo, prepare, prefetch):
            if well is not None and row["well"] != well:
                log.info("%s: well %s done (%d crops so far)", plate, well, i)
            well = row["well"]
            if isinstance(prepared, ImageError):
                bad.handle(row, prepared, "tensors")
                continue
            kept, empty = prepared
            n_empty += empty
            for k, stored_crop in kept:
                images[i] = stored_crop
                for key in METADATA_FIELDS:
                    meta[key].append(k if key == "crop" else row[key])
                i += 1
        if well is not None:
            log.info("%s: well %s done (%d crops so far)", plate, well, i)
        images.resize(i, axis=0)
        _write_metadata(f, meta)
        f.attrs["plate"] = plate
        f.attrs["channels"] = list(channels)
        f.attrs["crop_grid"] = (crop_rows, crop_cols)
        f.attrs["crop_shape"] = (ch, cw)
        f.attrs["field_size"] = out_shape
        f.attrs["reference"] = reference_name
        f.attrs["reference_groups"] = [str(g) for g in groups]
        f.attrs["reference_mean"] = np.array([stats[g][0] for g in groups], np.float32).reshape(len(groups), len(channels))
        f.attrs["reference_std"] = np.array([stats[g][1] for g in groups], np.float32).reshape(len(groups), len(channels))
        f.attrs["anscombe"] = norm.anscombe
        f.attrs["stored_dtype"] = norm.stored_dtype
        f.attrs["empty_crops_dropped"] = n_empty
        f.attrs["fields_skipped"] = len(bad.records)
        f.attrs["normalization"] = (
            "illumination-corrected" + (", Anscombe-transformed" if norm.anscombe else "")
            + f", z-score per channel by the plate's {reference_name} of the same cell line"
            + (f", resized to {out_shape[0]} x {out_shape[1]}" if field_size is not None else "")
            + (", min-max scaled to 0..255 per field (uint8)" if norm.stored_dtype == "uint8" else "")
        )
        f.attrs["cellmoa_version"] = __version__
    os.replace(tmp, out_path)
    if n_empty:
        log.info("%s: dropped %d empty crops (%s)", plate, n_empty, norm.empty_crop_channel)
    return i


def _write_metadata(f: h5py.File, meta: dict[str, list]) -> None:
    group = f.create_group("metadata")
    for key in METADATA_FIELDS:
        values = meta[key]
        if key in STRING_FIELDS:
            group.create_dataset(key, data=np.array([str(v) for v in values], dtype=object), dtype=h5py.string_dtype())
        elif key in FLOAT_FIELDS:
            group.create_dataset(key, data=np.asarray(values, dtype=np.float64))
        else:
            group.create_dataset(key, data=np.asarray(values, dtype=np.int64))


def read_metadata(path: Path) -> pd.DataFrame:
    """The ``/metadata`` table of a plate file or of the assembled file, one row per crop."""
    with h5py.File(path, "r") as f:
        group = f["metadata"]
        data = {}
        for key in METADATA_FIELDS:
            values = group[key][()]
            data[key] = [v.decode() for v in values] if key in STRING_FIELDS else values
    return pd.DataFrame(data)


def assemble(plate_files: list[Path], out_path: Path) -> int:
    """Expose all plates as one file: ``/images`` a virtual dataset, ``/metadata/*`` concatenated.

    Plate files must sit in the same folder as ``out_path`` (they are referenced by file name, so
    the folder can be moved as a whole). Returns the total number of crops.
    """
    out_path = Path(out_path)
    shapes, attrs, counts, dtypes = [], [], [], []
    meta: dict[str, list] = {k: [] for k in METADATA_FIELDS}
    for path in plate_files:
        path = Path(path)
        if path.resolve().parent != out_path.resolve().parent:
            raise ValueError(f"{path}: plate tensors must sit beside {out_path} to be assembled")
        with h5py.File(path, "r") as f:
            shapes.append(f["images"].shape)
            dtypes.append(f["images"].dtype)
            attrs.append(dict(channels=list(f.attrs["channels"]), crop_shape=tuple(f.attrs["crop_shape"])))
            counts.append(f["images"].shape[0])
            for key in METADATA_FIELDS:
                values = f["metadata"][key][()]
                meta[key].extend(v.decode() if isinstance(v, bytes) else v for v in values)
    if not shapes:
        raise ValueError("no plate tensors to assemble")
    if any(a != attrs[0] for a in attrs) or len(set(dtypes)) > 1:
        raise ValueError("plate tensors differ in channels, crop shape or dtype; rebuild them with one config")
    total = sum(counts)
    item_shape = shapes[0][1:]
    layout = h5py.VirtualLayout(shape=(total,) + item_shape, dtype=dtypes[0])
    start = 0
    for path, n in zip(plate_files, counts):
        if n:
            layout[start : start + n] = h5py.VirtualSource(Path(path).name, "images", shape=(n,) + item_shape)
        start += n
    tmp = _tmp_path(out_path)
    with h5py.File(tmp, "w", libver="latest") as f:
        f.create_virtual_dataset("images", layout, fillvalue=np.nan if dtypes[0].kind == "f" else 0)
        group = f.create_group("metadata")
        for key in METADATA_FIELDS:
            values = meta[key]
            if key in STRING_FIELDS:
                group.create_dataset(key, data=np.array(values, dtype=object), dtype=h5py.string_dtype())
            else:
                group.create_dataset(key, data=np.asarray(values))
        f.attrs["channels"] = attrs[0]["channels"]
        f.attrs["crop_shape"] = attrs[0]["crop_shape"]
        f.attrs["plates"] = [Path(p).stem for p in plate_files]
        f.attrs["plate_rows"] = counts
        f.attrs["cellmoa_version"] = __version__
    os.replace(tmp, out_path)
    return total


def build_tensors(dataset, raw_dir: Path, out_dir: Path, plates: list[str] | None = None,
                  illumination: IlluminationParams = IlluminationParams(),
                  normalization: Normalization = Normalization(), field_size="dataset") -> Path:
    """All stages from raw plate folders to ``out_dir/all.h5`` in one call (what the illumination,
    tensors and assemble_tensors rules do one plate at a time), with the dataset's own crop grid
    and field size (``field_size`` overrides the latter): for tests, benchmarks, notebooks."""
    if field_size == "dataset":
        field_size = dataset.field_size
    metadata = dataset.read_metadata(raw_dir)
    out_dir = Path(out_dir)
    paths = []
    for plate in plates or sorted(metadata["plate"].unique()):
        rows = metadata[metadata["plate"] == plate]
        reference = dataset.reference(rows)
        functions, stats = illumination_pass(rows, raw_dir, dataset.channels, illumination, reference=reference)
        path = out_dir / f"{plate}.h5"
        write_plate_tensors(path, plate, dataset.labelled(rows), reference, raw_dir, dataset.channels,
                            functions, *dataset.crop_grid, normalization=normalization,
                            field_size=field_size, reference_name=reference_name(dataset), reference_stats=stats)
        paths.append(path)
    assemble(paths, out_dir / "all.h5")
    return out_dir / "all.h5"


def reference_name(dataset) -> str:
    """What the dataset's reference fields are, in words (stored with the tensors)."""
    if dataset.control is None:
        return "fields (all of them; the dataset has no control wells)"
    return f"{dataset.control} control fields"
