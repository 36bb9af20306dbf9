"""BBBC014 v1 (Ilya Ravkin): NF-kB cytoplasm-to-nucleus translocation after TNF-alpha.

One 96-well plate, two cell lines (rows A-D MCF7, rows E-H A549), one field per well, 8-bit BMPs
of 1024 x 1360 in two channels (Channel 1: the NF-kB reporter, FITC; Channel 2: DAPI).

Layout as published by the Broad Bioimage Benchmark Collection (what Kensert et al. 2019's code
reads; checked by the parser, which fails naming the file where it differs):

- ``BBBC014_v1_images.zip``, whose members sit under ``BBBC014_v1_images/`` and are named
  ``Channel <1|2>-<NN>-<Row>-<Col>-00.Bmp`` (NN = 01..96, the well's row-major index);
- ``BBBC014_v1_platemap_all.txt``: a header line, then one line per well in row-major order
  (A01, A02, ..., H12) holding the TNF-alpha concentration in molar, written ``10^-7`` (a plain
  number such as ``1e-7`` is accepted too).

The paper's task: the 4 highest concentrations of a cell line = translocated, the 4 lowest = not
translocated, the middle 4 left out; 2 folds, each training on one cell line and testing on the
other. Concentrations are stored in uM, like BBBC021's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from cellmoa.data.datasets.base import Dataset
from cellmoa.data.wells import well_names

PLATEMAP = "BBBC014_v1_platemap_all.txt"
ARCHIVE = "BBBC014_v1_images.zip"
#: the folder the archive's images sit under; it is the plate's name in cellmoa
PLATE = "BBBC014_v1_images"
CHANNELS = ("NFkB", "DAPI")
#: file name token of each channel
CHANNEL_NUMBERS = {"NFkB": 1, "DAPI": 2}
ROWS = "ABCDEFGH"
COLUMNS = range(1, 13)
CELL_LINES = {"MCF7": "ABCD", "A549": "EFGH"}
COMPOUND = "TNF-alpha"
TRANSLOCATED = "translocated"
NOT_TRANSLOCATED = "not translocated"
#: how many of a cell line's concentrations form each class (the paper: 4 highest, 4 lowest)
PER_CLASS = 4

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_POWER_RE = re.compile(rf"10\s*\^\s*\(?\s*({_NUMBER})\s*\)?")
_PLAIN_RE = re.compile(rf"({_NUMBER})\s*$")


def wells() -> list[str]:
    """The 96 wells in the platemap's (row-major) order."""
    return well_names("96")


def file_name(channel: str, well: str) -> str:
    """``Channel 1-01-A-01-00.Bmp`` for the NF-kB image of well A01."""
    index = wells().index(well) + 1
    return f"Channel {CHANNEL_NUMBERS[channel]}-{index:02d}-{well[0]}-{well[1:]}-00.Bmp"


def cell_line_of(well: str) -> str:
    """The cell line of a well: rows A-D MCF7, rows E-H A549."""
    return next(line for line, rows in CELL_LINES.items() if well[0] in rows)


def _concentration(line: str) -> float | None:
    match = _POWER_RE.search(line)
    if match:
        return 10.0 ** float(match.group(1))
    match = _PLAIN_RE.search(line)
    return float(match.group(1)) if match else None


def parse_platemap(text: str, path: Path | str = PLATEMAP) -> list[float]:
    """Parse the platemap into its 96 concentrations (molar), in well order A01..H12.

    A first line that is not a concentration is taken as the header.

    Parameters
    ----------
    text : str
        The platemap's text.
    path : Path or str, optional
        Where the text comes from, named in error messages.

    Returns
    -------
    list of float
        One concentration per well, molar.

    Raises
    ------
    ValueError
        If the text does not hold 96 readable concentrations, or one is not positive.
    """
    lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    if lines and _concentration(lines[0]) is None:
        lines = lines[1:]
    values = [_concentration(line) for line in lines]
    unreadable = [i for i, v in enumerate(values) if v is None]
    if len(lines) != 96 or unreadable:
        detail = (
            f"line {unreadable[0] + 2} reads {lines[unreadable[0]]!r}"
            if unreadable
            else f"{len(lines)} wells"
        )
        raise ValueError(
            f"{path}: expected a header line and then one concentration per well for 96 wells "
            f"(written '10^-7' or '1e-7'); {detail}. The file differs from BBBC014 v1's platemap"
        )
    if any(v <= 0 for v in values):
        raise ValueError(f"{path}: concentrations must be positive (molar)")
    return values


def label_concentrations(concentrations: list[float]) -> dict[float, str]:
    """Class of each distinct concentration of one cell line.

    The PER_CLASS highest are translocated, the PER_CLASS lowest not translocated, the rest
    unlabelled ("").

    Parameters
    ----------
    concentrations : list of float
        The cell line's concentrations (repeats allowed).

    Returns
    -------
    dict
        {concentration: class label, or "" for the middle ones}.

    Raises
    ------
    ValueError
        If there are fewer than ``2 * PER_CLASS`` distinct concentrations.
    """
    distinct = sorted(set(concentrations))
    if len(distinct) < 2 * PER_CLASS:
        raise ValueError(
            f"BBBC014 needs at least {2 * PER_CLASS} distinct concentrations per cell line "
            f"to label the {PER_CLASS} highest and {PER_CLASS} lowest; found {len(distinct)}"
        )
    labels = dict.fromkeys(distinct, "")
    for value in distinct[:PER_CLASS]:
        labels[value] = NOT_TRANSLOCATED
    for value in distinct[-PER_CLASS:]:
        labels[value] = TRANSLOCATED
    return labels


class BBBC014(Dataset):
    """BBBC014 v1: one 96-well plate, two cell lines, NF-kB translocated or not."""

    name = "bbbc014"
    base_url = "https://data.broadinstitute.org/bbbc/BBBC014"
    channels = CHANNELS
    control = None  # no control wells: each cell line's fields are its own reference
    fold_schemes = ("cell_line",)
    #: the paper: each 1024 x 1360 field resized to 1024 x 1024 and cut into 16 crops of 256 x 256
    crop_grid = (4, 4)
    field_size = (1024, 1024)
    #: the paper stacked (zeros, NF-kB, DAPI) into the 3 channels the networks take
    network_channels = (None, "NFkB", "DAPI")
    nearest_neighbours = False  # one compound: there is no other compound to match
    predicts_unannotated = False  # its unlabelled rows are the middle doses of the one compound
    head = "sigmoid"  # the paper's binary head
    synthesizer = "cellmoa.data.synthetic.bbbc014:BBBC014Spec"
    demo_config = "config/demo_bbbc014.yaml"

    def metadata_files(self) -> list[str]:
        """The platemap, the one metadata file."""
        return [PLATEMAP]

    def check_metadata_file(self, name: str, path: Path) -> None:
        """The platemap must be text and parse into its 96 concentrations."""
        super().check_metadata_file(name, path)
        parse_platemap(Path(path).read_bytes().decode("latin-1"), Path(name))

    def archive_name(self, plate: str) -> str:
        """The one archive of the one plate (other plate names are refused)."""
        self._check_plate(plate)
        return ARCHIVE

    def batch_of(self, plate: str) -> str:
        """The plate itself: BBBC014 has one plate and one batch."""
        return plate

    def _check_plate(self, plate: str) -> None:
        if plate != PLATE:
            raise ValueError(f"BBBC014 has one plate, {PLATE!r}; got {plate!r} (check data.plates)")

    def read_fields(self, metadata_dir: Path) -> pd.DataFrame:
        """The metadata table read from the platemap in ``metadata_dir``."""
        path = Path(metadata_dir) / PLATEMAP
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: run the download rule (download_metadata) or copy BBBC014's "
                f"platemap into {metadata_dir}"
            )
        molar = parse_platemap(path.read_bytes().decode("latin-1"), path)
        return self.table(molar)

    def table(self, molar: list[float]) -> pd.DataFrame:
        """The metadata table from the platemap's 96 molar concentrations."""
        names = wells()
        frame = pd.DataFrame(
            {
                "plate": PLATE,
                "batch": PLATE,
                "well": names,
                "site": 1,
                "replicate": [ROWS.index(w[0]) % 4 + 1 for w in names],
                "compound": COMPOUND,
                # uM, like BBBC021; rounded to 9 significant digits so equal doses compare equal
                "concentration": [float(f"{m * 1e6:.9g}") for m in molar],
                "cell_line": [cell_line_of(w) for w in names],
                "image_number": range(1, len(names) + 1),
            }
        )
        frame["moa"] = ""
        for _line, rows in frame.groupby("cell_line"):
            labels = label_concentrations(rows["concentration"].tolist())
            frame.loc[rows.index, "moa"] = rows["concentration"].map(labels)
        for channel in self.channels:
            frame[f"file_{channel}"] = [f"{PLATE}/{file_name(channel, w)}" for w in names]
        return frame[self.required_columns()]
