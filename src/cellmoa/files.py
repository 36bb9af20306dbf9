"""Atomic writes (a finished name always holds a finished file); reading and writing tables.

Every file cellmoa writes (HDF5 tensors, illumination functions, models, checkpoints, tables,
manifests, extracted plate folders, synthesized archives) goes through :func:`atomic_path`: it is
written under a hidden temporary name beside its destination, ``.<stem>.<pid>.tmp<suffix>`` (the
suffix kept, so Keras still sees ``.keras``), and renamed onto the destination only when the
writing code returned without an exception; otherwise the temporary file (or folder) is removed.
A killed job leaves at most such a hidden temporary, never a file under the final name.

The one other temporary name is a download's resumable ``<name>.part`` (:mod:`cellmoa.data.http`),
which must survive between attempts so that a dropped transfer can continue where it stopped.

This module imports nothing heavy (no h5py, no TensorFlow): table writers depend on it alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from cellmoa.columns import is_metadata


def temporary_name(path: str | os.PathLike) -> Path:
    """The hidden temporary name :func:`atomic_path` writes ``path`` under.

    Same folder, same suffix.
    """
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; rename it onto ``path`` on success.

    The parent folder is created. Works for files and folders (a folder replaces an existing one
    at ``path``). On an exception the temporary is removed and the exception propagates; ``path``
    is untouched.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "table.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (folder / "table.txt").read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_tsv(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table as tab-separated text (no index), atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False)
    return Path(path)


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table as Parquet (pycytominer's profile format; no index), atomically.

    Missing values (``None``/NaN) of text columns are written as Parquet nulls.
    """
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)


def read_tsv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by :func:`write_tsv`.

    Empty cells are missing values, and only they (a compound called ``NA`` stays a string).
    """
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])


#: profile table formats :func:`read_table` reads, by file name ending
TABLE_FORMATS = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".parquet")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A profile table from CSV, TSV (optionally gzipped) or Parquet (pycytominer's formats).

    The format is chosen by the file name's ending; ``Metadata_*`` columns are read as text.
    """
    path = Path(path)
    name = path.name.lower()
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if not name.endswith(TABLE_FORMATS):
        raise ValueError(f"{path}: unknown table format; use one of {', '.join(TABLE_FORMATS)}")
    sep = "\t" if name.endswith((".tsv", ".tsv.gz", ".txt")) else ","
    header = pd.read_csv(path, sep=sep, nrows=0).columns
    text = {c: str for c in header if is_metadata(c) and "concentration" not in str(c).lower()}
    return pd.read_csv(path, sep=sep, dtype=text, keep_default_na=True)
