"""The HDF5 layout of the tensors.

Writing a plate's crops, reading their metadata, assembling all plates into one file.

Layout of ``results/tensors/<plate>.h5`` (readable with plain h5py):

- ``/images``: float16 (or uint8), shape (N, H, W, C), chunked one crop per chunk; channel order
  in the ``channels`` attribute (BBBC021: DAPI, Tubulin, Actin; BBBC014: NFkB, DAPI). Values are
  decided in :mod:`cellmoa.preprocess.normalization`.
- ``/metadata/<column>``: one 1-D dataset per column of :data:`METADATA_FIELDS`, row i
  describing ``/images[i]``; ``is_control`` is 1 for the crops of the sampled control fields
  (``preprocessing.control_fields_per_plate``), 0 for treatments; ``annotated`` is 1 for the
  treatments with a known MoA (trained on and scored) and 0 for controls and for the treatments
  of unannotated compounds (``moa`` empty; kept with ``prediction.unannotated`` to be predicted by
  the all-compound fold, never trained on or scored).
- attributes: plate, channels, crop_grid (rows, cols), crop_shape, field_size, reference,
  reference_groups, reference_mean, reference_std, anscombe, stored_dtype, empty_crops_dropped,
  fields_skipped, normalization, cellmoa_version.

``results/tensors/all.h5`` assembles every plate without copying: ``/images`` is an HDF5 virtual
dataset over the plate files (kept beside it, referenced by file name), ``/metadata/*`` the
concatenated columns.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from cellmoa import __version__
from cellmoa.files import atomic_path

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
    "is_control",  # 1: a control field's crop (for normalisation; never trained on or scored)
    # 1: a treatment with a known MoA (trained on, scored); 0: a control or an unannotated
    # treatment
    "annotated",
]
STRING_FIELDS = {"plate", "batch", "cell_line", "well", "compound", "moa"}
FLOAT_FIELDS = {"concentration"}


class PlateTensorWriter:
    """Writes one plate's crops as they come, under a temporary name renamed on success.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "p.h5"
    >>> with PlateTensorWriter(path, capacity=1, crop_shape=(2, 2), channels=["DAPI"]) as w:
    ...     w.add(np.zeros((2, 2, 1)), {k: 0 for k in METADATA_FIELDS})
    >>> read_crop_metadata(path).shape
    (1, 13)
    """

    def __init__(
        self, path: Path, capacity: int, crop_shape: tuple[int, int], channels, dtype="float16"
    ):
        self.path = Path(path)
        self.capacity = capacity
        self.shape = (*crop_shape, len(channels))
        self.dtype = np.dtype(dtype)
        self.count = 0
        self.meta: dict[str, list] = {k: [] for k in METADATA_FIELDS}
        self.attrs: dict = {
            "channels": list(channels),
            "crop_shape": tuple(crop_shape),
            "stored_dtype": str(self.dtype),
        }

    def __enter__(self) -> PlateTensorWriter:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._file = h5py.File(tmp, "w")
        self._images = self._file.create_dataset(
            "images",
            shape=(self.capacity, *self.shape),
            maxshape=(None, *self.shape),
            dtype=self.dtype,
            chunks=(1, *self.shape),
        )
        return self

    def add(self, crop: np.ndarray, metadata: dict) -> None:
        """One crop (H, W, C) in the stored dtype and its metadata (a value per METADATA_FIELDS)."""
        self._images[self.count] = crop
        for key in METADATA_FIELDS:
            self.meta[key].append(metadata[key])
        self.count += 1

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                self._images.resize(self.count, axis=0)
                write_metadata(self._file, self.meta)
                for key, attr in {**self.attrs, "cellmoa_version": __version__}.items():
                    self._file.attrs[key] = attr
        finally:
            self._file.close()
            self._atomic.__exit__(kind, value, traceback)


def write_metadata(f: h5py.File, meta: dict[str, list]) -> None:
    """``/metadata/<column>`` datasets: strings, float64 concentrations, int64 otherwise."""
    group = f.create_group("metadata")
    for key in METADATA_FIELDS:
        values = meta[key]
        if key in STRING_FIELDS:
            group.create_dataset(
                key,
                data=np.array([str(v) for v in values], dtype=object),
                dtype=h5py.string_dtype(),
            )
        elif key in FLOAT_FIELDS:
            group.create_dataset(key, data=np.asarray(values, dtype=np.float64))
        else:
            group.create_dataset(key, data=np.asarray(values, dtype=np.int64))


def read_crop_metadata(path: Path) -> pd.DataFrame:
    """The ``/metadata`` table of a plate file or of the assembled file, one row per crop."""
    with h5py.File(path, "r") as f:
        group = f["metadata"]
        data = {}
        n = group["plate"].shape[0]
        for key in METADATA_FIELDS:
            if (
                key == "is_control" and key not in group
            ):  # tensors written before controls were kept
                data[key] = np.zeros(n, np.int64)
                continue
            if (
                key == "annotated" and key not in group
            ):  # tensors written before unannotated crops were kept
                moa = [v.decode() for v in group["moa"][()]]
                data[key] = ((np.array(moa) != "") & (np.asarray(data["is_control"]) == 0)).astype(
                    np.int64
                )
                continue
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
            attrs.append(
                dict(channels=list(f.attrs["channels"]), crop_shape=tuple(f.attrs["crop_shape"]))
            )
            counts.append(f["images"].shape[0])
            for key in METADATA_FIELDS:
                if key not in f["metadata"]:
                    raise ValueError(
                        f"{path}: /metadata/{key} is missing; the plate tensors are older than "
                        "this "
                        "cellmoa - delete results/tensors and rerun"
                    )
                values = f["metadata"][key][()]
                meta[key].extend(v.decode() if isinstance(v, bytes) else v for v in values)
    if not shapes:
        raise ValueError("no plate tensors to assemble")
    if any(a != attrs[0] for a in attrs) or len(set(dtypes)) > 1:
        raise ValueError(
            "plate tensors differ in channels, crop shape or dtype; rebuild them with one config"
        )
    total = sum(counts)
    item_shape = shapes[0][1:]
    layout = h5py.VirtualLayout(shape=(total,) + item_shape, dtype=dtypes[0])
    start = 0
    for path, n in zip(plate_files, counts):
        if n:
            layout[start : start + n] = h5py.VirtualSource(
                Path(path).name, "images", shape=(n,) + item_shape
            )
        start += n
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w", libver="latest") as f:
        f.create_virtual_dataset("images", layout, fillvalue=np.nan if dtypes[0].kind == "f" else 0)
        write_metadata(f, meta)
        f.attrs["channels"] = attrs[0]["channels"]
        f.attrs["crop_shape"] = attrs[0]["crop_shape"]
        f.attrs["plates"] = [Path(p).stem for p in plate_files]
        f.attrs["plate_rows"] = counts
        f.attrs["cellmoa_version"] = __version__
    return total
