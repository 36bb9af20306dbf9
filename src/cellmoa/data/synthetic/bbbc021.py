"""A synthetic dataset in BBBC021's exact layout, with real MoA-dependent signal.

What it writes (into one folder, like the BBBC021 download location):

- ``BBBC021_v1_images_<plate>.zip`` per plate, members ``<plate>/<file>``, 16-bit TIFFs named
  ``[WeekN_<date>_]<Well>_s<site>_w<1|2|4><UUID>.tif`` (DAPI, Tubulin, Actin); values are
  multiples of 16 (12-bit data in 16-bit containers), as MetaMorph wrote BBBC021;
- ``BBBC021_v1_image.csv``, ``BBBC021_v1_moa.csv``, ``BBBC021_v1_compound.csv`` with
  BBBC021's columns and number formats;
- ``illumination_truth.npz``: the multiplicative illumination field of every plate and channel
  (key ``<plate>/<channel>``, maximum 1), the ground truth for tests;
- ``synthetic_spec.json``: the parameters it was made with.

Cells are rendered in the three stains. Their morphology depends on the MoA (nuclear size, shape,
brightness and count; tubulin amount and texture; actin rings and puncta), varies from compound
to compound inside an MoA, and grows with the dose. Every plate has DMSO control wells; every
plate and channel has a smooth illumination fall-off (up to ~2.5x from centre to corner); weeks
and plates get intensity offsets; camera noise is added. Everything is deterministic for a seed.

Batch effects (``batch_effects``, :class:`BatchEffects`; all off by default, on in the demo) make
the weeks differ the way real batches do: per-week and per-plate gains and background offsets per
channel, a stain that fades from week to week and along each plate's acquisition order, a
defocus blur, a cell density and autofluorescent debris that differ between weeks. Gains, offsets and the week-to-week
fading are affine per plate and channel, so the per-plate z-score of the DMSO fields
(:mod:`cellmoa.preprocess.normalization`) removes most of them; the within-plate drift, the blur, the
density and the debris survive it, as on real screens.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import tifffile

from cellmoa.data.datasets.bbbc021 import (
    BBBC021,
    CHANNEL_TOKENS,
    CHANNELS,
    COMPOUND_CSV,
    IMAGE_COLUMNS,
    IMAGE_CSV,
    MOA_CSV,
)
from cellmoa.data.synthetic.rendering import (
    PlateWriter,
    camera,
    cell_window,
    from_settings,
    illumination_field,
    nucleus_mask,
    smooth_noise,
    soft_inside,
    stable_seed,
)
from cellmoa.data.wells import well_names
from cellmoa.files import atomic_path, write_text

#: Phenotype parameters relative to DMSO (1.0 = unchanged).
#: nucleus_size, nucleus_intensity, elongation, density, cytoplasm_size,
#: tubulin_intensity, tubulin_texture, actin_intensity, actin_ring, actin_puncta
PARAMS = (
    "nucleus_size",
    "nucleus_intensity",
    "elongation",
    "density",
    "cytoplasm_size",
    "tubulin_intensity",
    "tubulin_texture",
    "actin_intensity",
    "actin_ring",
    "actin_puncta",
)
DMSO_PHENOTYPE = dict.fromkeys(PARAMS, 1.0)

#: Archetypes for BBBC021's 12 MoAs (what the real phenotypes look like, exaggerated).
ARCHETYPES = {
    "Actin disruptors": dict(
        actin_ring=0.2, actin_puncta=4.0, actin_intensity=1.3, cytoplasm_size=0.8
    ),
    "Aurora kinase inhibitors": dict(
        nucleus_size=1.7, nucleus_intensity=1.4, density=0.6, elongation=1.3
    ),
    "Cholesterol-lowering": dict(cytoplasm_size=0.75, actin_ring=1.8, tubulin_intensity=0.8),
    "DNA damage": dict(
        nucleus_size=1.6, nucleus_intensity=0.6, density=0.7, cytoplasm_size=1.15, elongation=1.25
    ),
    "DNA replication": dict(nucleus_size=1.3, density=0.75, tubulin_texture=0.5),
    "Eg5 inhibitors": dict(
        nucleus_size=0.7, nucleus_intensity=2.0, elongation=0.6, tubulin_intensity=1.8
    ),
    "Epithelial": dict(density=1.5, cytoplasm_size=0.8, actin_ring=2.2, elongation=1.4),
    "Kinase inhibitors": dict(cytoplasm_size=1.35, actin_intensity=0.6, tubulin_texture=1.8),
    "Microtubule destabilizers": dict(
        nucleus_size=0.75, nucleus_intensity=1.8, tubulin_texture=0.1, tubulin_intensity=0.5
    ),
    "Microtubule stabilizers": dict(tubulin_intensity=2.2, tubulin_texture=3.0, elongation=0.7),
    "Protein degradation": dict(nucleus_size=0.85, actin_puncta=2.5, tubulin_intensity=1.4),
    "Protein synthesis": dict(
        density=0.5, cytoplasm_size=0.7, nucleus_intensity=0.8, actin_intensity=0.6
    ),
}

BACKGROUND = {"DAPI": 320.0, "Tubulin": 1100.0, "Actin": 1400.0}
AMPLITUDE = {"DAPI": 9000.0, "Tubulin": 3500.0, "Actin": 4500.0}
WELL_ROWS = "BCDEFG"
WELL_COLUMNS = range(2, 12)
#: a 384-well layout for plates with more treatments than BBBC021's 60 inner wells of a 96-well plate
WELLS_384 = well_names("384")


@dataclass(frozen=True)
class BatchEffects:
    """Effect sizes of the batch effects. Each week's values are spread evenly over the range
    (``-x..x`` or ``0..x``) in an order drawn from the seed, so that two weeks always differ by the
    whole range; a plate adds a third of the week's spread at random. 0 turns an effect off.

    >>> effects = BatchEffects(blur=2.0, density=0.2)
    >>> [round(effects.week(0, w, 2)["blur"], 2) for w in (1, 2)], effects.week(0, 1, 2)["density"] in (0.8, 1.2)
    ([0.0, 2.0], True)
    """

    #: each week's gain per channel: log-gain spread over -x..x (0.2: gains 0.82..1.22)
    channel_gain: float = 0.0
    #: each week's background offset per channel, spread over -x..x, as a fraction of the background
    channel_offset: float = 0.0
    #: fraction of the stains' signal (not the background) lost per week, stain by stain 0.5-1.5x of it
    stain_fade: float = 0.0
    #: fraction of the stains' signal lost from the first well of a plate to the last (acquisition order)
    plate_drift: float = 0.0
    #: defocus: a Gaussian blur of the signal, sigma (pixels) spread over weeks in 0..x
    blur: float = 0.0
    #: cells per field: each week's density factor spread over 1-x..1+x
    density: float = 0.0
    #: autofluorescent debris (precipitate, dust of a plate lot): out-of-focus specks per field,
    #: each week's count spread over 0..x, brightest in DAPI
    debris: float = 0.0

    @classmethod
    def from_dict(cls, values: dict | None) -> "BatchEffects":
        return from_settings(cls, values, "batch effect")

    def week(self, seed: int, week: int, weeks: int) -> dict:
        """The effects of one week (1-based): ``gain``/``offset``/``stain`` per channel, ``blur``
        (sigma in pixels), ``density`` (factor)."""

        def spread(name: str, centred: bool) -> float:
            order = np.random.default_rng(stable_seed(seed, "batch-order", name)).permutation(weeks)
            t = float(order[week - 1]) / (weeks - 1) if weeks > 1 else 0.0
            return 2.0 * t - 1.0 if centred else t

        out = {"gain": {}, "offset": {}, "stain": {}}
        for i, channel in enumerate(CHANNELS):
            out["gain"][channel] = float(
                np.exp(self.channel_gain * spread(f"gain-{channel}", True))
            )
            out["offset"][channel] = self.channel_offset * spread(f"offset-{channel}", True)
            rate = self.stain_fade * (0.5 + 0.5 * i)
            out["stain"][channel] = float((1.0 - min(rate, 0.95)) ** (week - 1))
        out["blur"] = self.blur * spread("blur", False)
        out["density"] = 1.0 + self.density * spread("density", True)
        out["debris"] = self.debris * spread("debris", False)
        return out

    def plate(self, rng: np.random.Generator, effects: dict) -> dict:
        """A plate's own share: a third of the week's gain and offset spread, drawn from ``rng``."""
        out = {k: dict(v) if isinstance(v, dict) else v for k, v in effects.items()}
        for channel in CHANNELS:
            out["gain"][channel] *= float(np.exp(self.channel_gain / 3.0 * rng.uniform(-1, 1)))
            out["offset"][channel] += self.channel_offset / 3.0 * float(rng.uniform(-1, 1))
        return out


@dataclass
class SyntheticSpec:
    """What to synthesize. Every field can be set from the ``synthetic:`` config section."""

    seed: int = 0
    #: MoA -> compounds of that MoA (at least two per MoA for leave-one-compound-out)
    moas: dict = field(
        default_factory=lambda: {
            "Microtubule destabilizers": ["nocodazole", "vincristine"],
            "Actin disruptors": ["cytochalasin B", "latrunculin B"],
            "DNA damage": ["etoposide", "mitomycin C"],
        }
    )
    #: concentrations (uM) given to every compound; the effect grows with the dose
    concentrations: list = field(default_factory=lambda: [0.3, 3.0])
    #: compounds imaged but without an MoA label (as in the real data): a list (each compound an
    #: MoA of its own, unlike any annotated one), or compound -> its hidden MoA (one of ``moas``:
    #: a known MoA the pipeline should recognise; any other of :data:`ARCHETYPES` or name: a novel one)
    unlabelled_compounds: list | dict = field(default_factory=lambda: ["AZ-U1"])
    weeks: int = 2
    #: plates per week; plate k of a week holds replicate k
    plates_per_week: int = 3
    dmso_wells_per_plate: int = 2
    sites_per_well: int = 1
    image_height: int = 256
    image_width: int = 320
    #: nucleus radius of a DMSO cell in pixels (real BBBC021: ~10-15 at 1024 x 1280)
    nucleus_radius: float = 4.0
    #: DMSO cells per field (real BBBC021: 100-200)
    cells_per_field: int = 60
    #: how strongly a compound deviates from its MoA's archetype (fraction)
    compound_variation: float = 0.04
    #: brightness ratio centre / corner of the illumination fall-off
    illumination_falloff: float = 2.5
    #: batch effects between weeks and plates (:class:`BatchEffects`; a dict in the config)
    batch_effects: BatchEffects = field(default_factory=BatchEffects)

    def __post_init__(self):
        if not isinstance(self.batch_effects, BatchEffects):
            self.batch_effects = BatchEffects.from_dict(self.batch_effects)

    @classmethod
    def from_dict(cls, values: dict | None) -> "SyntheticSpec":
        return from_settings(cls, values, "synthetic dataset parameter")

    def hidden_moas(self) -> dict[str, str]:
        """Each unlabelled compound's true (unpublished) MoA: the given one, or ``_unlabelled_<i>``
        (an MoA of its own) for a compound given in a list."""
        if isinstance(self.unlabelled_compounds, dict):
            return {str(c): str(m) for c, m in self.unlabelled_compounds.items()}
        return {c: f"_unlabelled_{i}" for i, c in enumerate(self.unlabelled_compounds)}

    def write(self, out_dir: Path, archives: bool = True) -> Path:
        return synthesize(self, out_dir, archives)

    @property
    def compounds(self) -> list[str]:
        return [c for cs in self.moas.values() for c in cs]

    def plates(self) -> list[str]:
        """Plate names like BBBC021's (``Week<k>_<5 digits>``), deterministic for the seed."""
        rng = np.random.default_rng([self.seed, 1])
        names = []
        for week in range(1, self.weeks + 1):
            base = 20000 + 2000 * week + int(rng.integers(0, 900))
            for k in range(self.plates_per_week):
                names.append(f"Week{week}_{base + 20 * k + int(rng.integers(0, 10))}")
        return names


def archetype(moa: str) -> dict:
    """Phenotype of an MoA: a known archetype, or a deterministic one derived from its name."""
    if moa in ARCHETYPES:
        pheno = dict(DMSO_PHENOTYPE)
        pheno.update(ARCHETYPES[moa])
        return pheno
    rng = np.random.default_rng(stable_seed("moa", moa))
    factors = np.exp(rng.normal(0.0, 0.45, len(PARAMS)))
    return dict(zip(PARAMS, factors.tolist()))


def compound_phenotype(spec: SyntheticSpec, moa: str, compound: str) -> dict:
    """The MoA archetype with a compound-specific deviation."""
    base = archetype(moa)
    rng = np.random.default_rng(stable_seed(spec.seed, "compound", compound))
    jitter = np.exp(rng.normal(0.0, spec.compound_variation, len(PARAMS)))
    return {k: base[k] * j for k, j in zip(PARAMS, jitter)}


def dose_strength(concentration: float, concentrations: list[float]) -> float:
    """Effect strength in [0.75, 1]: 0.75 at the lowest dose, 1 at the highest (log-linear)."""
    lo, hi = np.log10(min(concentrations)), np.log10(max(concentrations))
    if hi == lo:
        return 1.0
    return float(0.75 + 0.25 * (np.log10(concentration) - lo) / (hi - lo))


def apply_dose(pheno: dict, strength: float) -> dict:
    """Interpolate (in log space) between DMSO and the full phenotype."""
    return {k: float(np.exp(strength * np.log(v))) for k, v in pheno.items()}


def render_field(
    rng: np.random.Generator, spec: SyntheticSpec, pheno: dict, density: float = 1.0
) -> dict[str, np.ndarray]:
    """Signal (before illumination, background and noise) of one field, per channel, in [0, ~1];
    ``density`` multiplies the phenotype's cells per field (a batch effect)."""
    h, w = spec.image_height, spec.image_width
    layers = {c: np.zeros((h, w), np.float64) for c in CHANNELS}
    cyto_mask = np.zeros((h, w), np.float64)
    ring = np.zeros((h, w), np.float64)
    n_cells = rng.poisson(spec.cells_per_field * pheno["density"] * density)
    r_nuc0 = spec.nucleus_radius * pheno["nucleus_size"]
    for _ in range(n_cells):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = r_nuc0 * float(np.exp(rng.normal(0, 0.12)))
        elong = pheno["elongation"] * float(np.exp(rng.normal(0, 0.1)))
        big_r = (
            2.2 * spec.nucleus_radius * pheno["cytoplasm_size"] * float(np.exp(rng.normal(0, 0.1)))
        )
        extent = int(np.ceil(max(r * np.sqrt(elong), r / np.sqrt(elong), big_r) * 1.4)) + 2
        cell = cell_window(rng, (h, w), cy, cx, extent)
        if cell is None:
            continue
        at = (cell.rows, cell.cols)
        d_cell = np.sqrt(cell.dx**2 + cell.dy**2) / big_r
        nucleus = nucleus_mask(cell, r, elong)
        body = soft_inside(d_cell, 6.0)
        layers["DAPI"][at] += pheno["nucleus_intensity"] * nucleus * rng.uniform(0.8, 1.2)
        cyto_mask[at] += body * (1.0 - 0.7 * nucleus)
        ring[at] += np.exp(-((d_cell - 0.95) ** 2) / (2 * 0.12**2))
        n_puncta = (
            rng.poisson(3.0 * (pheno["actin_puncta"] - 1.0)) if pheno["actin_puncta"] > 1 else 0
        )
        for _ in range(n_puncta):
            py = cy + rng.normal(0, big_r * 0.5)
            px = cx + rng.normal(0, big_r * 0.5)
            layers["Actin"][at] += 1.5 * np.exp(
                -((cell.yy - py) ** 2 + (cell.xx - px) ** 2) / (2 * 1.2**2)
            )
    texture = smooth_noise(rng, h, w, 1.0)
    tub_tex = np.clip(1.0 + 0.35 * pheno["tubulin_texture"] * texture, 0.0, None)
    layers["Tubulin"] += 0.45 * pheno["tubulin_intensity"] * np.clip(cyto_mask, 0, 1.5) * tub_tex
    layers["Actin"] += pheno["actin_intensity"] * (
        0.25 * np.clip(cyto_mask, 0, 1.5) + 0.35 * pheno["actin_ring"] * np.clip(ring, 0, 1.5)
    )
    return layers


def to_camera(
    rng,
    signal: np.ndarray,
    channel: str,
    illum: np.ndarray,
    gain: float,
    offset: float = 0.0,
    stain: float = 1.0,
) -> np.ndarray:
    """Illumination, background (``offset``: its relative change), stain strength, noise, 12-bit
    quantisation in a 16-bit container."""
    photons = (
        (BACKGROUND[channel] * (1.0 + offset) + AMPLITUDE[channel] * stain * signal) * gain * illum
    )
    counts12 = np.clip(np.rint(camera(rng, photons, 16.0, 40.0) / 16.0), 0, 4095)
    return (counts12 * 16).astype(np.uint16)


#: how bright debris is in each stain's channel, relative to DAPI
DEBRIS_WEIGHTS = {"DAPI": 1.0, "Tubulin": 0.6, "Actin": 0.4}


def add_debris(rng: np.random.Generator, layers: dict[str, np.ndarray], mean_count: float) -> None:
    """Out-of-focus autofluorescent specks added to a field's signal layers, in place: a Poisson
    number of Gaussian blobs (sigma 1.5-4 px, amplitude 0.3-0.9), in every channel (DAPI brightest)."""
    h, w = next(iter(layers.values())).shape
    for _ in range(rng.poisson(mean_count)):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        sigma, amplitude = rng.uniform(1.5, 4.0), rng.uniform(0.3, 0.9)
        r = int(np.ceil(4 * sigma))
        rows, cols = (
            slice(max(int(cy) - r, 0), min(int(cy) + r + 1, h)),
            slice(max(int(cx) - r, 0), min(int(cx) + r + 1, w)),
        )
        yy, xx = np.ogrid[rows, cols]  # the blob's window only
        blob = amplitude * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        for channel, weight in DEBRIS_WEIGHTS.items():
            layers[channel][rows, cols] += weight * blob


def batch_effects(spec: SyntheticSpec, week: int, plate: str) -> dict:
    """The batch effects of one plate (see :class:`BatchEffects`); neutral values when off."""
    effects = spec.batch_effects.week(spec.seed, week, spec.weeks)
    rng = np.random.default_rng(stable_seed(spec.seed, "plate-effects", plate))
    return spec.batch_effects.plate(rng, effects)


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4)).upper()


def _format_concentration(value: float) -> str:
    """image.csv writes the shortest form (0.003), moa.csv six decimals (0.300000)."""
    return repr(float(value)).rstrip("0").rstrip(".") if value != 0 else "0.0"


def _file_prefix(plate: str, week: int, rng) -> str:
    """BBBC021 names carry a ``WeekN_<date>_`` prefix except in Week4."""
    if week == 4:
        return ""
    return f"Week{week}_{int(rng.integers(100000, 999999))}_"


def plan(spec: SyntheticSpec) -> list[dict]:
    """One record per field of view: plate, week, replicate, well, site, compound, concentration."""
    if any(len(cs) < 1 for cs in spec.moas.values()):
        raise ValueError("every MoA needs at least one compound")
    plates = spec.plates()
    compounds = spec.compounds + list(spec.unlabelled_compounds)
    # Compounds are spread over the weeks round-robin (each compound lives in one week, as in
    # BBBC021), so that every week holds compounds of most MoAs.
    week_of = {
        c: (i % spec.weeks) + 1
        for i, c in enumerate(_interleave(spec) + list(spec.unlabelled_compounds))
    }
    rows = []
    for p_index, plate in enumerate(plates):
        week = p_index // spec.plates_per_week + 1
        replicate = p_index % spec.plates_per_week + 1
        treatments = [("DMSO", 0.0)] * spec.dmso_wells_per_plate
        treatments += [
            (c, conc) for c in compounds if week_of[c] == week for conc in spec.concentrations
        ]
        wells = [f"{r}{c:02d}" for r in WELL_ROWS for c in WELL_COLUMNS]
        if len(treatments) > len(wells):
            wells = WELLS_384
        if len(treatments) > len(wells):
            raise ValueError(
                f"plate {plate} needs {len(treatments)} wells; a plate has {len(wells)}"
            )
        for (compound, conc), well in zip(treatments, wells):
            for site in range(1, spec.sites_per_well + 1):
                rows.append(
                    dict(
                        plate=plate,
                        week=week,
                        replicate=replicate,
                        well=well,
                        site=site,
                        compound=compound,
                        concentration=conc,
                    )
                )
    return rows


def _interleave(spec: SyntheticSpec) -> list[str]:
    """Compounds ordered so that round-robin over weeks spreads each MoA's compounds."""
    lists = list(spec.moas.values())
    out = []
    for i in range(max(len(cs) for cs in lists)):
        out += [cs[i] for cs in lists if i < len(cs)]
    return out


def synthesize(spec: SyntheticSpec, out_dir: Path, archives: bool = True) -> Path:
    """Write the dataset into ``out_dir`` (zips + CSVs, or plate folders when ``archives`` is False)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    moa_of = {c: m for m, cs in spec.moas.items() for c in cs}
    moa_of["DMSO"] = "DMSO"
    unlabelled_moa = spec.hidden_moas()
    rows = plan(spec)
    dataset = BBBC021()
    truth: dict[str, np.ndarray] = {}
    image_rows = []
    by_plate: dict[str, list[dict]] = {}
    for row in rows:
        by_plate.setdefault(row["plate"], []).append(row)
    image_number = 0
    for plate, plate_rows in by_plate.items():
        week = plate_rows[0]["week"]
        rng = np.random.default_rng(stable_seed(spec.seed, "plate", plate))
        week_gain = float(
            np.random.default_rng(stable_seed(spec.seed, "week", week)).uniform(0.75, 1.25)
        )
        plate_gain = week_gain * float(rng.uniform(0.93, 1.07))
        fields = {}
        for channel in CHANNELS:
            fields[channel] = illumination_field(
                rng, spec.image_height, spec.image_width, spec.illumination_falloff
            )
            truth[f"{plate}/{channel}"] = fields[channel]
        prefix = _file_prefix(plate, week, rng)
        effects = batch_effects(spec, week, plate)
        writer = PlateWriter(out_dir, dataset.archive_name(plate) if archives else None)
        for index, row in enumerate(plate_rows):
            compound, conc = row["compound"], row["concentration"]
            if compound == "DMSO":
                pheno = dict(DMSO_PHENOTYPE)
            else:
                moa = moa_of.get(compound, unlabelled_moa.get(compound))
                pheno = apply_dose(
                    compound_phenotype(spec, moa, compound),
                    dose_strength(conc, spec.concentrations),
                )
            layers = render_field(rng, spec, pheno, effects["density"])
            if effects["blur"] > 0:
                from scipy.ndimage import gaussian_filter

                layers = {
                    c: gaussian_filter(v, effects["blur"], mode="reflect")
                    for c, v in layers.items()
                }
            if effects["debris"] > 0:
                add_debris(
                    np.random.default_rng(stable_seed(spec.seed, "debris", plate, index)),
                    layers,
                    effects["debris"],
                )
            drift = 1.0 - spec.batch_effects.plate_drift * index / max(len(plate_rows) - 1, 1)
            names = {}
            for channel in CHANNELS:
                img = to_camera(
                    rng,
                    layers[channel],
                    channel,
                    fields[channel],
                    plate_gain * effects["gain"][channel],
                    effects["offset"][channel],
                    effects["stain"][channel] * drift,
                )
                name = f"{prefix}{row['well']}_s{row['site']}_w{CHANNEL_TOKENS[channel]}{_uuid(rng)}.tif"
                buf = io.BytesIO()
                tifffile.imwrite(buf, img, photometric="minisblack")
                writer.add(f"{plate}/{name}", buf.getvalue())
                names[channel] = name
            image_number += 1
            image_rows.append(
                {
                    "TableNumber": week,
                    "ImageNumber": image_number,
                    "Image_FileName_DAPI": names["DAPI"],
                    "Image_PathName_DAPI": f"Week{week}/{plate}",
                    "Image_FileName_Tubulin": names["Tubulin"],
                    "Image_PathName_Tubulin": f"Week{week}/{plate}",
                    "Image_FileName_Actin": names["Actin"],
                    "Image_PathName_Actin": f"Week{week}/{plate}",
                    "Image_Metadata_Plate_DAPI": plate,
                    "Image_Metadata_Well_DAPI": row["well"],
                    "Replicate": row["replicate"],
                    "Image_Metadata_Compound": compound,
                    "Image_Metadata_Concentration": _format_concentration(conc),
                }
            )
        writer.close()

    _write_csv(out_dir / IMAGE_CSV, IMAGE_COLUMNS, image_rows, quote_strings=False)
    moa_rows = [{"compound": "DMSO", "concentration": "0.000000", "moa": "DMSO"}]
    for moa, compounds in spec.moas.items():
        for c in compounds:
            for conc in spec.concentrations:
                moa_rows.append({"compound": c, "concentration": f"{conc:.6f}", "moa": moa})
    _write_csv(
        out_dir / MOA_CSV, ["compound", "concentration", "moa"], moa_rows, quote_strings=True
    )
    compound_rows = [
        {"compound": c, "smiles": ""} for c in ["DMSO", *spec.compounds, *spec.unlabelled_compounds]
    ]
    _write_csv(out_dir / COMPOUND_CSV, ["compound", "smiles"], compound_rows, quote_strings=True)
    np.savez_compressed(out_dir / "illumination_truth.npz", **truth)
    write_text(
        out_dir / "zip_files.txt",
        "".join(dataset.archive_name(p) + "\n" for p in by_plate) if archives else "",
    )
    write_text(out_dir / "synthetic_spec.json", json.dumps(asdict(spec), indent=2) + "\n")
    return out_dir


def _write_csv(path: Path, columns: list[str], rows: list[dict], quote_strings: bool) -> None:
    """BBBC021's moa/compound CSVs quote strings (header included, ``concentration`` excepted);
    image.csv quotes nothing."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        if quote_strings:

            def cell(column, value):
                return (
                    str(value)
                    if column == "concentration"
                    else '"' + str(value).replace('"', '""') + '"'
                )

            fh.write(",".join(cell(c, c) for c in columns) + "\n")
            for row in rows:
                fh.write(",".join(cell(c, row[c]) for c in columns) + "\n")
        else:
            writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
