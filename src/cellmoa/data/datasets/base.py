"""The interface every dataset adapter implements.

An adapter knows one published dataset's layout: its metadata tables, archive names, channels,
controls, fold schemes, crop geometry and the paper's settings for it. Adapters are registered in
:data:`cellmoa.data.datasets.DATASETS`, the one list of datasets that the config schema, the command
line, the synthesizers and the reports derive from.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from pathlib import Path

import pandas as pd

from cellmoa.columns import FOLD_COLUMNS
from cellmoa.data.http import join_url

#: Columns every adapter's :meth:`Dataset.read_metadata` returns (one row per field of view).
METADATA_COLUMNS = [
    "plate",  # plate name, e.g. Week1_22123
    "batch",  # batch the plate belongs to (BBBC021: the week), used by NSCB folds
    "cell_line",  # cell line imaged (BBBC021: MCF-7; BBBC014: MCF7 or A549)
    "well",  # well name, e.g. C10
    "site",  # field of view inside the well (int, 1-based)
    "replicate",  # replicate number (int)
    "compound",
    "concentration",  # float
    "moa",  # class label; missing ("") for images without a label
]


class Dataset(ABC):
    """A high-content screening dataset.

    An adapter describes its metadata, where its images lie, its channels, its labels, folds,
    crop geometry and how its channels feed a 3-channel network.
    """

    #: short name used in config and paths
    name: str
    #: where the dataset is published (data.base_url defaults to it)
    base_url: str
    #: channel names in the order they are stacked into tensors
    channels: tuple[str, ...]
    #: the compound of control wells (used for normalisation, never as a class); None when the
    #: dataset has no control wells, in which case all fields of a cell line are the reference
    control: str | None
    #: fold schemes (keys of FOLD_COLUMNS) that make sense for the dataset; the first is the default
    fold_schemes: tuple[str, ...]
    #: the paper's crop geometry: fields are resized to ``field_size`` (None = kept) and cut
    #: into ``crop_grid`` (rows, cols) crops
    crop_grid: tuple[int, int] = (2, 2)
    field_size: tuple[int, int] | None = None
    #: what feeds the network's 3 input channels: stored channel names, None = a zero channel
    network_channels: tuple[str | None, ...]
    #: whether nearest-neighbour matching of treatment profiles across compounds makes sense
    nearest_neighbours: bool = True
    #: whether its rows without a label are compounds of unknown MoA worth predicting (the
    #: config's ``prediction.unannotated`` default)
    predicts_unannotated: bool = True
    #: the paper's output layer for the dataset: "softmax" or "sigmoid" (two classes)
    head: str = "softmax"
    #: "module:Class" of the synthesizer spec writing a dataset in this layout (``synthetic:``)
    synthesizer: str
    #: the demo config of the dataset (``make demo`` runs the first registered dataset's)
    demo_config: str
    #: published treatment accuracies to print beside ours: {network: accuracy}, valid for the
    #: fold scheme ``reference_scheme`` only; and what they are, for the column header
    reference_accuracy: dict[str, float] = {}
    reference_scheme: str | None = None
    #: whether its plates come as one archive each (download_plate + extract_plate); else each
    #: image is fetched on its own (fetch_plate_images, :meth:`plate_sources`)
    archives: bool = True

    def configure(self, data: dict | None) -> "Dataset":
        """Take the config's ``data:`` section and return the configured adapter.

        An adapter configured there, like ``loaddata``, reads its tables' locations from it; the
        published datasets need nothing and return themselves.

        Parameters
        ----------
        data : dict or None
            The config's ``data:`` section.

        Returns
        -------
        Dataset
            The configured adapter (here ``self``).
        """
        return self

    def annotated_compounds(self) -> list[str]:
        """The compounds of known MoA, where they are known before any download.

        They are the default of ``training.folds.compounds``; the list is empty when they are not
        known in advance.
        """
        return []

    def metadata_sources(self, base_url: str) -> dict[str, str]:
        """Where each of :meth:`metadata_files` is fetched from: ``<base_url>/<name>``."""
        return {name: join_url(base_url, name) for name in self.metadata_files()}

    @abstractmethod
    def metadata_files(self) -> list[str]:
        """File names of the metadata tables the dataset publishes next to its images."""

    @abstractmethod
    def archive_name(self, plate: str) -> str:
        """File name of the archive that holds ``plate``'s images."""

    @abstractmethod
    def batch_of(self, plate: str) -> str:
        """The batch a plate belongs to (BBBC021: its week)."""

    @abstractmethod
    def read_fields(self, metadata_dir: Path) -> pd.DataFrame:
        """The adapter's reading of its metadata tables (see :meth:`read_metadata`)."""

    def metadata_columns(self) -> dict[str, list[str]]:
        """The columns each published metadata CSV must have ({file name: columns}).

        Files not listed are checked only for being text.
        """
        return {}

    def check_metadata_file(self, name: str, path: Path) -> None:
        """Refuse a downloaded metadata file that is not the table it should be.

        Called before the file takes its final name.

        Parameters
        ----------
        name : str
            The file's published name (a key of :meth:`metadata_columns`), used in messages.
        path : Path
            Where the downloaded file lies.

        Raises
        ------
        ValueError
            If the file is empty, binary, an HTML error page, not UTF-8, unparsable, or lacks
            :meth:`metadata_columns`; the message says what it is instead.
        """
        raw = Path(path).read_bytes()
        if not raw.strip():
            raise ValueError(f"{name} is empty")
        if b"\x00" in raw[:4096]:
            raise ValueError(f"{name} is binary data, not a text table")
        head = raw[:512].lstrip().lower()
        if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
            raise ValueError(
                f"{name} is an HTML/XML page, not the table "
                "(the server answered with an error page?)"
            )
        columns = self.metadata_columns().get(name)
        if not columns:
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{name} is not UTF-8 text ({exc})") from exc
        try:
            header = pd.read_csv(io.StringIO(text), nrows=5)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise ValueError(f"{name} is not a readable CSV ({exc})") from exc
        missing = [c for c in columns if c not in header.columns]
        if missing:
            raise ValueError(
                f"{name} lacks the column(s) {', '.join(missing)} of {self.name}'s table"
            )

    def required_columns(self) -> list[str]:
        """The columns :meth:`read_metadata` returns.

        They are :data:`METADATA_COLUMNS`, ``image_number`` and one ``file_<channel>`` per channel.
        """
        return METADATA_COLUMNS + ["image_number"] + [f"file_{c}" for c in self.channels]

    def read_metadata(self, metadata_dir: Path) -> pd.DataFrame:
        """Read the dataset's metadata tables: one row per field of view.

        Parameters
        ----------
        metadata_dir : Path
            The folder holding :meth:`metadata_files`.

        Returns
        -------
        pandas.DataFrame
            One row per field with :meth:`required_columns`: :data:`METADATA_COLUMNS`,
            ``image_number`` (unique per field) and one ``file_<channel>`` column per channel
            holding the path relative to the raw image folder.

        Raises
        ------
        ValueError
            If the adapter fails to provide a column; the message names the metadata files and
            the missing columns.
        """
        table = self.read_fields(Path(metadata_dir))
        missing = [c for c in self.required_columns() if c not in table.columns]
        if missing:
            files = ", ".join(str(Path(metadata_dir) / f) for f in self.metadata_files())
            raise ValueError(
                f"{files}: the {self.name} metadata read from these files lacks the column(s) "
                f"{', '.join(missing)}; check that they are {self.name}'s own tables"
            )
        return table

    @property
    def reference_description(self) -> str:
        """What the dataset's reference fields are, in words (stored with the tensors)."""
        if self.control is None:
            return "fields (all of them; the dataset has no control wells)"
        return f"{self.control} control fields"

    def plate_files(self, metadata: pd.DataFrame, plate: str) -> list[str]:
        """Every image file the metadata lists for ``plate``, relative to the plate's folder."""
        rows = metadata[metadata["plate"] == plate]
        if rows.empty:
            raise ValueError(
                f"plate {plate} has no images in the metadata; check data.plates in the config"
            )
        return sorted({f.split("/", 1)[1] for ch in self.channels for f in rows[f"file_{ch}"]})

    def labelled(self, metadata: pd.DataFrame) -> pd.DataFrame:
        """Rows that carry a class label (controls excluded)."""
        mask = metadata["moa"] != ""
        if self.control is not None:
            mask &= (metadata["moa"] != self.control) & (metadata["compound"] != self.control)
        return metadata[mask]

    def unannotated(self, metadata: pd.DataFrame) -> pd.DataFrame:
        """Treatment rows without a class label (not controls).

        These are the compounds a screen is run for.
        """
        mask = metadata["moa"] == ""
        if self.control is not None:
            mask &= metadata["compound"] != self.control
        return metadata[mask]

    def controls(self, metadata: pd.DataFrame) -> pd.DataFrame:
        """The control fields (empty for a dataset without control wells)."""
        if self.control is None:
            return metadata.iloc[0:0]
        return metadata[metadata["compound"] == self.control]

    def reference(self, metadata: pd.DataFrame) -> pd.DataFrame:
        """The fields whose statistics standardise the tensors (per plate and cell line).

        These are the control fields, or every field where the dataset has no controls.
        """
        return self.controls(metadata) if self.control is not None else metadata

    def fold_column(self, scheme: str) -> str:
        """The metadata column a fold scheme holds out.

        Parameters
        ----------
        scheme : str
            A fold scheme (a key of ``FOLD_COLUMNS``).

        Returns
        -------
        str
            The column of the metadata that the scheme's folds hold out.

        Raises
        ------
        ValueError
            If the scheme is not one of the dataset's ``fold_schemes``.
        """
        if scheme not in self.fold_schemes:
            raise ValueError(
                f"fold scheme {scheme!r} does not apply to {self.name}; "
                f"use one of {', '.join(self.fold_schemes)}"
            )
        return FOLD_COLUMNS[scheme]
