"""What the tensors job makes of a plate's fields: the ``preprocessing:`` config section.

:class:`TensorSettings` gathers the crop geometry, the normalisation, the empty-crop filter, what
a bad image does and how many control fields a plate stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cellmoa.preprocess.crops import CellCrops, CropGeometry, EmptyCropFilter
from cellmoa.preprocess.images import BadImages
from cellmoa.preprocess.normalization import Normalization

#: what a missing, corrupt or wrongly sized image does (``on_bad_image``)
ON_BAD_IMAGE = ("error", "skip")


@dataclass(frozen=True)
class TensorSettings:
    """What the tensors job makes of a plate's fields (``preprocessing`` config section)."""

    crops: CropGeometry = field(default_factory=CropGeometry)
    normalization: Normalization = field(default_factory=Normalization)
    empty_crops: EmptyCropFilter = field(default_factory=EmptyCropFilter)
    #: "error": a missing, corrupt or wrongly sized image stops the job; "skip": the field is
    #: left out, logged, and listed in the plate's report
    on_bad_image: str = "error"
    #: control fields per plate stored beside the treatments (``is_control`` = 1 in
    #: ``/metadata``), for control-based normalisation of profiles; never trained on or scored
    control_fields: int = 0
    #: single-cell crops (``crops.mode: cells``) instead of the grid of :attr:`crops`; None: fields
    cells: CellCrops | None = None

    def __post_init__(self):
        if self.on_bad_image not in ON_BAD_IMAGE:
            raise ValueError(f"on_bad_image must be 'error' or 'skip', not {self.on_bad_image!r}")
        if int(self.control_fields) < 0:
            raise ValueError(
                f"control_fields_per_plate must be 0 or more, not {self.control_fields}"
            )

    @classmethod
    def from_config(cls, preprocessing: dict, dataset) -> TensorSettings:
        """From the ``preprocessing:`` config section; crop geometry defaults from ``dataset``."""
        crops = preprocessing.get("crops") or {}
        norm = dict(preprocessing.get("normalization") or {})
        unknown = sorted(
            set(norm)
            - {
                "anscombe",
                "stored_dtype",
                "on_bad_image",
                "empty_crop_min_fraction",
                "empty_crop_channel",
                "empty_crop_z",
            }
        )
        if unknown:
            raise ValueError(
                f"preprocessing.normalization: unknown setting(s) {', '.join(unknown)}"
            )
        resize = crops.get("resize", dataset.field_size)
        return cls(
            crops=CropGeometry(
                crops.get("rows", dataset.crop_grid[0]),
                crops.get("cols", dataset.crop_grid[1]),
                tuple(resize) if resize is not None else None,
            ),
            normalization=Normalization(
                norm.get("anscombe", False), norm.get("stored_dtype", "float16")
            ),
            empty_crops=EmptyCropFilter(
                norm.get("empty_crop_min_fraction", 0.0),
                norm.get("empty_crop_channel", "DAPI"),
                norm.get("empty_crop_z", 2.0),
            ),
            on_bad_image=norm.get("on_bad_image", "error"),
            control_fields=int(preprocessing.get("control_fields_per_plate", 8)),
            cells=CellCrops(int(crops.get("cell_size", 96)), int(crops.get("max_cells", 0)))
            if crops.get("mode", "fields") == "cells"
            else None,
        )

    def bad_images(self) -> BadImages:
        """An empty record of bad images that raises or skips as ``on_bad_image`` says."""
        return BadImages(skip=self.on_bad_image == "skip")
