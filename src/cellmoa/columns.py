"""The column vocabulary: the one place the ``Metadata_*`` names are spelled.

Tables a user takes elsewhere follow pycytominer's convention: metadata columns are named
``Metadata_<Name>``, every other numeric column is a feature. The HDF5 tensors keep their own
lower-case metadata names (``compound``, ``moa``; see :mod:`cellmoa.preprocess.tensors`);
:func:`metadata_name` maps one to the other.

Examples
--------
>>> metadata_name("cell_line"), metadata_name("moa")
('Metadata_CellLine', 'Metadata_MoA')
>>> is_metadata("Metadata_Plate"), is_metadata("f0")
(True, False)
"""

from __future__ import annotations

#: the prefix of every metadata column
PREFIX = "Metadata_"

PLATE = "Metadata_Plate"
WELL = "Metadata_Well"
SITE = "Metadata_Site"
CROP = "Metadata_Crop"
BATCH = "Metadata_Batch"
CELL_LINE = "Metadata_CellLine"
COMPOUND = "Metadata_Compound"
CONCENTRATION = "Metadata_Concentration"
MOA = "Metadata_MoA"
REPLICATE = "Metadata_Replicate"
IS_CONTROL = "Metadata_IsControl"
#: how many crops a profile averages (cellmoa's exported well and treatment profiles)
CROPS = "Metadata_Crops"
#: the held-out value of the fold a row was predicted in
FOLD = "Metadata_Fold"
NETWORK = "Metadata_Network"
DATASET = "Metadata_Dataset"
FOLD_SCHEME = "Metadata_FoldScheme"
#: ``nsc`` or ``nscb`` in matching tables
MATCH_SCHEME = "Metadata_MatchScheme"
#: ``raw`` or ``postprocessed`` in matching tables
PROFILES = "Metadata_Profiles"

#: the keys of a treatment (the cell line only where the table has one)
TREATMENT = [CELL_LINE, COMPOUND, CONCENTRATION]
#: the keys of a field of view
FIELD = [PLATE, WELL, SITE]
#: the keys of a well
WELL_KEYS = [PLATE, WELL]
#: the keys of a crop in a prediction table
CROP_KEYS = [FOLD, PLATE, WELL, SITE, CROP]

#: the prefix of a class-probability column (``prob_<moa>``)
PROB_PREFIX = "prob_"

#: The tensors' metadata column each fold scheme holds out (one fold per value of it).
FOLD_COLUMNS = {
    "nsc": "compound",  # leave one compound out (Kensert et al. 2019, BBBC021)
    "nscb": "compound",  # ... and that compound's batches too
    "cell_line": "cell_line",  # train on the other cell line(s), test on this one (BBBC014)
}


def is_metadata(column) -> bool:
    """Whether ``column`` is a metadata column (named ``Metadata_*``).

    Parameters
    ----------
    column : object
        A column label; non-strings are never metadata.

    Returns
    -------
    bool
    """
    return str(column).startswith(PREFIX)


def metadata_columns(columns) -> list:
    """The metadata columns among ``columns``, in their order.

    Parameters
    ----------
    columns : iterable
        Column labels (a DataFrame's ``columns``).

    Returns
    -------
    list
        The labels named ``Metadata_*``.

    Examples
    --------
    >>> metadata_columns(["Metadata_Well", "f0", "Metadata_Plate"])
    ['Metadata_Well', 'Metadata_Plate']
    """
    return [c for c in columns if is_metadata(c)]


def metadata_name(key: str) -> str:
    """The ``Metadata_*`` name of a tensors metadata key (``cell_line`` -> ``Metadata_CellLine``).

    Parameters
    ----------
    key : str
        A lower-case metadata key of the HDF5 tensors.

    Returns
    -------
    str
    """
    if key == "moa":
        return MOA
    return PREFIX + key.title().replace("_", "")


#: the keys of a treatment in tables without a cell line (a compound at one concentration)
COMPOUND_DOSE = [COMPOUND, CONCENTRATION]
#: nscb's set-valued batches as a list column, for copairs' multilabel pairing (never written)
BATCH_LIST = "Metadata_BatchList"

#: the ``Metadata_Network`` of the networks' ensemble (their concatenated profiles, their
#: averaged probabilities)
ENSEMBLE = "Ensemble"
