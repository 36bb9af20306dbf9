"""Checked joins that annotate a profile table: plate map, MoA table and batch.

A CellProfiler table often has only plate and well columns. The same three tables as the
``loaddata`` adapter annotate it: the plate map gives each (plate, well) its compound and
concentration, the MoA table each compound (at a concentration, where it has a concentration
column) its MoA, and the batch comes from a column or from the plate name. Every join is checked,
and nothing is dropped silently:

- a profile row whose well the plate map lacks is an error naming the file, line, plate and well;
- the plate map may repeat a well in identical rows (one row per field of view); two different
  treatments of one well are an error naming both lines;
- the control compound needs no MoA row (its MoA is the control's name); a treatment without one
  is unannotated: :func:`join_moas` reports it (named, counted) and leaves it out of scoring, as
  the unannotated compounds of cellmoa's own screens are;
- an empty MoA in the table (pycytominer's, and cellmoa's exports', for unknown annotations): with
  the control named, that treatment is unannotated alike (:func:`leave_out_unannotated`);
- a plate name the batch pattern does not match is an error naming the plate.

Wells are compared normalised (``B2`` = ``B02``) and concentrations as numbers rounded like every
concentration in cellmoa (``0.3`` = ``0.300000``). Messages name 1-based file lines (line 1 is the
header) of tables whose index is the 0-based data row, as :func:`cellmoa.files.read_table` gives.

Examples
--------
>>> profiles = pd.DataFrame({"Metadata_Plate": ["Week1_1", "Week1_1"],
...                          "Metadata_Well": ["B2", "B03"], "f": [1.0, 2.0]})
>>> platemap = pd.DataFrame({"Metadata_Plate": ["Week1_1"] * 3,
...                          "Metadata_Well": ["B02", "B02", "B03"],
...                          "Metadata_Compound": ["taxol", "taxol", "DMSO"],
...                          "Metadata_Concentration": [0.3, 0.3, 0.0]})
>>> moas = pd.DataFrame({"Metadata_Compound": ["taxol"],
...                      "Metadata_MoA": ["Microtubule stabilizers"]})
>>> table, unannotated = annotate_profiles(profiles, platemap, moas, control="DMSO",
...                                        batch_pattern="Week[0-9]+")
>>> table[["Metadata_Well", "Metadata_MoA", "Metadata_Batch"]].values.tolist()
[['B02', 'Microtubule stabilizers', 'Week1'], ['B03', 'DMSO', 'Week1']]
>>> len(unannotated)
0
"""

from __future__ import annotations

import logging

import pandas as pd

from cellmoa.columns import COMPOUND, CONCENTRATION, MOA, PLATE, WELL
from cellmoa.data.datasets.loaddata_tables import line_of
from cellmoa.profiles.lookups import (
    SHOWN,
    batch_from_plate,
    moa_annotations,
    normalized_wells,
    platemap_treatments,
    require_values,
    text_keys,
)
from cellmoa.validation import TableError, concentration_values, require_columns

log = logging.getLogger(__name__)

#: the columns of the table of unannotated treatments (:func:`join_moas`)
UNANNOTATED_COLUMNS = [COMPOUND, CONCENTRATION, "n_rows", "plates", "first_line"]


def join_platemap(
    profiles: pd.DataFrame,
    platemap: pd.DataFrame,
    source: str = "profiles",
    platemap_source: str = "platemap",
) -> pd.DataFrame:
    """The profile rows with their well's compound and concentration from the plate map.

    Parameters
    ----------
    profiles : pandas.DataFrame
        A profile table with ``Metadata_Plate`` and ``Metadata_Well``, indexed by 0-based data
        row; it must not have compound or concentration columns already.
    platemap : pandas.DataFrame
        The plate map (see :func:`platemap_treatments`).
    source, platemap_source : str
        The tables' names, for errors.

    Returns
    -------
    pandas.DataFrame
        ``profiles`` (same rows, same index, wells normalised) with ``Metadata_Compound`` and
        ``Metadata_Concentration`` (and the plate map's ``Metadata_Batch``, where it has one).

    Raises
    ------
    cellmoa.validation.TableError
        A profile row's well is not in the plate map: the message names how many, and the first
        ones' lines, plates and wells. Nothing is dropped.
    """
    require_columns(profiles, [PLATE, WELL], source, "map its names with --rename OLD=NEW")
    treatments = platemap_treatments(platemap, platemap_source)
    taken = [c for c in treatments.columns if c not in (PLATE, WELL) and c in profiles.columns]
    if taken:
        raise TableError(
            f"{source} already has {', '.join(taken)}: the plate map {platemap_source} would "
            "replace it; rename or drop one of them"
        )
    require_values(profiles, [PLATE, WELL], source)
    table = profiles.copy()
    table[PLATE], table[WELL] = text_keys(table[PLATE]), normalized_wells(table[WELL], source)
    joined = table.merge(treatments, on=[PLATE, WELL], how="left", indicator=True)
    joined.index = table.index
    missing = joined["_merge"].to_numpy() == "left_only"
    if missing.any():
        rows = table[missing]
        shown = "; ".join(
            f"line {line_of(i)} (plate {r[PLATE]}, well {r[WELL]})"
            for i, r in rows.head(SHOWN).iterrows()
        )
        n_wells = len(rows[[PLATE, WELL]].drop_duplicates())
        raise TableError(
            f"{source}: {int(missing.sum())} of {len(table)} rows ({n_wells} well(s)) have no row "
            f"in the plate map {platemap_source}: {shown}"
            + (" ..." if len(rows) > SHOWN else "")
            + "; add the wells to the plate map or remove those rows"
        )
    log.info("%s: all %d rows joined to the plate map %s", source, len(table), platemap_source)
    return joined.drop(columns="_merge")


def join_moas(
    table: pd.DataFrame,
    moas: pd.DataFrame,
    control: str | None = None,
    source: str = "profiles",
    moas_source: str = "moas",
    unannotated_label: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows with their treatment's MoA; the unannotated treatments reported apart.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows with ``Metadata_Compound`` and ``Metadata_Concentration`` (e.g. from
        :func:`join_platemap`) and no ``Metadata_MoA``, indexed by 0-based data row.
    moas : pandas.DataFrame
        The MoA table (see :func:`moa_annotations`).
    control : str, optional
        The control compound: its rows need no MoA row (their MoA is ``control``).
    source, moas_source : str
        The tables' names, for messages.
    unannotated_label : str, optional
        Keep the unannotated treatments' rows, with this ``Metadata_MoA`` (to call their MoA),
        instead of leaving them out.

    Returns
    -------
    annotated : pandas.DataFrame
        The rows whose treatment has an MoA (and the control rows), with ``Metadata_MoA``; and
        the unannotated rows labelled ``unannotated_label`` where it is given.
    unannotated : pandas.DataFrame
        One row per treatment without an MoA row, left out of ``annotated``: the keys,
        ``n_rows``, ``plates`` and the ``first_line`` of its rows in ``source``
        (:data:`UNANNOTATED_COLUMNS`; see :func:`describe_unannotated`).
    """
    require_columns(table, [COMPOUND, CONCENTRATION], source)
    if MOA in table.columns:
        raise TableError(
            f"{source} already has {MOA}: the MoA table {moas_source} would replace it; "
            "rename or drop one of them"
        )
    known = moa_annotations(moas, moas_source)
    keys = [c for c in known.columns if c != MOA]
    rows = table.copy()
    rows[COMPOUND] = text_keys(rows[COMPOUND])
    rows[CONCENTRATION] = concentration_values(rows[CONCENTRATION], source)
    joined = rows.merge(known, on=keys, how="left")
    joined.index = rows.index
    if control:
        is_control = joined[COMPOUND] == control
        joined.loc[is_control & joined[MOA].isna(), MOA] = control
    missing = joined[MOA].isna().to_numpy()
    unannotated = _unannotated(joined[missing], source)
    if unannotated_label is not None:
        joined.loc[missing, MOA] = unannotated_label
        return joined, unannotated
    if len(unannotated):
        log.warning(describe_unannotated(unannotated, source, moas_source))
    return joined[~missing], unannotated


def _unannotated(rows: pd.DataFrame, source: str) -> pd.DataFrame:
    """One row per treatment of ``rows``: keys, row count, plates and first line."""
    if rows.empty:
        return pd.DataFrame(columns=UNANNOTATED_COLUMNS)
    rows = rows.assign(_line=[line_of(i) for i in rows.index])
    plates = rows[PLATE] if PLATE in rows.columns else pd.Series("", index=rows.index)
    rows = rows.assign(_plate=plates.astype(str))
    out = rows.groupby([COMPOUND, CONCENTRATION], sort=True).agg(
        n_rows=("_line", "size"),
        plates=("_plate", lambda p: ";".join(sorted(set(p) - {""}))),
        first_line=("_line", "min"),
    )
    return out.reset_index()[UNANNOTATED_COLUMNS]


def describe_unannotated(
    unannotated: pd.DataFrame,
    source: str,
    moas_source: str | None = None,
    fate: str = "are left out of scoring",
) -> str:
    """One line naming and counting the treatments that have no MoA row.

    Without a ``moas_source``: the treatments whose ``Metadata_MoA`` is empty. ``fate`` says
    what becomes of them.

    Examples
    --------
    >>> u = pd.DataFrame({"Metadata_Compound": ["x"], "Metadata_Concentration": [0.1],
    ...                   "n_rows": [3], "plates": ["P1"], "first_line": [7]})
    >>> describe_unannotated(u, "wells.csv", "moa.csv")  # doctest: +NORMALIZE_WHITESPACE
    'wells.csv: 1 treatment(s) (3 rows) have no row in the MoA table moa.csv and are left out of
     scoring (unannotated): x 0.1 (line 7)'
    """
    shown = ", ".join(
        f"{r[COMPOUND]} {r[CONCENTRATION]:g} (line {r['first_line']})"
        for _, r in unannotated.head(SHOWN).iterrows()
    )
    return (
        f"{source}: {len(unannotated)} treatment(s) ({int(unannotated['n_rows'].sum())} rows) "
        + (f"have no row in the MoA table {moas_source}" if moas_source else f"have no {MOA}")
        + f" and {fate} (unannotated): "
        + shown
        + (" ..." if len(unannotated) > SHOWN else "")
    )


def leave_out_unannotated(
    table: pd.DataFrame,
    control: str,
    source: str = "profiles",
    unannotated_label: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows with an MoA (and the ``control``'s rows); the treatments with an empty one apart.

    ``table`` has ``Metadata_Compound``, ``Metadata_Concentration`` and ``Metadata_MoA``, indexed
    by 0-based data row; returns ``(annotated, unannotated)`` as :func:`join_moas` does (with an
    ``unannotated_label``, the rows kept with it as their MoA), and logs the unannotated
    treatments left out.
    """
    require_columns(table, [COMPOUND, CONCENTRATION, MOA], source)
    empty = table[MOA].isna() | (table[MOA].astype(str).str.strip() == "")
    missing = (empty & (table[COMPOUND].astype(str) != control)).to_numpy()
    if not missing.any():
        return table, pd.DataFrame(columns=UNANNOTATED_COLUMNS)
    rows = table[missing]
    rows = rows.assign(**{CONCENTRATION: concentration_values(rows[CONCENTRATION], source)})
    unannotated = _unannotated(rows, source)
    if unannotated_label is not None:
        table = table.copy()
        table.loc[missing, MOA] = unannotated_label
        return table, unannotated
    log.warning(describe_unannotated(unannotated, source))
    return table[~missing], unannotated


def join_report(
    n_rows: int,
    table: pd.DataFrame,
    unannotated: pd.DataFrame,
    control: str | None,
    sources: dict[str, str | None],
    fate: str = "are left out of scoring",
) -> list[str]:
    """Lines saying what the joins of :func:`annotate_profiles` did.

    Parameters
    ----------
    n_rows : int
        The profile table's rows before the joins.
    table, unannotated : pandas.DataFrame
        What :func:`annotate_profiles` returned.
    control : str, optional
        The control compound.
    sources : dict
        The tables' names (keys ``profiles``, ``platemap``, ``moas``); a join not made is None.
    fate : str
        What becomes of the unannotated treatments (:func:`describe_unannotated`).

    Returns
    -------
    list of str
        A line for the plate map and one for the MoA table, where they were joined.

    Examples
    --------
    >>> t = pd.DataFrame({"Metadata_Compound": ["x", "DMSO"]})
    >>> join_report(2, t, t.iloc[:0], "DMSO", {"profiles": "p.csv", "platemap": "m.csv",
    ...                                         "moas": None})
    ['p.csv: all 2 rows joined to their well in the plate map m.csv']
    """
    lines = []
    profiles = sources.get("profiles") or "profiles"
    if sources.get("platemap"):
        lines.append(
            f"{profiles}: all {n_rows} rows joined to their well in the plate map "
            f"{sources['platemap']}"
        )
    if sources.get("moas"):
        controls = int((table[COMPOUND] == control).sum()) if control else 0
        lines.append(
            f"{sources['moas']}: {len(table)} of {n_rows} rows annotated, {controls} of them "
            f"{control or 'control'} rows; "
            + (
                describe_unannotated(unannotated, profiles, sources["moas"], fate)
                if len(unannotated)
                else "every treatment has an MoA"
            )
        )
    return lines


def annotate_profiles(
    profiles: pd.DataFrame,
    platemap: pd.DataFrame | None = None,
    moas: pd.DataFrame | None = None,
    control: str | None = None,
    batch_pattern: str | None = None,
    sources: dict[str, str] | None = None,
    unannotated_label: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A profile table through the joins asked for: plate map, MoA table, batch from the plate.

    Parameters
    ----------
    profiles : pandas.DataFrame
        The profile table, cellmoa's column names, indexed by 0-based data row.
    platemap, moas : pandas.DataFrame, optional
        The plate map (:func:`join_platemap`) and the MoA table (:func:`join_moas`).
    control : str, optional
        The control compound (needs no MoA row).
    batch_pattern : str, optional
        The batch from the plate names (:func:`batch_from_plate`).
    sources : dict, optional
        The tables' names for messages, keys ``profiles``, ``platemap``, ``moas``.

    Returns
    -------
    table : pandas.DataFrame
        The annotated rows.
    unannotated : pandas.DataFrame
        The treatments without an MoA row, left out of ``table``; without ``moas``, those whose
        ``Metadata_MoA`` is empty where a ``control`` is named (:func:`leave_out_unannotated`).
    """
    names = {"profiles": "profiles", "platemap": "platemap", "moas": "moas", **(sources or {})}
    table = profiles
    if platemap is not None:
        table = join_platemap(table, platemap, names["profiles"], names["platemap"])
    unannotated = pd.DataFrame(columns=UNANNOTATED_COLUMNS)
    if moas is not None:
        table, unannotated = join_moas(
            table, moas, control, names["profiles"], names["moas"], unannotated_label
        )
    elif control and MOA in table.columns:
        table, unannotated = leave_out_unannotated(
            table, control, names["profiles"], unannotated_label
        )
    if batch_pattern:
        table = batch_from_plate(table, batch_pattern, names["profiles"])
    return table, unannotated
