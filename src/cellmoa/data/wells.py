"""Well names of 96-, 384- and 1536-well plates.

The names run ``A01`` .. ``H12``, ``A01`` .. ``P24`` and ``A01`` .. ``AF48``.
Rows are letters (``A`` .. ``Z``, then ``AA`` .. ``AF`` on a 1536-well plate), columns 1-based
numbers. Screens spell them differently (``A1``, ``a01``, ``A001``); :func:`normalize_well`
gives the one spelling cellmoa stores (row letters upper case, the column zero-padded to two
digits), so that a plate map and a LoadData CSV written by different tools join.

>>> normalize_well("b3"), normalize_well("AF048", "1536")
('B03', 'AF48')
>>> len(well_names("384")), well_names("1536")[-1]
(384, 'AF48')
"""

from __future__ import annotations

import re

#: plate format -> (rows, columns)
PLATE_FORMATS: dict[str, tuple[int, int]] = {"96": (8, 12), "384": (16, 24), "1536": (32, 48)}

_WELL_RE = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,3})\s*$")


def row_letters(index: int) -> str:
    """The letters of a 0-based plate row: 0 -> ``A``, 25 -> ``Z``, 26 -> ``AA``, 31 -> ``AF``."""
    if index < 26:
        return chr(ord("A") + index)
    return "A" + chr(ord("A") + index - 26)


def row_index(letters: str) -> int:
    """The 0-based plate row of its letters (inverse of :func:`row_letters`)."""
    letters = letters.upper()
    if len(letters) == 1:
        return ord(letters) - ord("A")
    if letters[0] != "A":
        raise ValueError(f"row {letters!r}: two-letter rows run AA..AF (1536-well plates)")
    return 26 + ord(letters[1]) - ord("A")


def parse_well(name: str, plate_format: str | None = None) -> tuple[int, int]:
    """Return the 0-based ``(row, column)`` of a well name.

    Parameters
    ----------
    name : str
        A well name in any spelling :func:`normalize_well` accepts (``A1``, ``a01``, ``AF048``).
    plate_format : str, optional
        ``"96"``, ``"384"`` or ``"1536"``: the well must lie on such a plate. Without it, any
        well of a 1536-well plate is accepted.

    Returns
    -------
    tuple of int
        ``(row, column)``, both 0-based.

    Raises
    ------
    ValueError
        If ``name`` is not a well name, or the well is not on the plate; the message names the
        well and what a well looks like.
    """
    match = _WELL_RE.match(str(name))
    if match is None:
        raise ValueError(
            f"well {name!r} is not a well name "
            "(a row letter or two and a column number, e.g. A01 or AF48)"
        )
    row, column = row_index(match.group(1)), int(match.group(2)) - 1
    rows, columns = PLATE_FORMATS[plate_format] if plate_format else PLATE_FORMATS["1536"]
    if not (0 <= row < rows and 0 <= column < columns):
        what = (
            f"a {plate_format}-well plate" if plate_format else "any plate format (96, 384, 1536)"
        )
        raise ValueError(
            f"well {name!r} is not on {what} "
            f"(rows A..{row_letters(rows - 1)}, columns 1..{columns})"
        )
    return row, column


def well_name(row: int, column: int) -> str:
    """Return the stored name of a 0-based (row, column).

    ``(0, 0)`` -> ``A01``, ``(31, 47)`` -> ``AF48``.
    """
    return f"{row_letters(row)}{column + 1:02d}"


def normalize_well(name: str, plate_format: str | None = None) -> str:
    """The one spelling cellmoa stores: ``a1`` -> ``A01``, ``P024`` -> ``P24``."""
    return well_name(*parse_well(name, plate_format))


def well_names(plate_format: str) -> list[str]:
    """Every well of a plate format, row by row (``A01, A02, ..``)."""
    if plate_format not in PLATE_FORMATS:
        raise ValueError(f"plate format {plate_format!r}: use one of {', '.join(PLATE_FORMATS)}")
    rows, columns = PLATE_FORMATS[plate_format]
    return [well_name(r, c) for r in range(rows) for c in range(columns)]


def plate_format_of(wells) -> str:
    """The smallest plate format holding every well of ``wells``."""
    positions = [parse_well(w) for w in wells]
    for name, (rows, columns) in PLATE_FORMATS.items():
        if all(r < rows and c < columns for r, c in positions):
            return name
    raise AssertionError("parse_well accepts only wells of a 1536-well plate")
