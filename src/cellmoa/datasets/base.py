"""The interface every dataset adapter implements, and fold naming shared by all of them."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import pandas as pd

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


def restrict(metadata: pd.DataFrame, restrictions: list[dict] | None) -> pd.DataFrame:
    """Keep a restricted compound's fields only where they match every criterion its restriction
    gives: ``batches`` (list), ``wells`` (a regular expression matched at the start of the well
    name) and ``concentrations`` (list, compared as floats). Other compounds are kept.

    Kensert et al. (2019) kept taxol only in the Week1 plates' D0x wells at 0.3, 1 and 3 uM: every
    BBBC021 plate also has taxol 0.3 uM positive-control wells, which would otherwise outnumber
    every other treatment.
    """
    keep = np.ones(len(metadata), bool)
    for rule in restrictions or []:
        unknown = sorted(set(rule) - {"compound", "batches", "wells", "concentrations"})
        if unknown or "compound" not in rule:
            raise ValueError(
                f"a restriction needs 'compound' and takes batches, wells, concentrations; got {sorted(rule)}"
            )
        match = np.ones(len(metadata), bool)
        if "batches" in rule:
            match &= metadata["batch"].isin(rule["batches"]).to_numpy()
        if "wells" in rule:
            match &= metadata["well"].str.match(rule["wells"]).to_numpy()
        if "concentrations" in rule:
            conc = metadata["concentration"].to_numpy(dtype=float)
            match &= np.isclose(conc[:, None], np.asarray(rule["concentrations"], float)[None, :], rtol=1e-6).any(axis=1)
        keep &= ~(metadata["compound"] == rule["compound"]).to_numpy() | match
    return metadata[keep]


def fold_slug(compound: str) -> str:
    """A file-name-safe, wildcard-safe name for a fold that holds out ``compound``.

    ``mevinolin/lovastatin`` -> ``mevinolin-lovastatin``; ``epothilone B`` -> ``epothilone-b``.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", compound.lower()).strip("-")
    if not slug:
        raise ValueError(f"compound name {compound!r} gives an empty fold name")
    return slug


def fold_slugs(compounds: list[str]) -> dict[str, str]:
    """Map fold slug -> compound, refusing two compounds that would share a slug."""
    out: dict[str, str] = {}
    for compound in compounds:
        slug = fold_slug(compound)
        if slug in out and out[slug] != compound:
            raise ValueError(
                f"compounds {out[slug]!r} and {compound!r} both give the fold name {slug!r}; "
                "rename one of them in the metadata or leave one out of the fold list"
            )
        out[slug] = compound
    return out


#: The metadata column each fold scheme holds out (one fold per value of it).
FOLD_COLUMNS = {
    "nsc": "compound",  # leave one compound out (Kensert et al. 2019, BBBC021)
    "nscb": "compound",  # ... and that compound's batches too
    "cell_line": "cell_line",  # train on the other cell line(s), test on this one (BBBC014)
}


class Dataset(ABC):
    """A high-content screening dataset: metadata, where its images lie, its channels, its
    labels, folds, crop geometry and how its channels feed a 3-channel network."""

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
    #: the paper's output layer for the dataset: "softmax" or "sigmoid" (two classes)
    head: str = "softmax"

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
    def read_metadata(self, metadata_dir: Path) -> pd.DataFrame:
        """One row per field of view, with :data:`METADATA_COLUMNS` plus one
        ``file_<channel>`` column per channel holding the path relative to the raw image folder."""

    def plate_files(self, metadata: pd.DataFrame, plate: str) -> list[str]:
        """Every image file the metadata lists for ``plate``, relative to the plate's folder."""
        rows = metadata[metadata["plate"] == plate]
        if rows.empty:
            raise ValueError(f"plate {plate} has no images in the metadata; check data.plates in the config")
        return sorted({f.split("/", 1)[1] for ch in self.channels for f in rows[f"file_{ch}"]})

    def labelled(self, metadata: pd.DataFrame) -> pd.DataFrame:
        """Rows that carry a class label (controls excluded)."""
        mask = metadata["moa"] != ""
        if self.control is not None:
            mask &= (metadata["moa"] != self.control) & (metadata["compound"] != self.control)
        return metadata[mask]

    def controls(self, metadata: pd.DataFrame) -> pd.DataFrame:
        """The control fields (empty for a dataset without control wells)."""
        if self.control is None:
            return metadata.iloc[0:0]
        return metadata[metadata["compound"] == self.control]

    def reference(self, metadata: pd.DataFrame) -> pd.DataFrame:
        """The fields whose statistics standardise the tensors (per plate and cell line): the
        control fields, or every field where the dataset has no controls."""
        return self.controls(metadata) if self.control is not None else metadata

    def fold_column(self, scheme: str) -> str:
        """The metadata column a fold scheme holds out, refusing schemes the dataset has no use for."""
        if scheme not in self.fold_schemes:
            raise ValueError(
                f"fold scheme {scheme!r} does not apply to {self.name}; use one of {', '.join(self.fold_schemes)}"
            )
        return FOLD_COLUMNS[scheme]
