"""Which fields of a plate the preprocessing jobs store.

:func:`plate_fields` picks them (labelled, the ``preprocessing.restrictions`` applied by
:func:`restrict`, and a sample of the control fields, :func:`control_sample`, flagged
``is_control``) for the tensors rule and for :func:`cellmoa.preprocess.jobs.build_tensors` alike;
:class:`PlateFields` carries them with the plate's reference fields and channels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlateFields:
    """One plate's fields as the preprocessing jobs see them."""

    name: str
    #: the fields to store (labelled treatments, then the control sample), one row each: the
    #: dataset's metadata columns and ``is_control``
    rows: pd.DataFrame
    #: the fields whose statistics standardise them (per cell line)
    reference: pd.DataFrame
    raw_dir: Path
    channels: tuple[str, ...]
    #: what the reference fields are, in words (stored with the tensors)
    reference_name: str = "DMSO control fields"


def plate_fields(
    dataset,
    metadata: pd.DataFrame,
    plate: str,
    raw_dir: Path,
    restrictions: list[dict] | None = None,
    control_fields: int = 0,
    unannotated: bool = False,
) -> PlateFields:
    """The fields of ``plate`` the tensors store.

    Labelled (``annotated`` = 1), with ``unannotated`` the fields of compounds without an MoA too
    (``annotated`` = 0, to be predicted), ``restrictions`` applied to both, and ``control_fields``
    of its control fields (:func:`control_sample`), flagged ``is_control``.
    """
    on_plate = metadata[metadata["plate"] == plate]
    labelled = dataset.labelled(on_plate)
    kept = restrict(labelled, restrictions).assign(is_control=0, annotated=1)
    if len(kept) < len(labelled):
        log.info(
            "%s: %d labelled field(s) left out by preprocessing.restrictions",
            plate,
            len(labelled) - len(kept),
        )
    if unannotated:
        others = dataset.unannotated(on_plate)
        kept_others = restrict(others, restrictions).assign(is_control=0, annotated=0)
        log.info(
            "%s: %d field(s) of %d unannotated compound(s) stored, to be predicted",
            plate,
            len(kept_others),
            kept_others["compound"].nunique(),
        )
        kept = pd.concat([kept, kept_others], ignore_index=True)
    controls = control_sample(dataset.controls(on_plate), control_fields)
    if control_fields:
        log.info(
            "%s: %d of %d control field(s) stored for profile normalisation",
            plate,
            len(controls),
            len(dataset.controls(on_plate)),
        )
    rows = (
        pd.concat([kept, controls.assign(is_control=1, annotated=0)], ignore_index=True)
        if len(controls)
        else kept
    )
    return PlateFields(
        plate,
        rows,
        dataset.reference(on_plate),
        Path(raw_dir),
        tuple(dataset.channels),
        dataset.reference_description,
    )


def control_sample(controls: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` control fields spread over the control wells.

    The first site of every well, then the second, and so on (deterministic; all of them if there
    are fewer).
    """
    if n <= 0 or controls.empty:
        return controls.iloc[0:0]
    ordered = controls.sort_values(["well", "site"])
    rank = ordered.groupby("well").cumcount()
    ordered = ordered.assign(_rank=rank.to_numpy()).sort_values(
        ["_rank", "well", "site"], kind="stable"
    )
    return ordered.head(n).drop(columns="_rank").sort_values(["well", "site"])


def restrict(metadata: pd.DataFrame, restrictions: list[dict] | None) -> pd.DataFrame:
    """Keep a restricted compound's fields only where they match its restriction.

    Every criterion the restriction gives must match: ``batches`` (list), ``wells`` (a regular
    expression matched at the start of the well name) and ``concentrations`` (list, compared as
    floats). Other compounds are kept.

    Kensert et al. (2019) kept taxol only in the Week1 plates' D0x wells at 0.3, 1 and 3 uM: every
    BBBC021 plate also has taxol 0.3 uM positive-control wells, which would otherwise outnumber
    every other treatment.
    """
    keep = np.ones(len(metadata), bool)
    for rule in restrictions or []:
        unknown = sorted(set(rule) - {"compound", "batches", "wells", "concentrations"})
        if unknown or "compound" not in rule:
            raise ValueError(
                "a restriction needs 'compound' and takes batches, wells, concentrations; got "
                f"{sorted(rule)}"
            )
        match = np.ones(len(metadata), bool)
        if "batches" in rule:
            match &= metadata["batch"].isin(rule["batches"]).to_numpy()
        if "wells" in rule:
            match &= metadata["well"].str.match(rule["wells"]).to_numpy()
        if "concentrations" in rule:
            conc = metadata["concentration"].to_numpy(dtype=float)
            match &= np.isclose(
                conc[:, None], np.asarray(rule["concentrations"], float)[None, :], rtol=1e-6
            ).any(axis=1)
        keep &= ~(metadata["compound"] == rule["compound"]).to_numpy() | match
    return metadata[keep]
