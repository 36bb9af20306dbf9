"""The plate map and the MoA table of :mod:`cellmoa.profiles.annotate`, read as checked lookups.

The plate map becomes one row per (plate, well) and the MoA table one row per compound (and
concentration, where it has that column); identical repeats are kept once, and a key given two
different values is an error naming both lines. Keys are compared normalised: wells in cellmoa's
one spelling (``B2`` = ``B02``), plates and compounds as stripped text, concentrations as numbers
rounded like every concentration in cellmoa (``0.3`` = ``0.300000``). Messages name 1-based file
lines (line 1 is the header) of tables indexed by 0-based data row, as
:func:`cellmoa.files.read_table` reads them.

Examples
--------
>>> moas = pd.DataFrame({"Metadata_Compound": ["taxol", "taxol"], "Metadata_MoA": ["MS", "MS"]})
>>> moa_annotations(moas).values.tolist()
[['taxol', 'MS']]
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from cellmoa.columns import BATCH, COMPOUND, CONCENTRATION, MOA, PLATE, WELL
from cellmoa.data.datasets.loaddata_tables import line_of
from cellmoa.data.wells import normalize_well
from cellmoa.validation import TableError, concentration_values, require_columns

log = logging.getLogger(__name__)

SHOWN = 5


def text_keys(values: pd.Series) -> pd.Series:
    """Key values as stripped text; whole numbers read as numbers lose their ``.0``."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=float)
        if np.all(np.isfinite(numbers) & (numbers == np.round(numbers))):
            return pd.Series(numbers.astype(np.int64).astype(str), index=values.index)
    return values.astype(str).str.strip()


def require_values(table: pd.DataFrame, columns, source: str) -> None:
    """Refuse an empty key value, naming the column and the first lines."""
    for column in columns:
        empty = table[column].isna() | (table[column].astype(str).str.strip() == "")
        if empty.any():
            lines = ", ".join(str(line_of(i)) for i in table.index[empty.to_numpy()][:SHOWN])
            raise TableError(
                f"{source}: {column} is empty in {int(empty.sum())} row(s) (line(s) {lines}); "
                "fill it in or remove those rows"
            )


def normalized_wells(wells: pd.Series, source: str) -> pd.Series:
    """Well names in cellmoa's one spelling (``b2`` -> ``B02``), refusing non-wells by line.

    Parameters
    ----------
    wells : pandas.Series
        Well names, indexed by 0-based data row.
    source : str
        The table's name, for errors.

    Returns
    -------
    pandas.Series
        The normalised names, aligned with ``wells``.

    Raises
    ------
    cellmoa.validation.TableError
        A value is not a well name (the message names the file line).

    Examples
    --------
    >>> normalized_wells(pd.Series(["b2", "B02", "AF048"]), "t").tolist()
    ['B02', 'B02', 'AF48']
    """
    text = wells.astype(str).str.strip()
    names = {}
    for name in text.unique():
        try:
            names[name] = normalize_well(name)
        except ValueError as e:
            line = line_of(text.index[(text == name).to_numpy()][0])
            raise TableError(f"{source} line {line}: {e}") from None
    return text.map(names)


def _treatment_keys(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Plate and well keys as normalised text, and the concentration as a rounded number."""
    out = table.copy()
    out[PLATE] = text_keys(out[PLATE])
    out[WELL] = normalized_wells(out[WELL], source)
    if COMPOUND in out.columns:
        out[COMPOUND] = text_keys(out[COMPOUND])
    if CONCENTRATION in out.columns:
        out[CONCENTRATION] = concentration_values(out[CONCENTRATION], source)
    return out


def platemap_treatments(platemap: pd.DataFrame, source: str = "platemap") -> pd.DataFrame:
    """One row per (plate, well) of a plate map: identical repeats kept once, conflicts refused.

    Parameters
    ----------
    platemap : pandas.DataFrame
        ``Metadata_Plate``, ``Metadata_Well``, ``Metadata_Compound``, ``Metadata_Concentration``
        (and optionally ``Metadata_Batch``), indexed by 0-based data row; other columns are
        ignored (a table with one row per field of view is a plate map too).
    source : str
        Its name, for errors.

    Returns
    -------
    pandas.DataFrame
        Those columns, wells normalised and concentrations rounded, one row per well (the first
        of its identical rows, with its index).

    Raises
    ------
    cellmoa.validation.TableError
        A column is missing, a key is empty, or two rows give one well different treatments
        (the message names both lines).

    Examples
    --------
    >>> m = pd.DataFrame({"Metadata_Plate": ["P", "P"], "Metadata_Well": ["A1", "A01"],
    ...                   "Metadata_Compound": ["x", "x"], "Metadata_Concentration": ["1", 1.0]})
    >>> platemap_treatments(m).values.tolist()
    [['P', 'A01', 'x', 1.0]]
    """
    keys = [PLATE, WELL, COMPOUND, CONCENTRATION]
    require_columns(platemap, keys, source, "map the plate map's names with OLD=NEW renames")
    require_values(platemap, keys, source)
    table = _treatment_keys(platemap[keys + [c for c in [BATCH] if c in platemap.columns]], source)
    table = table.drop_duplicates()
    clash = table.duplicated([PLATE, WELL], keep=False)
    if clash.any():
        first = table[clash].iloc[0]
        same = table[clash & (table[PLATE] == first[PLATE]) & (table[WELL] == first[WELL])]
        (a, ra), (b, rb) = list(same.iterrows())[:2]
        raise TableError(
            f"{source} lines {line_of(a)} and {line_of(b)}: plate {first[PLATE]} well "
            f"{first[WELL]} is given two treatments ({ra[COMPOUND]} {ra[CONCENTRATION]:g}, "
            f"{rb[COMPOUND]} {rb[CONCENTRATION]:g}); keep one (identical repeats are fine)"
        )
    return table


def moa_annotations(moas: pd.DataFrame, source: str = "moas") -> pd.DataFrame:
    """The MoA table's annotations: one per compound (and concentration, where it has one).

    Parameters
    ----------
    moas : pandas.DataFrame
        ``Metadata_Compound``, ``Metadata_MoA`` and optionally ``Metadata_Concentration``,
        indexed by 0-based data row. Rows without an MoA annotate nothing (logged).
    source : str
        Its name, for errors.

    Returns
    -------
    pandas.DataFrame
        The key columns and ``Metadata_MoA``, identical repeats kept once.

    Raises
    ------
    cellmoa.validation.TableError
        A column is missing, a key is empty, or one key is given two MoAs (naming both lines).
    """
    keys = [COMPOUND] + ([CONCENTRATION] if CONCENTRATION in moas.columns else [])
    require_columns(moas, keys + [MOA], source, "map the MoA table's names with OLD=NEW renames")
    require_values(moas, keys, source)
    table = moas[keys + [MOA]].copy()
    table[COMPOUND] = text_keys(table[COMPOUND])
    if CONCENTRATION in keys:
        table[CONCENTRATION] = concentration_values(table[CONCENTRATION], source)
    labelled = table[MOA].notna() & (table[MOA].astype(str).str.strip() != "")
    if not labelled.all():
        log.info("%s: %d row(s) without an MoA annotate nothing", source, int((~labelled).sum()))
    table = table[labelled.to_numpy()].drop_duplicates()
    table[MOA] = table[MOA].astype(str).str.strip()
    table = table.drop_duplicates()
    clash = table.duplicated(keys, keep=False)
    if clash.any():
        first = table[clash].iloc[0]
        same = table[clash & (table[keys] == first[keys]).all(axis=1)]
        (a, ra), (b, rb) = list(same.iterrows())[:2]
        where = ", ".join(f"{k}={first[k]}" for k in keys)
        raise TableError(
            f"{source} lines {line_of(a)} and {line_of(b)}: {where} is given two MoAs "
            f"({ra[MOA]}, {rb[MOA]}); keep one"
        )
    return table


def batch_from_plate(table: pd.DataFrame, pattern: str, source: str = "profiles") -> pd.DataFrame:
    """The rows with ``Metadata_Batch``: the first match of ``pattern`` in the plate name.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows with ``Metadata_Plate`` and no ``Metadata_Batch``.
    pattern : str
        A regular expression (``Week[0-9]+``); the batch is its first match (``re.search``).
    source : str
        The table's name, for errors.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with ``Metadata_Batch``.

    Raises
    ------
    cellmoa.validation.TableError
        The pattern is not a regular expression, or does not match a plate (naming the plates
        and a line of each).

    Examples
    --------
    >>> t = pd.DataFrame({"Metadata_Plate": ["Week10_40111", "Week2_24121"]})
    >>> batch_from_plate(t, "Week[0-9]+")["Metadata_Batch"].tolist()
    ['Week10', 'Week2']
    """
    require_columns(table, [PLATE], source)
    if BATCH in table.columns:
        raise TableError(f"{source} already has {BATCH}: take the batch from it or the plate")
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise TableError(f"batch pattern {pattern!r} is not a regular expression: {e}") from None
    plates = text_keys(table[PLATE])
    batches = {p: (m.group(0) if (m := regex.search(p)) else None) for p in plates.unique()}
    unmatched = [p for p, b in batches.items() if not b]
    if unmatched:
        shown = ", ".join(
            f"{p} (line {line_of(plates.index[(plates == p).to_numpy()][0])})"
            for p in unmatched[:SHOWN]
        )
        raise TableError(
            f"{source}: the batch pattern {pattern!r} does not match {len(unmatched)} plate "
            f"name(s): {shown}" + (" ..." if len(unmatched) > SHOWN else "")
        )
    log.info(
        "%s: %d batches from the plate names (%s)", source, len(set(batches.values())), pattern
    )
    return table.assign(**{BATCH: plates.map(batches)})
