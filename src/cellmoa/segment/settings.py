"""The segmentation's parameters, all lengths in units of the expected nucleus diameter.

One number, :attr:`SegmentationSettings.nucleus_diameter` (pixels), sets the scale; every other
length or area is a fraction or a multiple of it, so that the same defaults work on the demo's
fields (nuclei ~8-14 px across), BBBC021's (~20-30 px) and BBBC014's (~20-40 px). The defaults
were set by measurement: the F1 on synthetic fields against their ground truth and the counts on
real BBBC014 fields (``docs/methods.md``, "Segmentation (preview)").
"""

from __future__ import annotations

from dataclasses import dataclass

#: how the foreground of the nuclear stain is found (``threshold``)
THRESHOLDS = ("otsu", "local")
#: how touching nuclei are split (``declump``)
DECLUMPS = ("shape", "intensity")


@dataclass(frozen=True)
class SegmentationSettings:
    """Parameters of the nuclei and cell segmentation.

    Examples
    --------
    >>> s = SegmentationSettings(nucleus_diameter=20)
    >>> s.pixels(s.smoothing), round(s.expected_area), round(s.min_area_px)
    (2.0, 314, 63)
    """

    #: expected diameter of a nucleus in pixels: the scale of every other parameter
    nucleus_diameter: float = 14.0
    #: Gaussian smoothing of the nuclear stain before thresholding (sigma, in diameters)
    smoothing: float = 0.1
    #: "otsu": one Otsu threshold on the log intensities of the field (illumination fall-off is
    #: a factor, an offset in logs); "local": a local mean threshold (``local_block``) as well,
    #: for fields whose background varies more than a factor
    threshold: str = "otsu"
    #: block of the local threshold (in diameters, made odd in pixels)
    local_block: float = 5.0
    #: where a nucleus's edge lies, as a fraction of the way from the local background up to
    #: the nucleus's own brightness (0.5: half maximum; 0 keeps the threshold's edge)
    edge: float = 0.5
    #: smallest nucleus kept (fraction of the expected area, a disc of ``nucleus_diameter``)
    min_area: float = 0.2
    #: smallest distance between two nucleus seeds of the watershed (in diameters): touching
    #: nuclei whose centres are closer stay one object
    seed_distance: float = 0.3
    #: how touching nuclei are split: "shape" (watershed of the distance transform: necks between
    #: round nuclei) or "intensity" (watershed of the smoothed stain: clumps without necks whose
    #: nuclei are dimmer at their borders)
    declump: str = "intensity"
    #: smoothing of the stain whose maxima seed the "intensity" watershed (sigma, in diameters)
    declump_smoothing: float = 0.15
    #: Gaussian smoothing of the cytoplasm stain before its threshold (sigma, in diameters)
    cell_smoothing: float = 0.1
    #: how far a cell reaches from its nucleus at most (in diameters)
    cell_reach: float = 1.0
    #: how much the cytoplasm stain's darkness moves the border between two cells from half-way
    #: between their nuclei (0: by distance alone)
    cell_intensity_weight: float = 0.0
    #: a field is flagged when its median nucleus area is outside this range (multiples of the
    #: expected area)
    qc_area_range: tuple = (0.4, 4.0)

    def __post_init__(self):
        if not self.nucleus_diameter > 0:
            raise ValueError(f"nucleus_diameter must be positive, not {self.nucleus_diameter}")
        if self.threshold not in THRESHOLDS:
            raise ValueError(f"threshold must be one of {THRESHOLDS}, not {self.threshold!r}")
        if self.declump not in DECLUMPS:
            raise ValueError(f"declump must be one of {DECLUMPS}, not {self.declump!r}")

    def pixels(self, diameters: float) -> float:
        """A length given in nucleus diameters, in pixels."""
        return float(diameters) * float(self.nucleus_diameter)

    @property
    def expected_area(self) -> float:
        """Area of a disc of the expected diameter (pixels)."""
        return 3.141592653589793 * (self.nucleus_diameter / 2.0) ** 2

    @property
    def min_area_px(self) -> float:
        """The smallest nucleus kept (pixels)."""
        return self.min_area * self.expected_area
