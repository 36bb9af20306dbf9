"""Folds: which crops a training job learns from and which it predicts.

A fold scheme names the metadata column a fold holds out, one fold per value of it:

- ``nsc``: leave one compound out (Kensert et al. 2019, BBBC021);
- ``nscb``: leave one compound out, and its batches (BBBC021: weeks) too;
- ``cell_line``: train on the other cell line(s), test on this one (BBBC014).

To add a scheme: an entry in :data:`cellmoa.columns.FOLD_COLUMNS`, its rule in
:func:`select_fold`, the scheme in the datasets' ``fold_schemes`` that support it, and in the
config schema's ``folds.scheme`` enum.
Fold names in paths are slugs of the held-out value (:func:`fold_slug`). One more fold,
:data:`ALL_FOLD`, holds out nothing: it trains on every annotated compound and predicts the
unannotated treatments (:func:`select_all_fold`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cellmoa.columns import FOLD_COLUMNS

log = logging.getLogger(__name__)


#: the fold that trains on every annotated compound and predicts the unannotated treatments
ALL_FOLD = "all"


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
        if slug == ALL_FOLD:
            raise ValueError(
                f"the fold name {slug!r} of {compound!r} is taken by the all-compound fold; rename "
                "the compound "
                "in the metadata or leave it out of the fold list"
            )
        if slug in out and out[slug] != compound:
            raise ValueError(
                f"compounds {out[slug]!r} and {compound!r} both give the fold name {slug!r}; "
                "rename one of them in the metadata or leave one out of the fold list"
            )
        out[slug] = compound
    return out


def folds_from_config(folds: dict, dataset) -> dict[str, str]:
    """Slug -> held-out value (compound or cell line) of every fold of the config.

    The folds of the ``training.folds`` config section, the scheme checked against the dataset
    (``folds["scheme"]`` is set to the dataset's default when absent).
    """
    scheme = folds.setdefault("scheme", dataset.fold_schemes[0])
    dataset.fold_column(scheme)  # refuses a scheme the dataset has no use for
    if "held_out" in folds and "compounds" in folds:
        raise ValueError(
            "config: give training.folds.held_out or training.folds.compounds, not both"
        )
    values = folds.get("held_out", folds.get("compounds"))
    if not values:
        raise ValueError(
            "config: training.folds.held_out is required - the compounds (nsc, nscb) or cell "
            "lines (cell_line) that the folds hold out, one fold each"
        )
    if "compounds" in folds and scheme == "cell_line":
        raise ValueError(
            "config: the cell_line scheme holds out cell lines; list them in "
            "training.folds.held_out"
        )
    return fold_slugs(list(values))


@dataclass
class Fold:
    """One fold: what it holds out, the rows it trains on and tests, the classes it predicts."""

    held_out: str
    scheme: str
    classes: list[str]
    train_index: np.ndarray
    test_index: np.ndarray
    excluded_batches: list[str]

    @property
    def column(self) -> str:
        """The tensors' metadata column the fold's scheme holds out."""
        return FOLD_COLUMNS.get(self.scheme, "compound")

    def summary(self, metadata: pd.DataFrame) -> dict:
        """What the fold trains on and tests, in numbers and names (the fold's ``fold.json``)."""
        train = metadata.iloc[self.train_index]
        return {
            "held_out": self.held_out,
            "held_out_column": self.column,
            **(
                {"held_out_compound": self.held_out}
                if self.column == "compound" and self.scheme != ALL_FOLD
                else {}
            ),
            "scheme": self.scheme,
            "classes": self.classes,
            "excluded_batches": self.excluded_batches,
            "n_train_crops": int(len(self.train_index)),
            "n_test_crops": int(len(self.test_index)),
            "train_compounds": sorted(train["compound"].unique().tolist()),
            "train_cell_lines": sorted(train["cell_line"].unique().tolist()),
            "train_crops_per_class": {
                k: int(v) for k, v in train["moa"].value_counts().sort_index().items()
            },
        }


def trainable(metadata: pd.DataFrame) -> np.ndarray:
    """Rows that may be trained on and scored.

    Labelled treatments, never control crops, never the crops of unannotated compounds.
    """
    mask = (metadata["moa"] != "").to_numpy().copy()
    if "is_control" in metadata.columns:
        mask &= ~metadata["is_control"].to_numpy(dtype=bool)
    if "annotated" in metadata.columns:
        mask &= metadata["annotated"].to_numpy(dtype=bool)
    return mask


def unannotated(metadata: pd.DataFrame) -> np.ndarray:
    """Rows of the treatments of unannotated compounds.

    They are to be predicted, never trained on or scored.
    """
    if "annotated" not in metadata.columns:
        return np.zeros(len(metadata), bool)
    mask = ~metadata["annotated"].to_numpy(dtype=bool)
    if "is_control" in metadata.columns:
        mask &= ~metadata["is_control"].to_numpy(dtype=bool)
    return mask


def fold_classes(metadata: pd.DataFrame) -> list[str]:
    """The classes every fold of these tensors predicts.

    All labelled MoAs of the treatments (so every fold has the same output layer, whatever it holds
    out); controls are not a class.
    """
    return sorted(metadata.loc[trainable(metadata), "moa"].unique().tolist())


def select_fold(metadata: pd.DataFrame, held_out: str, scheme: str = "nsc") -> Fold:
    """Training and test rows of the fold that holds out ``held_out``.

    ``held_out`` is a compound for nsc and nscb, a cell line for cell_line.

    Classes are all MoAs present in the tensors (so every fold has the same output layer).
    """
    if held_out == ALL_FOLD:
        return select_all_fold(metadata)
    if scheme not in FOLD_COLUMNS:
        raise ValueError(f"unknown fold scheme {scheme!r}; use one of {', '.join(FOLD_COLUMNS)}")
    column = FOLD_COLUMNS[scheme]
    labelled = trainable(metadata)
    classes = fold_classes(metadata)
    is_test = (metadata[column] == held_out).to_numpy() & labelled
    if not is_test.any():
        known = ", ".join(sorted(metadata[column].unique()))
        raise ValueError(
            f"fold {column.replace('_', ' ')} {held_out!r} has no crops in the tensors; there: "
            f"{known}"
        )
    train = labelled & ~is_test
    excluded: list[str] = []
    if scheme == "nscb":
        excluded = sorted(metadata.loc[is_test, "batch"].unique().tolist())
        train &= ~metadata["batch"].isin(excluded).to_numpy()
    if not train.any():
        raise ValueError(f"fold {held_out!r} ({scheme}) leaves no training crops")
    trained = set(metadata.loc[train, "moa"])
    for held_moa in sorted(set(metadata.loc[is_test, "moa"]) - trained):
        log.warning(
            "fold %s: no training crops of its MoA %r are left; it cannot be predicted right",
            held_out,
            held_moa,
        )
    return Fold(held_out, scheme, classes, np.flatnonzero(train), np.flatnonzero(is_test), excluded)


def select_all_fold(metadata: pd.DataFrame) -> Fold:
    """The all-compound fold.

    Trains on every annotated treatment, predicts the unannotated ones (its ``test_index``; refused
    when there are none).
    """
    train, test = trainable(metadata), unannotated(metadata)
    if not train.any():
        raise ValueError("the all-compound fold has no annotated crops to train on")
    if not test.any():
        raise ValueError(
            "the all-compound fold has no unannotated crops to predict: the tensors were made "
            "without "
            "prediction.unannotated, or the dataset has no compound without an MoA (set "
            "prediction.unannotated: false)"
        )
    return Fold(
        ALL_FOLD, ALL_FOLD, fold_classes(metadata), np.flatnonzero(train), np.flatnonzero(test), []
    )


def run_workload(
    metadata: pd.DataFrame, held_out: list[str], scheme: str, epochs: int
) -> dict[str, int]:
    """Images one network pushes through in a run of these folds.

    ``train_images`` (each fold's training crops, every epoch) and ``inference_images`` (each fold
    predicts its held-out crops and embeds every crop). ``metadata`` has one row per crop (as in the
    tensors).
    """
    folds = [select_fold(metadata, h, scheme) for h in held_out]
    return {
        "folds": len(folds),
        "crops": len(metadata),
        "train_images": epochs * sum(len(f.train_index) for f in folds),
        "inference_images": sum(len(f.test_index) for f in folds) + len(folds) * len(metadata),
    }
