"""Checks every table passes before it is scored: nothing is silently repaired.

Prediction tables (``prob_<moa>`` columns) and profile tables (``Metadata_*`` plus features) from
cellmoa, CellProfiler or pycytominer go through the same checks:

- required columns are present (:func:`require_columns`);
- key columns (compound, concentration, MoA, cell line, replicate, batch) have no missing or empty
  value (:func:`check_keys`): a treatment with a NaN key would otherwise vanish from a groupby;
- concentrations are numbers, compared rounded to :data:`CONCENTRATION_DIGITS` significant digits
  (:func:`concentration_values`): ``0.3`` and ``0.300000`` are one treatment;
- one treatment has one MoA (:func:`check_one_moa`);
- probabilities and features are finite (:func:`check_finite`), or, for features, a stated policy
  (:data:`NAN_POLICIES`) drops the non-finite ones and says so;
- the control compound (BBBC021: DMSO) is removed before scoring, with the count logged
  (:func:`drop_controls`);
- which columns are features is explicit, or the logged default (:func:`select_features`).

Every error names the table, the column and the first offending rows (as 0-based data rows of the
table: row 0 is the first line after the header).
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from cellmoa.columns import COMPOUND, CONCENTRATION, MOA, PREFIX, is_metadata

log = logging.getLogger(__name__)

#: Concentrations are compared as numbers rounded to this many significant digits.
CONCENTRATION_DIGITS = 6
#: What to do with a feature that is NaN or infinite somewhere: ``error`` (the default) or
#: ``drop`` (the feature column is removed everywhere, and the log names it).
NAN_POLICIES = ("error", "drop")
#: Numeric bookkeeping columns of CellProfiler tables that are not morphology: a warning names
#: them when the default feature selection takes them as features.
BOOKKEEPING = re.compile(
    r"(^|_)(ImageNumber|ObjectNumber|TableNumber|Number_Object_Number|Replicate|Site|Well|Plate"
    r"|Row|Col(umn)?|Count_\w+)$",
    re.IGNORECASE,
)
_SHOWN = 5


class TableError(ValueError):
    """A table cannot be scored as it is; the message says where and how to fix it."""


def _rows(index, limit: int = _SHOWN) -> str:
    index = list(index)
    shown = ", ".join(str(i) for i in index[:limit])
    more = f" and {len(index) - limit} more" if len(index) > limit else ""
    return f"row{'s' if len(index) > 1 else ''} {shown}{more}"


def require_columns(table: pd.DataFrame, columns, source: str, hint: str = "") -> None:
    """Refuse a table lacking any of ``columns``, naming them and the columns it has."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        have = ", ".join(map(str, table.columns[:12])) + (" ..." if len(table.columns) > 12 else "")
        raise TableError(
            f"{source}: missing column(s) {', '.join(missing)} (it has {have})"
            + (f"; {hint}" if hint else "")
        )


def check_keys(table: pd.DataFrame, columns, source: str) -> None:
    """Refuse missing (NaN/None) or empty values in the key columns ``columns``."""
    for col in columns:
        values = table[col]
        bad = values.isna() | (values.astype(str).str.strip() == "")
        if bad.any():
            raise TableError(
                f"{source}: column {col} is empty or missing in {int(bad.sum())} of {len(table)} "
                f"rows ({_rows(table.index[bad.to_numpy()])}); every row needs a {col} - "
                "fill it in or remove those rows"
            )


def round_significant(values, digits: int = CONCENTRATION_DIGITS) -> np.ndarray:
    """Floats rounded to ``digits`` significant digits (non-finite values kept as they are)."""
    arr = np.asarray(values, dtype=float)
    return np.array([float(f"{v:.{digits}g}") if np.isfinite(v) else v for v in arr])


def concentration_values(
    values: pd.Series,
    source: str,
    column: str = CONCENTRATION,
    digits: int = CONCENTRATION_DIGITS,
) -> np.ndarray:
    """Concentrations as floats rounded to ``digits`` significant digits.

    So ``0.3``, ``"0.300000"`` and ``0.30000000000000004`` are the same treatment.

    Examples
    --------
    >>> concentration_values(pd.Series(["0.3", "0.300000", 0.1 + 0.2]), "t").tolist()
    [0.3, 0.3, 0.3]
    """
    parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna() & values.notna()
    if bad.any():
        shown = ", ".join(repr(v) for v in values[bad].unique()[:_SHOWN])
        raise TableError(
            f"{source}: {column} must be numbers; {shown} in "
            f"{_rows(values.index[bad.to_numpy()])} are not"
        )
    return round_significant(parsed.to_numpy(dtype=float), digits)


def check_one_moa(table: pd.DataFrame, keys: list[str], moa: str, source: str) -> None:
    """Refuse a treatment (``keys``) labelled with two MoAs."""
    counts = table.groupby(keys, sort=True)[moa].nunique()
    clash = counts[counts > 1]
    if len(clash):
        first = clash.index[0]
        first = first if isinstance(first, tuple) else (first,)
        where = ", ".join(f"{k}={v}" for k, v in zip(keys, first))
        moas = sorted(
            table.loc[(table[keys] == pd.Series(first, index=keys)).all(axis=1), moa].unique()
        )
        raise TableError(
            f"{source}: {len(clash)} treatment(s) have more than one {moa}, e.g. {where}: "
            f"{', '.join(map(str, moas))}; a treatment has one MoA - fix the labels"
        )


def check_finite(table: pd.DataFrame, columns, source: str, what: str = "value") -> None:
    """Refuse NaN or infinite values in ``columns``, naming the columns and the rows."""
    values = table[list(columns)].to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        cols = [c for c, b in zip(columns, bad.any(axis=0)) if b]
        rows = table.index[bad.any(axis=1)]
        raise TableError(
            f"{source}: {len(cols)} {what} column(s) hold NaN or infinite values: "
            f"{', '.join(map(str, cols[:_SHOWN]))}{' ...' if len(cols) > _SHOWN else ''} "
            f"({_rows(rows)}); "
            + (
                "remove or impute them, or choose features_with_nan: drop"
                if what == "feature"
                else "they cannot be ranked"
            )
        )


def drop_controls(
    table: pd.DataFrame,
    control: str | None,
    source: str,
    compound: str = COMPOUND,
    moa: str = MOA,
) -> pd.DataFrame:
    """The table without its control rows (compound or MoA equal to ``control``).

    Controls are never scored as a treatment. Logs how many rows were removed.
    """
    if not control:
        return table
    mask = pd.Series(False, index=table.index)
    for col in (compound, moa):
        if col in table.columns:
            mask |= table[col].astype(str) == control
    if mask.any():
        log.info("%s: %d %s control row(s) left out of scoring", source, int(mask.sum()), control)
    return table[~mask.to_numpy()]


def select_features(
    table: pd.DataFrame, source: str, features=None, nan_policy: str = "error"
) -> list[str]:
    """The feature columns of a profile table.

    ``features`` lists them explicitly (each must exist and be numeric); by default they are the
    numeric columns whose name does not start with ``Metadata_`` (logged with their count, and a
    warning names columns that look like bookkeeping, e.g. ``ImageNumber``). Non-finite values
    are an error, or with ``nan_policy="drop"`` the columns holding them are left out (logged).

    >>> t = pd.DataFrame({"Metadata_Compound": ["a"], "f1": [1.0], "f2": [np.nan]})
    >>> select_features(t, "t", nan_policy="drop")
    ['f1']
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(
            f"features_with_nan must be one of {', '.join(NAN_POLICIES)}, not {nan_policy!r}"
        )
    if features is not None:
        features = list(features)
        require_columns(table, features, source, "the listed features must be columns of the table")
        not_numeric = [c for c in features if not pd.api.types.is_numeric_dtype(table[c])]
        if not_numeric:
            raise TableError(
                f"{source}: feature column(s) {', '.join(not_numeric)} are not numeric"
            )
        log.info("%s: %d feature column(s), as listed", source, len(features))
    else:
        features = [
            c
            for c in table.columns
            if not is_metadata(c)
            and pd.api.types.is_numeric_dtype(table[c])
            and not pd.api.types.is_bool_dtype(table[c])
        ]
        if not features:
            raise TableError(
                f"{source}: the profile table has no numeric feature columns besides {PREFIX}*"
            )
        log.info(
            "%s: %d feature column(s): the numeric columns not named %s* (list them to choose)",
            source,
            len(features),
            PREFIX,
        )
        suspicious = [c for c in features if BOOKKEEPING.search(str(c))]
        if suspicious:
            log.warning(
                "%s: column(s) %s look like bookkeeping, not morphology, but are taken as "
                "features: rename them %s* or list the features explicitly",
                source,
                ", ".join(map(str, suspicious)),
                PREFIX,
            )
    if not features:
        raise TableError(f"{source}: no feature columns")
    values = table[features].to_numpy(dtype=float)
    finite = np.isfinite(values).all(axis=0)
    if not finite.all():
        if nan_policy == "error":
            check_finite(table, features, source, "feature")
        dropped = [c for c, ok in zip(features, finite) if not ok]
        log.warning(
            "%s: features_with_nan=drop: %d feature column(s) with NaN/inf left out: %s",
            source,
            len(dropped),
            ", ".join(map(str, dropped[:20])) + (" ..." if len(dropped) > 20 else ""),
        )
        features = [c for c, ok in zip(features, finite) if ok]
        if not features:
            raise TableError(f"{source}: every feature column holds NaN or infinite values")
    return features


def rename_columns(
    table: pd.DataFrame, mapping: dict[str, str] | None, source: str
) -> pd.DataFrame:
    """Rename a table's columns to cellmoa's (``{"Metadata_moa": "Metadata_MoA"}``).

    A mapping whose source column is absent or whose target already exists is refused.
    """
    if not mapping:
        return table
    missing = [old for old in mapping if old not in table.columns]
    if missing:
        raise TableError(
            f"{source}: the column mapping names column(s) the table lacks: {', '.join(missing)}"
        )
    clash = [new for old, new in mapping.items() if new in table.columns and new != old]
    if clash:
        raise TableError(
            f"{source}: the column mapping would overwrite existing column(s) {', '.join(clash)}"
        )
    return table.rename(columns=mapping)


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The feature columns of a profile table.

    Parameters
    ----------
    table : pandas.DataFrame
        A profile table; one made by :func:`cellmoa.profiles.tables.treatment_profiles` names
        its features in ``table.attrs["features"]``.

    Returns
    -------
    list of str
        Those named features, or else the numeric columns not named ``Metadata_*``
        (:func:`select_features`, logged).
    """
    return table.attrs.get("features") or select_features(table, "profiles")
