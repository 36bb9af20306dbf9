"""What every synthesizer shares.

Stable seeds, the microscope (illumination fall-off, shot and read noise, quantisation), the
drawing of one cell's nucleus and body, and the plate writer that streams images into a zip
archive or plate folders.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellmoa.files import atomic_path


def from_settings(cls, values: dict | None, what: str):
    """Return ``cls(**values)`` for a dataclass of settings, refusing unknown keys by name.

    Parameters
    ----------
    cls : type
        The settings dataclass.
    values : dict or None
        The settings (None for the defaults).
    what : str
        What the keys are, for the message: "synthetic dataset parameter", "batch effect".

    Returns
    -------
    object
        The ``cls`` instance.

    Raises
    ------
    ValueError
        If ``values`` holds a key that is not a field of ``cls``.
    """
    values = dict(values or {})
    known = list(cls.__dataclass_fields__)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown {what}(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return cls(**values)


def stable_seed(*parts) -> list[int]:
    """A seed for ``np.random.default_rng`` from any values, the same in every Python process."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def illumination_field(
    rng: np.random.Generator, height: int, width: int, falloff: float
) -> np.ndarray:
    """A smooth multiplicative field, maximum 1, about 1/falloff in the far corner."""
    cy = height * (0.5 + rng.uniform(-0.12, 0.12))
    cx = width * (0.5 + rng.uniform(-0.12, 0.12))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    # radius normalised so that the farthest corner sits at r = 1
    corners = [(0, 0), (0, width - 1), (height - 1, 0), (height - 1, width - 1)]
    rmax = max(np.hypot(y - cy, x - cx) for y, x in corners)
    aspect = rng.uniform(0.85, 1.15)
    r2 = (((yy - cy) * aspect) ** 2 + ((xx - cx) / aspect) ** 2) / rmax**2
    fld = np.exp(-np.log(falloff) * r2)
    return (fld / fld.max()).astype(np.float32)


def smooth_noise(rng: np.random.Generator, height: int, width: int, scale: float) -> np.ndarray:
    """Gaussian-smoothed white noise of unit standard deviation (a texture)."""
    from scipy.ndimage import gaussian_filter

    noise = gaussian_filter(rng.standard_normal((height, width)), scale)
    return noise / (noise.std() + 1e-9)


def camera(rng: np.random.Generator, photons: np.ndarray, shot: float, read: float) -> np.ndarray:
    """Photon counts with shot and read noise, before quantisation.

    The shot noise has variance ``shot`` x counts, the read noise standard deviation ``read``.
    """
    return photons + rng.normal(0, 1, photons.shape) * np.sqrt(shot * photons + read**2)


def soft_inside(distance: np.ndarray, sharpness: float) -> np.ndarray:
    """1 inside (distance < 1), 0 outside, with a logistic edge of the given sharpness."""
    return 1.0 / (1.0 + np.exp((distance - 1.0) * sharpness))


@dataclass
class CellWindow:
    """The pixels around one cell.

    The image slices and their coordinates relative to the centre, rotated by ``theta`` (``u``
    along the cell's long axis).
    """

    rows: slice
    cols: slice
    yy: np.ndarray
    xx: np.ndarray
    dy: np.ndarray
    dx: np.ndarray
    u: np.ndarray
    v: np.ndarray


def cell_window(
    rng: np.random.Generator, shape: tuple[int, int], cy: float, cx: float, extent: int
) -> CellWindow | None:
    """The window of ``extent`` pixels around (cy, cx), clipped to the image.

    Its coordinates are rotated by an angle drawn from ``rng``; None when it falls outside the
    image (no draw then).
    """
    h, w = shape
    y0, y1 = max(0, int(cy) - extent), min(h, int(cy) + extent + 1)
    x0, x1 = max(0, int(cx) - extent), min(w, int(cx) + extent + 1)
    if y0 >= y1 or x0 >= x1:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dy, dx = yy - cy, xx - cx
    theta = rng.uniform(0, np.pi)
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    return CellWindow(slice(y0, y1), slice(x0, x1), yy, xx, dy, dx, u, v)


def nucleus_mask(window: CellWindow, radius: float, elongation: float) -> np.ndarray:
    """An elliptical nucleus of the given radius and elongation (long axis along ``u``)."""
    a, b = radius * np.sqrt(elongation), radius / np.sqrt(elongation)
    return soft_inside(np.sqrt((window.u / a) ** 2 + (window.v / b) ** 2), 8.0)


class PlateWriter:
    """Writes a plate's images as they are made (never the whole plate in memory).

    Images go into a zip archive (renamed into place when complete) or as files in plate folders.
    """

    def __init__(self, out_dir: Path, archive: str | None):
        self.out_dir = Path(out_dir)
        self.zip = None
        if archive:
            self._atomic = atomic_path(self.out_dir / archive)
            self.zip = zipfile.ZipFile(
                self._atomic.__enter__(), "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
            )

    def add(self, member: str, data: bytes) -> None:
        """Write one image (``member``, a path relative to the output folder)."""
        if self.zip is not None:
            # a fixed time stamp, so that an archive is byte-identical for a seed (writestr with a
            # name stamps the current time: two runs a second apart differed)
            info = zipfile.ZipInfo(member, date_time=(2010, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            self.zip.writestr(info, data, compresslevel=1)
        else:
            target = self.out_dir / member
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def close(self) -> None:
        """Finish the archive and move it into place (nothing to do for plate folders)."""
        if self.zip is not None:
            self.zip.close()
            self._atomic.__exit__(None, None, None)
