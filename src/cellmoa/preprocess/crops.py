"""Fields into crops: the resize before cutting, the crop grid, and the empty-crop filter."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

#: the crop (height, width) aimed at where the grid is left to the field size: the paper's
#: BBBC021 crops (a quarter of a 1024 x 1280 field)
TARGET_CROP = (512, 640)


@dataclass(frozen=True)
class CropGeometry:
    """How a field is cut.

    Resized to ``field_size`` (height, width; None keeps it) and cut into ``rows`` x ``cols`` equal
    crops, row-major (crop 0 is top-left; remainder pixels dropped). ``rows`` or ``cols`` None: from
    the field size, crops as near :data:`TARGET_CROP` as a whole grid allows (:meth:`for_field`).

    >>> CropGeometry(None, None).for_field((2160, 2160))
    CropGeometry(rows=4, cols=3, field_size=None)
    """

    rows: int | None = 2
    cols: int | None = 2
    field_size: tuple[int, int] | None = None

    def for_field(self, shape: tuple[int, int]) -> "CropGeometry":
        """The geometry with its grid decided for fields of ``shape`` (itself when set)."""
        if self.rows is not None and self.cols is not None:
            return self
        out = self.output_field(shape)
        rows = self.rows or max(1, round(out[0] / TARGET_CROP[0]))
        cols = self.cols or max(1, round(out[1] / TARGET_CROP[1]))
        return replace(self, rows=int(rows), cols=int(cols))

    def output_field(self, shape: tuple[int, int]) -> tuple[int, int]:
        """The field size after the resize, for fields of ``shape``."""
        return tuple(self.field_size) if self.field_size is not None else tuple(shape)

    def crop_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """(height, width) of one crop of fields of ``shape``; refuses empty crops."""
        grid = self.for_field(shape)
        out = self.output_field(shape)
        ch, cw = out[0] // grid.rows, out[1] // grid.cols
        if ch < 1 or cw < 1:
            raise ValueError(
                f"crops of {out[0]} x {out[1]} fields in a {grid.rows} x {grid.cols} grid would be "
                "empty"
            )
        return ch, cw

    def resize(self, field: np.ndarray) -> np.ndarray:
        """Resize a field to ``field_size`` (:func:`resize_field`)."""
        return resize_field(field, self.field_size)

    def cut(self, field: np.ndarray) -> list[np.ndarray]:
        """The crops of an already resized field."""
        grid = self.for_field(field.shape[:2])
        return crop_grid(field, grid.rows, grid.cols)


@dataclass(frozen=True)
class EmptyCropFilter:
    """The paper's empty-crop filter.

    A crop is kept when at least ``min_fraction`` of its ``channel`` pixels exceed ``z`` reference
    standard deviations; ``min_fraction`` 0 disables it.
    """

    min_fraction: float = 0.0
    channel: str = "DAPI"
    z: float = 2.0

    @property
    def enabled(self) -> bool:
        """Whether the filter drops anything (``min_fraction`` > 0)."""
        return self.min_fraction > 0

    def channel_index(self, channels) -> int | None:
        """The index of the filter's channel among ``channels``; None when the filter is off."""
        if not self.enabled:
            return None
        if self.channel not in channels:
            raise ValueError(
                f"empty_crop_channel {self.channel!r} is not one of the dataset's channels "
                f"{', '.join(channels)}"
            )
        return list(channels).index(self.channel)

    def is_empty(self, crop: np.ndarray, index: int | None) -> bool:
        """Whether a z-scored (H, W, C) crop is empty; ``index`` from :meth:`channel_index`."""
        return index is not None and float(np.mean(crop[..., index] > self.z)) < self.min_fraction


def crop_grid(field: np.ndarray, rows: int, cols: int) -> list[np.ndarray]:
    """Cut an (H, W, C) field into rows x cols equal crops, row-major (remainder pixels dropped)."""
    h, w = field.shape[0] // rows, field.shape[1] // cols
    return [
        field[r * h : (r + 1) * h, c * w : (c + 1) * w] for r in range(rows) for c in range(cols)
    ]


def resize_field(field: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize an (H, W, C) field to ``size`` = (height, width) by area averaging.

    Anti-aliased linear interpolation (BBBC014: 1024 x 1360 -> 1024 x 1024, as the paper did); None
    keeps the field as it is.
    """
    if size is None or tuple(field.shape[:2]) == tuple(size):
        return field
    from skimage.transform import resize

    out = resize(
        field,
        (size[0], size[1], field.shape[2]),
        order=1,
        mode="edge",
        anti_aliasing=True,
        preserve_range=True,
    )
    return out.astype(np.float32)


@dataclass(frozen=True)
class CellCrops:
    """Single-cell crops (``preprocessing.crops.mode: cells``).

    One ``size`` x ``size`` window centred on each nucleus centroid of the field's segmentation,
    at the field's own resolution. A window that would cross the field's border is left out;
    ``max_cells`` > 0 keeps a seeded sample of that many cells a field.

    Examples
    --------
    >>> field = np.arange(100, dtype=np.float32).reshape(10, 10, 1)
    >>> cells = CellCrops(size=4)
    >>> kept = cells.windows([(1, 5.2, 5.0), (2, 1.0, 1.0)], field.shape[:2])
    >>> kept
    [(1, 3, 3)]
    >>> cut_windows(field, kept, 4)[0][1][..., 0].tolist()[0]
    [33.0, 34.0, 35.0, 36.0]
    """

    size: int = 96
    max_cells: int = 0

    def windows(self, centroids, shape, seed: int = 0) -> list[tuple[int, int, int]]:
        """(label, top, left) of the windows kept, from (label, centroid row, centroid column)."""
        half = self.size // 2
        out = []
        for label, y, x in centroids:
            top, left = int(round(y)) - half, int(round(x)) - half
            inside = top >= 0 and left >= 0
            if inside and top + self.size <= shape[0] and left + self.size <= shape[1]:
                out.append((int(label), top, left))
        if self.max_cells and len(out) > self.max_cells:
            pick = np.random.default_rng(seed).choice(len(out), self.max_cells, replace=False)
            out = [out[i] for i in sorted(pick)]
        return out


def cut_windows(field: np.ndarray, windows, size: int) -> list[tuple[int, np.ndarray]]:
    """The (label, crop) of each (label, top, left) window of :meth:`CellCrops.windows`."""
    return [(label, field[top : top + size, left : left + size]) for label, top, left in windows]


def field_cutter(
    cells: CellCrops | None, geometry: CropGeometry, normalizer, centroids, n_fields: int
):
    """How a normalised field becomes crops: (cut, crop shape, capacity).

    ``cut(field, image_number)`` gives the [(crop id, crop)] of the field and of its stored form:
    the grid (crop ids 0..) of the paper's fields, or the windows around its nuclei (crop id = the
    nucleus's label) of single-cell crops.
    """
    if cells is None:

        def grid(field, image_number):
            field = geometry.resize(field)
            stored = geometry.cut(normalizer.store(field))
            return list(enumerate(geometry.cut(field))), list(enumerate(stored))

        return grid, geometry.crop_shape(normalizer.shape), n_fields * geometry.rows * geometry.cols
    if centroids is None:
        raise ValueError(
            "preprocessing.crops.mode: cells needs the plate's segmentation (nucleus centroids)"
        )

    def around_nuclei(field, image_number):
        windows = cells.windows(centroids.get(image_number, []), field.shape[:2], image_number)
        return (
            cut_windows(field, windows, cells.size),
            cut_windows(normalizer.store(field), windows, cells.size),
        )

    capacity = sum(len(v) for v in centroids.values())
    if cells.max_cells:
        capacity = min(capacity, n_fields * cells.max_cells)
    return around_nuclei, (cells.size, cells.size), max(capacity, 1)


def nucleus_centroids(objects: pd.DataFrame, usable: set[int] | None = None) -> dict[int, list]:
    """Each field's nuclei as :func:`write_plate_tensors` takes them, from a segmentation's objects.

    ``objects`` is a plate's object table (``results/segmentation/<plate>.objects.parquet``);
    ``usable`` the image numbers whose segmentation passed its QC (the others give no crops).

    Examples
    --------
    >>> objects = pd.DataFrame({"image_number": [7, 7, 8], "kind": ["nucleus", "cell", "nucleus"],
    ...                         "label": [1, 1, 1], "centroid_y": [5.0, 6.0, 9.0],
    ...                         "centroid_x": [4.0, 4.0, 2.0]})
    >>> nucleus_centroids(objects, usable={7})
    {7: [(1, 5.0, 4.0)]}
    """
    nuclei = objects[objects["kind"] == "nucleus"]
    if usable is not None:
        nuclei = nuclei[nuclei["image_number"].astype(int).isin(usable)]
    return {
        int(number): list(
            zip(group["label"].astype(int), group["centroid_y"], group["centroid_x"], strict=True)
        )
        for number, group in nuclei.groupby("image_number", sort=False)
    }
