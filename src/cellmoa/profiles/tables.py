"""Profile tables: crop embeddings and profile rows averaged into treatment profiles.

A profile table has ``Metadata_*`` columns and numeric feature columns, one row per crop, cell,
field, well or treatment. A treatment profile is the mean feature vector of a (compound,
concentration), after the checks of :mod:`cellmoa.validation` (keys filled in, concentrations as
rounded numbers, finite features or the ``features_with_nan`` policy, controls left out). The
tables made here name their features in ``attrs["features"]``.

- :func:`treatment_profiles` any profile table's treatment profiles;
- :func:`embedding_table` a profile table of crop embeddings and the tensors' metadata;
- :func:`well_profiles` the mean profile of each well;
- :func:`fold_profiles` one fold model's treatment profiles, raw and post-processed;
- :func:`concatenate_profiles` the networks' ensemble: unit-length profiles side by side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellmoa import validation
from cellmoa.columns import (
    BATCH,
    COMPOUND,
    CONCENTRATION,
    IS_CONTROL,
    MOA,
    PLATE,
    WELL,
    is_metadata,
    metadata_columns,
)
from cellmoa.profiles.chains import postprocess
from cellmoa.train.folds import unannotated as unannotated_rows

#: the MoA label the profiles of unannotated treatments carry (never a real MoA's name)
UNANNOTATED = "(unannotated)"


def treatment_profiles(
    table: pd.DataFrame,
    features=None,
    control: str | None = None,
    nan_policy: str = "error",
    source: str = "profiles",
) -> pd.DataFrame:
    """Mean feature vector per treatment, with its MoA and batches.

    Parameters
    ----------
    table : pandas.DataFrame
        A profile table with ``Metadata_Compound``, ``Metadata_Concentration`` and
        ``Metadata_MoA`` (and optionally ``Metadata_Batch``).
    features : list of str, optional
        The feature columns (default: the numeric columns not named ``Metadata_*``, logged).
    control : str, optional
        The control compound, whose rows are left out.
    nan_policy : {"error", "drop"}
        What to do with non-finite features (see :func:`cellmoa.validation.select_features`).
    source : str
        The table's name in error messages.

    Returns
    -------
    pandas.DataFrame
        One row per treatment, sorted by (compound, concentration): the keys, the MoA, the mean
        features and, where the table has a ``Metadata_Batch`` column, the frozenset of batches
        the treatment was seen in; ``attrs["features"]`` lists the features.

    Examples
    --------
    >>> t = pd.DataFrame({"Metadata_Compound": ["a", "a", "DMSO"],
    ...                   "Metadata_Concentration": ["0.3", "0.300000", 0],
    ...                   "Metadata_MoA": ["X", "X", "DMSO"], "f": [1.0, 3.0, 9.0]})
    >>> p = treatment_profiles(t, control="DMSO")
    >>> p[["Metadata_Compound", "Metadata_Concentration", "f"]].values.tolist()
    [['a', 0.3, 2.0]]
    """
    validation.require_columns(table, [COMPOUND, CONCENTRATION, MOA], source)
    table = validation.drop_controls(table, control, source)
    keys = [COMPOUND, CONCENTRATION, MOA] + ([BATCH] if BATCH in table.columns else [])
    validation.check_keys(table, keys, source)
    if table.empty:
        raise validation.TableError(
            f"{source}: no treatment rows left"
            + (f" once the {control} controls are out" if control else "")
        )
    features = validation.select_features(table, source, features, nan_policy)
    table = table.copy()
    table[CONCENTRATION] = validation.concentration_values(table[CONCENTRATION], source)
    validation.check_one_moa(table, [COMPOUND, CONCENTRATION], MOA, source)
    group = [COMPOUND, CONCENTRATION, MOA]
    out = table.groupby(group, sort=True)[features].mean().reset_index()
    if BATCH in table.columns:
        batches = table.groupby(group, sort=True)[BATCH].agg(lambda b: frozenset(map(str, b)))
        out[BATCH] = batches.to_numpy()
    out.attrs["features"] = list(features)
    return out


def embedding_table(
    metadata: pd.DataFrame,
    embeddings: np.ndarray,
    controls: bool = False,
    unannotated: bool = False,
) -> pd.DataFrame:
    """A profile table of crop embeddings, one row per crop.

    Parameters
    ----------
    metadata : pandas.DataFrame
        The cellmoa tensors' crop metadata (lower-case columns ``plate``, ``well``,
        ``compound``, ``concentration``, ``moa``, ``batch``, ``is_control``, ``annotated``).
    embeddings : numpy.ndarray
        One embedding per crop, aligned with ``metadata`` row by row.
    controls : bool
        Keep the control crops too (``Metadata_IsControl`` = 1; the column is added).
    unannotated : bool
        Keep the crops of unannotated compounds too (their ``Metadata_MoA`` is
        :data:`UNANNOTATED`).

    Returns
    -------
    pandas.DataFrame
        ``Metadata_*`` columns and the features ``f0``, ``f1``, ...; the annotated treatment
        crops, plus those ``controls`` and ``unannotated`` ask for.
    """
    if len(metadata) != len(embeddings):
        raise ValueError(
            f"{len(embeddings)} embeddings for {len(metadata)} crops: "
            "they must be aligned row by row"
        )
    is_control = (
        metadata["is_control"].to_numpy(dtype=bool)
        if "is_control" in metadata.columns
        else np.zeros(len(metadata), bool)
    )
    is_unannotated = unannotated_rows(metadata)
    keep = (np.ones(len(metadata), bool) if controls else ~is_control) & (
        unannotated | ~is_unannotated
    )
    metadata = metadata[keep].copy()
    if unannotated:
        metadata.loc[is_unannotated[keep], "moa"] = UNANNOTATED
    table = pd.DataFrame(
        {
            PLATE: metadata["plate"].to_numpy(),
            WELL: metadata["well"].to_numpy(),
            COMPOUND: metadata["compound"].to_numpy(),
            CONCENTRATION: metadata["concentration"].to_numpy(),
            MOA: metadata["moa"].to_numpy(),
            BATCH: metadata["batch"].to_numpy(),
        }
    )
    if controls:
        table[IS_CONTROL] = is_control[keep].astype(int)
    values = np.asarray(embeddings, dtype=np.float32)[keep]
    features = pd.DataFrame(values, columns=[f"f{i}" for i in range(values.shape[1])])
    return pd.concat([table, features], axis=1)


def well_profiles(table: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The mean profile of each well.

    Parameters
    ----------
    table : pandas.DataFrame
        A profile table, one row per crop (or cell, or field).
    features : list of str
        Its feature columns.

    Returns
    -------
    pandas.DataFrame
        One row per combination of the ``Metadata_*`` columns (a well, where they name one),
        sorted, with the mean of each feature.

    Examples
    --------
    >>> t = pd.DataFrame({"Metadata_Well": ["A01", "A01", "B02"], "f": [1.0, 3.0, 5.0]})
    >>> well_profiles(t, ["f"]).values.tolist()
    [['A01', 2.0], ['B02', 5.0]]
    """
    meta = metadata_columns(table.columns)
    return table.groupby(meta, sort=True, as_index=False)[features].mean()


def fold_profiles(
    metadata: pd.DataFrame,
    embeddings: np.ndarray,
    chain: list | None = None,
    control: str | None = None,
    source: str = "embeddings",
    unannotated: bool = False,
):
    """Treatment profiles of one fold model's embeddings, raw and post-processed.

    Parameters
    ----------
    metadata : pandas.DataFrame
        The tensors' crop metadata (see :func:`embedding_table`).
    embeddings : numpy.ndarray
        The fold model's crop embeddings, aligned with ``metadata``.
    chain : list, optional
        Post-processing steps (:func:`cellmoa.profiles.chains.parse_chain`): the well
        profiles, controls included, go through them before they are averaged.
    control : str, optional
        The control compound, left out of the post-processed treatment profiles.
    source : str
        The embeddings' name in messages.
    unannotated : bool
        Profile the unannotated treatments too (MoA :data:`UNANNOTATED`; they take no part in
        fitting the chain, which is fit on the controls).

    Returns
    -------
    variants : list of (str, pandas.DataFrame)
        ``[("raw", profiles)]`` and, with a ``chain``, ``("postprocessed", profiles)``.
    notes : pandas.DataFrame
        What each post-processing step did (columns ``step``, ``what``).
    """
    raw = embedding_table(metadata, embeddings, unannotated=unannotated)
    variants = [("raw", treatment_profiles(raw, source=source))]
    notes = pd.DataFrame(columns=["step", "what"])
    if chain:
        wells = embedding_table(metadata, embeddings, controls=True, unannotated=unannotated)
        features = [c for c in wells.columns if not is_metadata(c)]
        wells, features, notes = postprocess(
            well_profiles(wells, features), features, chain, source
        )
        variants.append(
            (
                "postprocessed",
                treatment_profiles(wells, features=features, control=control, source=source),
            )
        )
    return variants, notes


def unit_rows(x: np.ndarray) -> np.ndarray:
    """The rows of ``x`` scaled to unit length (the geometry of cosine similarity).

    Parameters
    ----------
    x : numpy.ndarray
        A (rows, features) array.

    Returns
    -------
    numpy.ndarray
        ``x`` with every row divided by its length; rows of zeros are left as they are.

    Examples
    --------
    >>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def concatenate_profiles(profiles_by_network: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ensemble's treatment profiles: the networks' unit-length profiles side by side.

    Each network's profiles are scaled to unit length and put side by side, so that the
    ensemble's cosine similarity of two treatments is the mean of the networks' (every network
    weighs the same, whatever its embedding's size or scale).

    Parameters
    ----------
    profiles_by_network : dict of str to pandas.DataFrame
        Each network's treatment profiles (:func:`treatment_profiles`), of the same treatments.

    Returns
    -------
    pandas.DataFrame
        The keys, the MoA (and the first network's batches) and the features
        ``<network>_<feature>``, named in ``attrs["features"]``.

    Raises
    ------
    cellmoa.validation.TableError
        When the networks' treatments differ.

    Examples
    --------
    >>> a = pd.DataFrame({"Metadata_Compound": ["x", "y"], "Metadata_Concentration": [1.0, 1.0],
    ...                   "Metadata_MoA": ["A", "B"], "f0": [3.0, 0.0], "f1": [4.0, 2.0]})
    >>> a.attrs["features"] = ["f0", "f1"]
    >>> both = concatenate_profiles({"n1": a, "n2": a})
    >>> both.attrs["features"], float(both.loc[0, "n1_f0"])
    (['n1_f0', 'n1_f1', 'n2_f0', 'n2_f1'], 0.6)
    """
    keys = [COMPOUND, CONCENTRATION, MOA]
    out = None
    names: list[str] = []
    for network, profiles in profiles_by_network.items():
        features = validation.feature_columns(profiles)
        block = pd.DataFrame(
            unit_rows(profiles[features].to_numpy(np.float64)),
            columns=[f"{network}_{c}" for c in features],
        )
        meta = profiles[keys + ([BATCH] if BATCH in profiles.columns else [])]
        part = pd.concat([meta.reset_index(drop=True), block], axis=1)
        if out is None:
            out = part
        else:
            n = len(out)
            out = out.merge(
                part.drop(columns=[BATCH], errors="ignore"),
                on=keys,
                how="inner",
                validate="one_to_one",
            )
            if len(out) != n or len(out) != len(part):
                raise validation.TableError(
                    f"ensemble: {network}'s treatments differ from the other networks'"
                )
        names += list(block.columns)
    out.attrs["features"] = names
    return out
