"""The fields of a plate, as the per-plate rules after the illumination read them.

Shared by the scripts of tensors, segment and features; imported after rule_setup.start().
"""

from pathlib import Path

from cellmoa.data.resolve import resolve_dataset
from cellmoa.preprocess.plates import plate_fields


def stored_fields(snakemake):
    """The dataset and the plate's stored fields (cellmoa.preprocess.plates.plate_fields).

    The same fields for the per-plate rules after the illumination: tensors, segment, features.
    The rule gives ``input.metadata``, ``input.images`` (the plate's folder) and the params
    ``restrictions``, ``control_fields`` and ``unannotated``.
    """
    p = snakemake.params
    dataset = resolve_dataset(snakemake.config)
    metadata = dataset.read_metadata(Path(snakemake.input.metadata[0]).parent)
    plate = plate_fields(
        dataset,
        metadata,
        snakemake.wildcards.plate,
        Path(snakemake.input.images).parent,
        p.restrictions,
        int(p.control_fields),
        unannotated=p.unannotated,
    )
    return dataset, plate
