"""Fields into crops: the resize before cutting, the crop grid, and the empty-crop filter."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

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
