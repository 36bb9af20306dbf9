"""Reading a field's images.

One single-channel image per channel (TIFF with tifffile; BMP, PNG with Pillow), checked to exist,
decode and have the plate's shape; a reader thread that loads the next fields while the current one
is processed; and the record of fields left out because of a bad image (``on_bad_image: skip``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

log = logging.getLogger(__name__)


class ImageError(RuntimeError):
    """An input image is missing, unreadable or of the wrong size; the message names the file."""


class BadImages:
    """Fields left out because of a bad image (with ``on_bad_image: skip``)."""

    def __init__(self, skip: bool):
        self.skip = skip
        self.records: list[dict] = []

    def handle(self, row, error: ImageError, stage: str) -> None:
        """Raise ``error``, or with ``skip`` log and record the field it leaves out."""
        if not self.skip:
            raise error
        log.warning(
            "skipping field %s (image %s) in %s: %s",
            row.get("well"),
            row.get("image_number"),
            stage,
            error,
        )
        self.records.append(
            {
                "image_number": int(row["image_number"]),
                "well": row["well"],
                "site": int(row["site"]),
                "stage": stage,
                "reason": str(error),
            }
        )

    @property
    def image_numbers(self) -> set[int]:
        """The image numbers of the fields left out."""
        return {r["image_number"] for r in self.records}

    def table(self) -> pd.DataFrame:
        """The fields left out, one row each (the plate's bad-image report)."""
        return pd.DataFrame(
            self.records, columns=["image_number", "well", "site", "stage", "reason"]
        )


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
            if not (
                np.array_equal(rgb[..., 0], rgb[..., 1])
                and np.array_equal(rgb[..., 0], rgb[..., 2])
            ):
                raise ImageError(
                    f"{path}: expected a grey-level image, got colour (RGB channels differ)"
                )
            image = rgb[..., 0]
    if image.size == 0:
        raise ImageError(
            f"{path}: cannot be read as {kind} (no image data; the file is corrupt or truncated)"
        )
    return image


def read_image(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read one single-channel image (TIFF, BMP, PNG) as float32.

    Checks that it exists, decodes and has ``shape``.
    """
    return read_raw(path, shape).astype(np.float32)


def read_raw(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """:func:`read_image` without the conversion: the stored dtype (uint16, uint8)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: image listed in the metadata is missing")
    image = np.squeeze(_decode(path))
    if image.ndim != 2:
        raise ImageError(f"{path}: expected a single-channel 2-D image, got shape {image.shape}")
    require_shape(path, image, shape)
    return image


def require_shape(path: Path, image: np.ndarray, shape) -> None:
    """Refuse an image (read from ``path``) whose shape is not ``shape`` (None = any)."""
    if shape is not None and image.shape != tuple(shape):
        raise ImageError(
            f"{path}: image is {image.shape[0]} x {image.shape[1]}, expected {shape[0]} x "
            f"{shape[1]}"
        )


def prefetched(rows: pd.DataFrame, load, ahead: int = 2):
    """Yield ``(row, load(row))`` for every row in order.

    The ImageError comes in place of the result where ``load`` raised one. With ``ahead`` > 0,
    ``ahead`` reader threads load rows ahead (at most 2 ``ahead`` fields in memory) while the caller
    works on the current one (file reads and NumPy release the GIL for much of their time); 0 loads
    in the calling thread.
    """
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


def read_channels(row, raw_dir: Path, channels) -> list[np.ndarray]:
    """The raw images of one field, one per channel, in the order of ``channels``."""
    return [read_raw(Path(raw_dir) / row[f"file_{c}"]) for c in channels]


def check_shape(row, raw_dir: Path, channels, images: list[np.ndarray], shape) -> None:
    """Refuse a field whose channel images are not all of ``shape``."""
    for channel, image in zip(channels, images):
        require_shape(Path(raw_dir) / row[f"file_{channel}"], image, shape)


def image_header(path: Path) -> tuple[tuple[int, ...], str]:
    """``(shape, dtype)`` of an image without decoding its pixels.

    TIFF with tifffile, other formats with Pillow.
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            return tuple(int(s) for s in page.shape), str(np.dtype(page.dtype))
    from PIL import Image

    with Image.open(path) as img:
        dtype = {
            "1": "bool",
            "L": "uint8",
            "P": "uint8",
            "RGB": "uint8",
            "RGBA": "uint8",
            "I;16": "uint16",
            "I;16B": "uint16",
            "I": "int32",
            "F": "float32",
        }.get(img.mode, img.mode)
        return (img.height, img.width), dtype


def check_plate_images(files: list[tuple[Path, int]], plate: str, source: str) -> dict:
    """Refuse a plate whose images differ in size or bit depth.

    The error names the file and CSV line of the first image that differs from the plate's first
    image, and the fix. Returns the plate's ``{"shape": .., "dtype": ..}``.
    """
    if not files:
        raise ImageError(f"plate {plate}: no images")
    first_path, first_line = files[0]
    shape, dtype = image_header(first_path)
    for path, line in files[1:]:
        this_shape, this_dtype = image_header(path)
        if this_shape != shape:
            raise ImageError(
                f"{source} line {line}: {path} is {' x '.join(map(str, this_shape))} but "
                f"{first_path} (line "
                f"{first_line}) of the same plate {plate} is {' x '.join(map(str, shape))}; a "
                "plate's images must "
                "share one size. Fix: re-export the odd images, or split the plate"
            )
        if this_dtype != dtype:
            raise ImageError(
                f"{source} line {line}: {path} is {this_dtype} but {first_path} (line "
                f"{first_line}) of plate "
                f"{plate} is {dtype}; 8-bit and 16-bit images mixed in one plate would be scaled "
                "differently. "
                "Fix: convert them to one bit depth"
            )
    return {"shape": shape, "dtype": dtype}
