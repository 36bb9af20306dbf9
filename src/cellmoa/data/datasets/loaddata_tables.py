"""Reading and checking a LoadData screen's tables (``dataset: loaddata``).

Part of the ``loaddata`` adapter (:mod:`cellmoa.data.datasets.loaddata`): reading a CSV, CSV.gz
or Parquet table as text, finding a column under its ``data.columns`` name, parsing well names
and whole numbers, refusing a field listed twice, numbering replicates. Every problem is a
:class:`ScreenError` naming the file, the line and the fix; the plate map and the MoA table are
read in :mod:`~cellmoa.data.datasets.loaddata_platemap`, the image columns in
:mod:`~cellmoa.data.datasets.loaddata_images`.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.columns import (
    CELL_LINE,
    COMPOUND,
    CONCENTRATION,
    MOA,
    PLATE,
    REPLICATE,
    SITE,
    WELL,
)
from cellmoa.data.wells import normalize_well

#: the column names cellmoa reads, as CellProfiler and pycytominer spell them (``data.columns``
#: maps each to another spelling)
CANONICAL_COLUMNS = (PLATE, WELL, SITE, COMPOUND, CONCENTRATION, MOA, CELL_LINE, REPLICATE)
#: names of the three tables in the metadata folder (the LoadData CSV keeps its own suffix)
TREATMENTS_NAME = "treatments.csv"
MOAS_NAME = "moas.csv"
_SUFFIXES = (".csv.gz", ".csv", ".parquet")


class ScreenError(ValueError):
    """A problem in a screen's tables or images; the message names the file, line and fix."""


def table_suffix(source: str) -> str:
    """The table format of a path or URL: ``.csv``, ``.csv.gz`` or ``.parquet``.

    Parameters
    ----------
    source : str
        A path or URL.

    Returns
    -------
    str

    Raises
    ------
    ScreenError
        The name ends otherwise.

    Examples
    --------
    >>> table_suffix("https://x.org/screen/loaddata.CSV.gz?download=1")
    '.csv.gz'
    """
    path = urllib.parse.urlparse(source).path if "://" in source else source
    for suffix in _SUFFIXES:
        if path.lower().endswith(suffix):
            return suffix
    raise ScreenError(f"{source}: a table must be .csv, .csv.gz or .parquet (its name says which)")


def read_table(path: Path, source: str | None = None) -> pd.DataFrame:
    """Read a CSV, CSV.gz or Parquet table with every column as text.

    Well names, plate barcodes and concentrations so keep their spelling.

    Parameters
    ----------
    path : pathlib.Path
        The table.
    source : str, optional
        Its name in errors (where it was configured from); ``path`` by default.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ScreenError
        The table cannot be read.
    FileNotFoundError
        It does not exist.
    """
    path = Path(path)
    name = source or str(path)
    suffix = table_suffix(str(path))
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
            return frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
        return pd.read_csv(path, dtype=str, keep_default_na=False, compression="infer")
    except FileNotFoundError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a damaged table
        raise ScreenError(
            f"{name}: not a readable {suffix} table ({type(exc).__name__}: {exc}); "
            "fix the file or its name"
        ) from exc


def line_of(index: int) -> int:
    """The line of a CSV data row (0-based row index; line 1 is the header).

    Examples
    --------
    >>> line_of(0)
    2
    """
    return int(index) + 2


def find_column(
    table: pd.DataFrame,
    canonical: str,
    source: str,
    mapping: dict[str, str],
    required: bool = True,
) -> str | None:
    """The column of ``table`` that holds ``canonical`` (under its ``data.columns`` name).

    Parameters
    ----------
    table : pandas.DataFrame
    canonical : str
        One of :data:`CANONICAL_COLUMNS`.
    source : str
        The table's name, for errors.
    mapping : dict
        ``data.columns``: canonical name -> the table's.
    required : bool
        Raise where the column is absent (else return None).

    Returns
    -------
    str or None

    Raises
    ------
    ScreenError
        A required column is absent; the message names the fix.
    """
    column = mapping.get(canonical, canonical)
    if column in table.columns:
        return column
    if not required:
        return None
    mapped = f" (data.columns maps {canonical} to it)" if column != canonical else ""
    raise ScreenError(
        f"{source}: no column {column}{mapped}; its columns are "
        f"{', '.join(map(str, table.columns))}. "
        f"Fix: rename the column, or map it with data.columns: {{{canonical}: <your column>}}"
    )


def parse_wells(values: pd.Series, src: str, plate_format: str | None) -> pd.Series:
    """Well names in cellmoa's spelling (``A01``), refusing any that is not a well.

    Parameters
    ----------
    values : pandas.Series
        Well names as a table spells them.
    src : str
        The table's name, for errors.
    plate_format : str, optional
        ``data.plate_format`` (96, 384, 1536), if set.

    Returns
    -------
    pandas.Series
    """
    out = []
    for index, value in values.items():
        try:
            out.append(normalize_well(value, plate_format))
        except ValueError as exc:
            fix = (
                " or set data.plate_format to the screen's (96, 384, 1536)" if plate_format else ""
            )
            raise ScreenError(
                f"{src} line {line_of(index)}: {exc}. Fix the well name{fix}"
            ) from None
    return pd.Series(out, index=values.index)


def parse_integers(values: pd.Series, src: str, column: str) -> np.ndarray:
    """Whole numbers of a text column, refusing anything else by its line."""
    text = values.astype(str).str.strip()
    bad = ~text.str.fullmatch(r"\d+")
    if bad.any():
        index = bad.idxmax()
        raise ScreenError(
            f"{src} line {line_of(index)}: {column} is {values[index]!r}, not a whole number; "
            "fix it"
        )
    return text.astype(int).values


def refuse_duplicate_fields(fields: pd.DataFrame, src: str) -> None:
    """Refuse a field (plate, well, site) that the LoadData table lists more than once."""
    dup = fields.duplicated(["plate", "well", "site"], keep=False)
    if dup.any():
        first = fields[dup].iloc[0]
        same = fields.index[
            dup
            & (fields["plate"] == first["plate"])
            & (fields["well"] == first["well"])
            & (fields["site"] == first["site"])
        ]
        lines = ", ".join(str(line_of(i)) for i in same[:5])
        raise ScreenError(
            f"{src} lines {lines}: the same field (plate {first['plate']}, well {first['well']}, "
            f"site {first['site']}) is listed {len(same)} times ({int(dup.sum())} duplicated "
            f"rows in all). Fix: remove the repeated rows, or give each field of a well its own "
            f"{SITE}"
        )


def number_replicates(fields: pd.DataFrame) -> np.ndarray:
    """Without a replicate column: a treatment's plates numbered 1, 2, .. in plate order."""
    treatment = fields["compound"] + "\t" + fields["concentration"].astype(str)
    rank = {}
    for key, group in fields.groupby(treatment)["plate"]:
        for number, plate in enumerate(sorted(set(group)), start=1):
            rank[(key, plate)] = number
    return np.array([rank[(k, p)] for k, p in zip(treatment, fields["plate"])], dtype=int)
