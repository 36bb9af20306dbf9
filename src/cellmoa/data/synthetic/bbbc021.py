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

Cells are rendered in the three stains (:mod:`cellmoa.data.synthetic.phenotypes`). Their
morphology depends on the MoA (nuclear size, shape, brightness and count; tubulin amount and
texture; actin rings and puncta), varies from compound to compound inside an MoA, and grows with
the dose. Every plate has DMSO control wells; every plate and channel has a smooth illumination
fall-off (up to ~2.5x from centre to corner); weeks and plates get intensity offsets; camera
noise is added. Everything is deterministic for a seed. Batch effects between weeks and plates
(``batch_effects``) are described in :mod:`cellmoa.data.synthetic.batches`.
"""

from __future__ import annotations

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
)
from cellmoa.data.synthetic.batches import BatchEffects, add_debris, batch_effects
from cellmoa.data.synthetic.bbbc021_tables import image_row, write_tables
from cellmoa.data.synthetic.phenotypes import (
    DMSO_PHENOTYPE,
    apply_dose,
    compound_phenotype,
    dose_strength,
    render_field,
)
from cellmoa.data.synthetic.rendering import (
    PlateWriter,
    camera,
    from_settings,
    illumination_field,
    stable_seed,
)
from cellmoa.data.wells import well_names
from cellmoa.files import write_text

BACKGROUND = {"DAPI": 320.0, "Tubulin": 1100.0, "Actin": 1400.0}
AMPLITUDE = {"DAPI": 9000.0, "Tubulin": 3500.0, "Actin": 4500.0}
WELL_ROWS = "BCDEFG"
WELL_COLUMNS = range(2, 12)
#: a 384-well layout for plates with more treatments than BBBC021's 60 inner wells of a
#: 96-well plate
WELLS_384 = well_names("384")


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
    #: a known MoA the pipeline should recognise; any other archetype
    #: (:data:`~cellmoa.data.synthetic.phenotypes.ARCHETYPES`) or name: a novel one)
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
    #: how strong every phenotype is: its log-factors times this (1 = the archetypes as they are;
    #: 1.5 makes a 1.7x larger nucleus 2.2x)
    effect_scale: float = 1.0
    #: brightness ratio centre / corner of the illumination fall-off
    illumination_falloff: float = 2.5
    #: batch effects between weeks and plates
    #: (:class:`~cellmoa.data.synthetic.batches.BatchEffects`; a dict in the config)
    batch_effects: BatchEffects = field(default_factory=BatchEffects)

    def __post_init__(self):
        if not isinstance(self.batch_effects, BatchEffects):
            self.batch_effects = BatchEffects.from_dict(self.batch_effects)

    @classmethod
    def from_dict(cls, values: dict | None) -> "SyntheticSpec":
        """The spec of a ``synthetic:`` config section (unknown keys are an error)."""
        return from_settings(cls, values, "synthetic dataset parameter")

    def hidden_moas(self) -> dict[str, str]:
        """Each unlabelled compound's true (unpublished) MoA.

        Returns
        -------
        dict
            Compound -> the MoA given for it, or ``_unlabelled_<i>`` (an MoA of its own) for a
            compound given in a list.
        """
        if isinstance(self.unlabelled_compounds, dict):
            return {str(c): str(m) for c, m in self.unlabelled_compounds.items()}
        return {c: f"_unlabelled_{i}" for i, c in enumerate(self.unlabelled_compounds)}

    def write(self, out_dir: Path, archives: bool = True) -> Path:
        """Write the dataset into ``out_dir`` (see :func:`synthesize`)."""
        return synthesize(self, out_dir, archives)

    @property
    def compounds(self) -> list[str]:
        """The annotated compounds, MoA by MoA."""
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


def to_camera(
    rng,
    signal: np.ndarray,
    channel: str,
    illum: np.ndarray,
    gain: float,
    offset: float = 0.0,
    stain: float = 1.0,
) -> np.ndarray:
    """What the camera records of a channel's signal, as BBBC021's 16-bit TIFFs hold it.

    Illumination, background (``offset``: its relative change), stain strength, noise, 12-bit
    quantisation in a 16-bit container.
    """
    photons = (
        (BACKGROUND[channel] * (1.0 + offset) + AMPLITUDE[channel] * stain * signal) * gain * illum
    )
    counts12 = np.clip(np.rint(camera(rng, photons, 16.0, 40.0) / 16.0), 0, 4095)
    return (counts12 * 16).astype(np.uint16)


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4)).upper()


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
            where = {"plate": plate, "week": week, "replicate": replicate, "well": well}
            for site in range(1, spec.sites_per_well + 1):
                rows.append({**where, "site": site, "compound": compound, "concentration": conc})
    return rows


def _interleave(spec: SyntheticSpec) -> list[str]:
    """Compounds ordered so that round-robin over weeks spreads each MoA's compounds."""
    lists = list(spec.moas.values())
    out = []
    for i in range(max(len(cs) for cs in lists)):
        out += [cs[i] for cs in lists if i < len(cs)]
    return out


def synthesize(spec: SyntheticSpec, out_dir: Path, archives: bool = True) -> Path:
    """Write the dataset into ``out_dir``.

    Parameters
    ----------
    spec : SyntheticSpec
        What to synthesize.
    out_dir : pathlib.Path
        The folder (created).
    archives : bool
        Write each plate as a zip archive (as BBBC021 is downloaded); False writes plate
        folders.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = BBBC021()
    by_plate: dict[str, list[dict]] = {}
    for row in plan(spec):
        by_plate.setdefault(row["plate"], []).append(row)
    truth: dict[str, np.ndarray] = {}
    image_rows: list[dict] = []
    for plate, plate_rows in by_plate.items():
        archive = dataset.archive_name(plate) if archives else None
        _write_plate(spec, PlateWriter(out_dir, archive), plate, plate_rows, truth, image_rows)
    write_tables(spec, out_dir, image_rows)
    np.savez_compressed(out_dir / "illumination_truth.npz", **truth)
    write_text(
        out_dir / "zip_files.txt",
        "".join(dataset.archive_name(p) + "\n" for p in by_plate) if archives else "",
    )
    write_text(out_dir / "synthetic_spec.json", json.dumps(asdict(spec), indent=2) + "\n")
    return out_dir


def _write_plate(
    spec: SyntheticSpec,
    writer: PlateWriter,
    plate: str,
    plate_rows: list[dict],
    truth: dict[str, np.ndarray],
    image_rows: list[dict],
) -> None:
    """Render and write one plate's images.

    Adds the plate's illumination fields to ``truth`` and its image.csv rows to ``image_rows``.
    """
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
    for index, row in enumerate(plate_rows):
        layers = _field_signal(spec, rng, row, effects, index)
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
            token = CHANNEL_TOKENS[channel]
            name = f"{prefix}{row['well']}_s{row['site']}_w{token}{_uuid(rng)}.tif"
            buf = io.BytesIO()
            tifffile.imwrite(buf, img, photometric="minisblack")
            writer.add(f"{plate}/{name}", buf.getvalue())
            names[channel] = name
        image_rows.append(image_row(row, names, len(image_rows) + 1))
    writer.close()


def _field_signal(
    spec: SyntheticSpec, rng: np.random.Generator, row: dict, effects: dict, index: int
) -> dict[str, np.ndarray]:
    """The signal layers of one field: its treatment's phenotype, with the batch effects.

    Blurred and with debris as the plate's batch effects say (``index``: the field's place in the
    plate's acquisition order).
    """
    compound, conc = row["compound"], row["concentration"]
    if compound == "DMSO":
        pheno = dict(DMSO_PHENOTYPE)
    else:
        moa = {c: m for m, cs in spec.moas.items() for c in cs}.get(compound)
        if moa is None:
            moa = spec.hidden_moas().get(compound)
        pheno = apply_dose(
            compound_phenotype(spec, moa, compound),
            dose_strength(conc, spec.concentrations) * spec.effect_scale,
        )
    layers = render_field(rng, spec, pheno, effects["density"])
    if effects["blur"] > 0:
        # scipy only where a blur is asked for (it is not needed otherwise)
        from scipy.ndimage import gaussian_filter

        layers = {c: gaussian_filter(v, effects["blur"], mode="reflect") for c, v in layers.items()}
    if effects["debris"] > 0:
        add_debris(
            np.random.default_rng(stable_seed(spec.seed, "debris", row["plate"], index)),
            layers,
            effects["debris"],
        )
    return layers
