"""The HDF5 layout of a plate's segmentation, written field by field and read back the same way.

Layout of ``results/segmentation/<plate>.h5`` (readable with plain h5py):

- ``/nuclei``: int32, shape (N, H, W), one field per chunk (gzip): the nuclei of field i,
  labelled 1..n (0 the background);
- ``/cells``: int32, shape (N, H, W): cell k holds nucleus k (0 where no cell was grown);
- ``/metadata/image_number``, ``/metadata/well``, ``/metadata/site``: which field row i is (the
  dataset's image number, as in the tensors' ``/metadata``);
- attributes: ``plate``, ``nucleus_channel``, ``cell_channel``, ``settings`` (the segmentation
  parameters as JSON), ``cellmoa_version``.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "P1.h5"
>>> nuclei = np.zeros((4, 5), np.int32)
>>> nuclei[1:3, 1:3] = 1
>>> with LabelWriter(path, (4, 5), {"plate": "P1"}) as writer:
...     writer.add(nuclei, nuclei * 2, image_number=7, well="B02", site=1)
>>> [(f["image_number"], f["well"], int(f["nuclei"].sum())) for f in read_fields(path)]
[(7, 'B02', 4)]
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from cellmoa import __version__
from cellmoa.files import atomic_path

#: the per-field metadata of a segmentation file
FIELD_KEYS = ("image_number", "well", "site")


class LabelWriter:
    """Writes a plate's label images one field at a time (to a temporary file, renamed at the end).

    Parameters
    ----------
    path : Path
        The segmentation file.
    shape : tuple
        (H, W) of every field.
    attrs : dict
        The file's attributes (``plate``, the channels, the settings).
    """

    def __init__(self, path: Path, shape: tuple[int, int], attrs: dict):
        self.path, self.shape, self.attrs = Path(path), tuple(shape), dict(attrs)
        self.meta: dict[str, list] = {k: [] for k in FIELD_KEYS}

    def __enter__(self) -> LabelWriter:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self.file = h5py.File(tmp, "w")
        for name in ("nuclei", "cells"):
            self.file.create_dataset(
                name,
                shape=(0, *self.shape),
                maxshape=(None, *self.shape),
                dtype=np.int32,
                chunks=(1, *self.shape),
                compression="gzip",
                compression_opts=4,
            )
        return self

    @property
    def count(self) -> int:
        """Fields written so far."""
        return len(self.meta["image_number"])

    def add(self, nuclei: np.ndarray, cells: np.ndarray | None, **field) -> None:
        """Append one field's labels (``cells`` None: no cells) and its :data:`FIELD_KEYS`."""
        if tuple(nuclei.shape) != self.shape:
            raise ValueError(
                f"{self.path}: field {field} is {nuclei.shape}, the plate's fields {self.shape}"
            )
        n = self.count
        for name, labels in (("nuclei", nuclei), ("cells", cells)):
            self.file[name].resize(n + 1, axis=0)
            self.file[name][n] = np.zeros(self.shape, np.int32) if labels is None else labels
        for key in FIELD_KEYS:
            self.meta[key].append(field[key])

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                group = self.file.create_group("metadata")
                group["image_number"] = np.asarray(self.meta["image_number"], np.int64)
                group["well"] = np.asarray(self.meta["well"], dtype=h5py.string_dtype())
                group["site"] = np.asarray(self.meta["site"], np.int64)
                self.file.attrs.update({**self.attrs, "cellmoa_version": __version__})
        finally:
            self.file.close()
            self._atomic.__exit__(*exc)


def field_index(path: Path) -> list[dict]:
    """Which field each row of a segmentation file is: ``image_number``, ``well``, ``site``."""
    with h5py.File(path, "r") as f:
        numbers, wells, sites = (f["metadata"][k][()] for k in FIELD_KEYS)
    return [
        {
            "image_number": int(n),
            "well": w.decode() if isinstance(w, bytes) else str(w),
            "site": int(s),
        }  # fmt: skip
        for n, w, s in zip(numbers, wells, sites)
    ]


def read_fields(path: Path, rows: list[int] | None = None) -> Iterator[dict]:
    """The fields of a segmentation file (or its ``rows``, in that order), one at a time.

    Yields dicts with ``image_number``, ``well``, ``site``, ``nuclei`` and ``cells`` (int32).
    """
    with h5py.File(path, "r") as f:
        meta = f["metadata"]
        numbers, wells, sites = (meta[k][()] for k in FIELD_KEYS)
        for i in range(len(numbers)) if rows is None else rows:
            yield {
                "image_number": int(numbers[i]),
                "well": wells[i].decode() if isinstance(wells[i], bytes) else str(wells[i]),
                "site": int(sites[i]),
                "nuclei": f["nuclei"][i],
                "cells": f["cells"][i],
            }


def read_attributes(path: Path) -> dict:
    """The attributes of a segmentation file (plate, channels, settings)."""
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
