"""The interface every dataset adapter implements, and fold naming shared by all of them."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path

import pandas as pd

#: Columns every adapter's :meth:`Dataset.read_metadata` returns (one row per field of view).
METADATA_COLUMNS = [
    "plate",  # plate name, e.g. Week1_22123
    "batch",  # batch the plate belongs to (BBBC021: the week), used by NSCB folds
    "well",  # well name, e.g. C10
    "site",  # field of view inside the well (int, 1-based)
    "replicate",  # replicate number (int)
    "compound",
    "concentration",  # float
    "moa",  # class label; missing ("") for images without a label
]


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


class Dataset(ABC):
    """A high-content screening dataset: metadata, where its images lie, its channels."""

    #: short name used in config and paths
    name: str
    #: channel names in the order they are stacked into tensors
    channels: tuple[str, ...]
    #: the label of control wells (used for normalisation, never as a class)
    control: str

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
        mask = (metadata["moa"] != "") & (metadata["moa"] != self.control)
        return metadata[mask]

    def controls(self, metadata: pd.DataFrame) -> pd.DataFrame:
        return metadata[metadata["compound"] == self.control]
