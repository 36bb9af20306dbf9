"""cellmoa's own CNN profiles in the field's layout: well and treatment tables to take elsewhere.

The rule ``export_profiles`` writes, per network, the embeddings of the **all-compound fold's
model** (``results/models/<network>/all/embeddings.h5``: trained on every annotated compound, it
embeds every crop of ``results/tensors/all.h5``, controls and unannotated compounds included) as
profile tables in pycytominer's layout, which pycytominer, copairs and ``cellmoa
evaluate-profiles`` read as they are:

- :func:`export_wells`: one row per well, control wells and the unannotated compounds' wells
  included: ``Metadata_Plate``, ``Metadata_Well``, ``Metadata_Compound``,
  ``Metadata_Concentration``, ``Metadata_MoA``, ``Metadata_Batch``, ``Metadata_IsControl`` (0/1),
  ``Metadata_Crops`` (the crops averaged), then the mean embedding ``f0``, ``f1``, ... (float32);
- :func:`export_treatments`: one row per treatment (compound, concentration), controls left out:
  ``Metadata_Compound``, ``Metadata_Concentration``, ``Metadata_MoA``, ``Metadata_Batch`` (the
  batches it was seen in, joined by ``;``), ``Metadata_Crops``, then the mean embedding of its
  crops: the raw treatment profiles the workflow matches
  (:func:`~cellmoa.profiles.tables.fold_profiles`), of this one model.

The unannotated compounds' ``Metadata_MoA`` is missing (null in Parquet), as pycytominer leaves an
unknown annotation; never a made-up class, so no tool scores them as one. The control wells' MoA
is the control's name, as the tensors have it.

The all-compound model trained on every annotated compound, so nearest-neighbour matching of its
profiles is optimistic: the honest leave-one-compound-out figures are the workflow's own tables.

Examples
--------
>>> metadata = pd.DataFrame({"plate": ["P1"] * 4, "well": ["A01", "A01", "B01", "C01"],
...                          "compound": ["taxol", "taxol", "DMSO", "AZ-U1"],
...                          "concentration": [0.3, 0.3, 0.0, 1.0],
...                          "moa": ["Microtubule stabilizers"] * 2 + ["DMSO", ""],
...                          "batch": ["Week1"] * 4, "is_control": [0, 0, 1, 0],
...                          "annotated": [1, 1, 0, 0]})
>>> embeddings = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0], [0.0, 1.0]])
>>> wells = export_wells(metadata, embeddings)
>>> wells[["Metadata_Well", "Metadata_IsControl", "Metadata_Crops", "f0"]].values.tolist()
[['A01', 0, 2, 2.0], ['B01', 1, 1, 5.0], ['C01', 0, 1, 0.0]]
>>> wells["Metadata_MoA"].isna().tolist()
[False, False, True]
>>> export_treatments(metadata, embeddings)["Metadata_Compound"].tolist()
['AZ-U1', 'taxol']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellmoa import validation
from cellmoa.columns import (
    BATCH,
    COMPOUND,
    CONCENTRATION,
    CROPS,
    MOA,
    PLATE,
    WELL,
    WELL_KEYS,
    is_metadata,
    metadata_columns,
)
from cellmoa.profiles.tables import UNANNOTATED, embedding_table, treatment_profiles

#: the leading columns of an exported well table (pycytominer's order), then the other metadata
WELL_COLUMNS = [PLATE, WELL, COMPOUND, CONCENTRATION, MOA, BATCH]
#: the leading columns of an exported treatment table
TREATMENT_COLUMNS = [COMPOUND, CONCENTRATION, MOA, BATCH]


def _layout(table: pd.DataFrame, leading: list[str], features: list[str]) -> pd.DataFrame:
    """``leading``, the other metadata, then the features as float32; unannotated MoAs missing."""
    table = table.reset_index(drop=True)
    others = [c for c in metadata_columns(table.columns) if c not in leading]
    out = table[leading + others].copy()
    out[MOA] = out[MOA].mask(out[MOA] == UNANNOTATED)
    values = table[features].to_numpy(np.float32)
    return pd.concat([out, pd.DataFrame(values, columns=features)], axis=1)


def export_wells(
    metadata: pd.DataFrame, embeddings: np.ndarray, source: str = "embeddings"
) -> pd.DataFrame:
    """The mean embedding of every well, controls and unannotated compounds included.

    Parameters
    ----------
    metadata : pandas.DataFrame
        The tensors' crop metadata (:func:`cellmoa.preprocess.tensors.read_crop_metadata`).
    embeddings : numpy.ndarray
        One embedding per crop, aligned with ``metadata`` row by row (the all-compound fold's:
        the leave-one-out folds leave the unannotated crops NaN).
    source : str
        The embeddings' name in messages.

    Returns
    -------
    pandas.DataFrame
        One row per well, sorted by plate and well: :data:`WELL_COLUMNS`,
        ``Metadata_IsControl``, ``Metadata_Crops``, then the features ``f0``, ``f1``, ...
        (float32); ``Metadata_MoA`` is missing for the unannotated compounds' wells.

    Raises
    ------
    ValueError
        When the embeddings are not aligned with the metadata, or a well's crops disagree on its
        treatment or batch.
    """
    crops = embedding_table(metadata, embeddings, controls=True, unannotated=True)
    features = [c for c in crops.columns if not is_metadata(c)]
    groups = crops.groupby(metadata_columns(crops.columns), sort=True, dropna=False)
    wells = groups[features].mean()
    wells[CROPS] = groups.size()
    wells = wells.reset_index()
    twice = wells.duplicated(WELL_KEYS, keep=False)
    if twice.any():
        shown = ", ".join(
            f"{p} {w}" for p, w in wells.loc[twice, WELL_KEYS].drop_duplicates().values
        )
        raise ValueError(
            f"{source}: the crops of well(s) {shown} disagree on the treatment or batch; "
            "a well holds one treatment"
        )
    return _layout(wells, WELL_COLUMNS, features)


def export_treatments(
    metadata: pd.DataFrame, embeddings: np.ndarray, source: str = "embeddings"
) -> pd.DataFrame:
    """The raw treatment profiles, annotated and unannotated compounds', controls left out.

    Parameters
    ----------
    metadata : pandas.DataFrame
        The tensors' crop metadata (:func:`cellmoa.preprocess.tensors.read_crop_metadata`).
    embeddings : numpy.ndarray
        One embedding per crop, aligned with ``metadata`` row by row.
    source : str
        The embeddings' name in messages.

    Returns
    -------
    pandas.DataFrame
        One row per (compound, concentration), sorted: :data:`TREATMENT_COLUMNS` (the batches
        joined by ``;``), ``Metadata_Crops``, then the mean of the treatment's crops' embeddings
        ``f0``, ``f1``, ... (float32; :func:`cellmoa.profiles.tables.treatment_profiles`, the raw
        profiles the workflow matches); ``Metadata_MoA`` is missing for the unannotated ones.
    """
    crops = embedding_table(metadata, embeddings, unannotated=True)
    profiles = treatment_profiles(crops, source=source)
    features = list(profiles.attrs["features"])
    keys = [COMPOUND, CONCENTRATION]
    counted = crops.assign(
        **{CONCENTRATION: validation.concentration_values(crops[CONCENTRATION], source)}
    )
    counts = counted.groupby(keys, sort=True).size().rename(CROPS).reset_index()
    profiles = profiles.merge(counts, on=keys, how="left", validate="one_to_one")
    profiles[BATCH] = [";".join(sorted(b)) for b in profiles[BATCH]]
    return _layout(profiles, TREATMENT_COLUMNS, features)
