"""The plate map and the MoA table of a LoadData screen, read, checked and looked up.

Part of the ``loaddata`` adapter (:mod:`cellmoa.data.datasets.loaddata`): the plate map
(``data.treatments``) gives each well its compound and concentration, per plate or for every
plate; the MoA table (``data.moas``) gives each compound (at a concentration, where it has a
concentration column) its MoA. Every problem is a
:class:`~cellmoa.data.datasets.loaddata_tables.ScreenError` naming the file, the line and the fix.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cellmoa.columns import COMPOUND, CONCENTRATION, MOA, PLATE, WELL
from cellmoa.data.datasets.loaddata_tables import ScreenError, find_column, line_of, parse_wells
from cellmoa.validation import round_significant

log = logging.getLogger(__name__)


def parse_plate_map(
    treatments: pd.DataFrame,
    src: str,
    mapping: dict[str, str],
    controls: tuple[str, ...],
    plate_format: str | None,
) -> tuple[pd.DataFrame, bool]:
    """The plate map as ``plate``, ``well``, ``compound``, ``concentration`` per well.

    Parameters
    ----------
    treatments : pandas.DataFrame
        The plate map as read (text).
    src : str
        Its name, for errors.
    mapping : dict
        ``data.columns``.
    controls : tuple of str
        The control names (only they may leave the concentration empty).
    plate_format : str, optional
        ``data.plate_format``.

    Returns
    -------
    table : pandas.DataFrame
        ``plate`` is ``""`` for a map that every plate follows.
    per_plate : bool
        Whether the map has a plate column.

    Raises
    ------
    ScreenError
        A concentration is not a number or is missing, a well has no compound or more than one
        treatment.
    """
    well_col = find_column(treatments, WELL, src, mapping)
    compound_col = find_column(treatments, COMPOUND, src, mapping)
    conc_col = find_column(treatments, CONCENTRATION, src, mapping)
    plate_col = find_column(treatments, PLATE, src, mapping, required=False)
    table = pd.DataFrame({"well": parse_wells(treatments[well_col], src, plate_format)})
    table["plate"] = treatments[plate_col].astype(str).str.strip() if plate_col else ""
    table["compound"] = treatments[compound_col].astype(str).str.strip()
    conc = pd.to_numeric(treatments[conc_col].replace("", np.nan), errors="coerce")
    bad = conc.isna() & (treatments[conc_col].astype(str).str.strip() != "")
    if bad.any():
        index = bad.idxmax()
        raise ScreenError(
            f"{src} line {line_of(index)}: {conc_col} is {treatments[conc_col][index]!r}, "
            "not a number; fix it"
        )
    unset = conc.isna() & ~table["compound"].isin(controls)
    if unset.any():
        index = unset.idxmax()
        raise ScreenError(
            f"{src} line {line_of(index)}: compound {table['compound'][index]} has no {conc_col}; "
            "give it (only the control may leave it empty)"
        )
    table["concentration"] = round_significant(conc.fillna(0.0).to_numpy(float), 9)
    empty = table["compound"] == ""
    if empty.any():
        index = empty.idxmax()
        raise ScreenError(
            f"{src} line {line_of(index)}: well {table['well'][index]} has no compound; "
            "fill it or drop the row"
        )
    _refuse_repeated_wells(table, src, plate_col is not None)
    return table, plate_col is not None


def _refuse_repeated_wells(table: pd.DataFrame, src: str, per_plate: bool) -> None:
    """Refuse a well that the plate map gives more than one treatment."""
    dup = table.duplicated(["plate", "well"], keep=False)
    if dup.any():
        first = table[dup].iloc[0]
        same = dup & (table["well"] == first["well"]) & (table["plate"] == first["plate"])
        lines = ", ".join(str(line_of(i)) for i in table.index[same][:5])
        where = f"plate {first['plate']} " if per_plate else ""
        raise ScreenError(
            f"{src} lines {lines}: {where}well {first['well']} is given more than one treatment; "
            "keep one row per well"
        )


def parse_moas(moas: pd.DataFrame, src: str, mapping: dict[str, str]) -> tuple[dict, bool]:
    """The known MoAs of the MoA table.

    Parameters
    ----------
    moas : pandas.DataFrame
        The MoA table as read (text).
    src : str
        Its name, for errors.
    mapping : dict
        ``data.columns``.

    Returns
    -------
    known : dict
        Compound (or ``(compound, concentration)``) -> ``(MoA, row index)``; rows without an
        MoA are left out.
    by_concentration : bool
        Whether the table has a concentration column (the keys are then pairs).

    Raises
    ------
    ScreenError
        A compound (at a concentration) is given two MoAs.
    """
    compound_col = find_column(moas, COMPOUND, src, mapping)
    moa_col = find_column(moas, MOA, src, mapping)
    conc_col = find_column(moas, CONCENTRATION, src, mapping, required=False)
    compounds = moas[compound_col].astype(str).str.strip()
    labels = moas[moa_col].astype(str).str.strip()
    if conc_col:
        conc = pd.to_numeric(moas[conc_col].replace("", np.nan), errors="coerce")
        keys = list(zip(compounds, round_significant(conc.fillna(0.0).to_numpy(float), 9)))
    else:
        keys = list(compounds)
    known: dict = {}
    for index, key, label in zip(moas.index, keys, labels):
        if label == "":
            continue
        if key in known and known[key][0] != label:
            raise ScreenError(
                f"{src} lines {line_of(known[key][1])} and {line_of(index)}: {key} is given two "
                f"MoAs ({known[key][0]}, {label}); keep one"
            )
        known[key] = (label, index)
    return known, conc_col is not None


def look_up_treatments(
    fields: pd.DataFrame,
    table: pd.DataFrame,
    per_plate: bool,
    src: str,
    images_src: str | None,
) -> pd.DataFrame:
    """The ``compound`` and ``concentration`` of every field, from the plate map.

    Parameters
    ----------
    fields : pandas.DataFrame
        The fields (``plate``, ``well``).
    table : pandas.DataFrame
        The plate map (:func:`parse_plate_map`).
    per_plate : bool
        Whether the map has a plate column.
    src, images_src : str
        The plate map's and the LoadData table's names, for errors.

    Returns
    -------
    pandas.DataFrame
        Row by row with ``fields``.

    Raises
    ------
    ScreenError
        A field's well has no treatment.
    """
    lookup = table.set_index(["plate", "well"])
    key = pd.MultiIndex.from_arrays(
        [fields["plate"] if per_plate else pd.Series([""] * len(fields)), fields["well"]]
    )
    found = key.isin(lookup.index)
    if not found.all():
        index = int(np.flatnonzero(~found)[0])
        row = fields.iloc[index]
        n_wells = len(set(zip(fields["plate"][~found], fields["well"][~found])))
        where = (
            f"plate {row['plate']} well {row['well']}"
            if per_plate
            else f"well {row['well']} (plate {row['plate']})"
        )
        raise ScreenError(
            f"{images_src} line {line_of(index)}: {where} has no treatment in the plate map "
            f"{src} ({n_wells} well(s) in all). Fix: add the well to the plate map, or remove "
            "its images' rows"
        )
    return lookup.loc[key, ["compound", "concentration"]].reset_index(drop=True)


def refuse_unimaged(
    fields: pd.DataFrame,
    table: pd.DataFrame,
    per_plate: bool,
    src: str,
    images_src: str | None,
    policy: str,
) -> None:
    """A plate-map well of a screened plate that no image shows (a typo, or images lost).

    ``policy`` is ``data.unimaged_wells``: ``error`` raises a :class:`ScreenError`, ``warn``
    logs the same message, ``ignore`` accepts it.
    """
    if policy == "ignore":
        return
    imaged = set(zip(fields["plate"], fields["well"]))
    plates = sorted(set(fields["plate"]))
    missing = []
    for index, row in table.iterrows():
        for plate in [row["plate"]] if per_plate else plates:
            if plate in plates and (plate, row["well"]) not in imaged:
                missing.append((index, plate, row["well"]))
    if missing:
        index, plate, well = missing[0]
        message = (
            f"{src} line {line_of(index)}: well {well} of plate {plate} has a treatment but "
            f"no image in {images_src} ({len(missing)} such well(s)). Fix: add its images to the "
            "LoadData CSV or drop the well from the plate map; data.unimaged_wells: ignore "
            "accepts it"
        )
        if policy == "error":
            raise ScreenError(message)
        log.warning(message)
