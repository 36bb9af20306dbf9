"""A synthetic Cell Painting-like screen described by a LoadData CSV (``dataset: loaddata``).

What it writes (into one folder):

- ``images/<plate>/r<RR>c<CC>f<FF>p01-ch<k>sk1fk1fl1.<tiff|png>``: one single-channel image per
  field and channel, named the way Opera Phenix exports are (row, column, field, channel), as
  16-bit TIFF (12-bit data) or 8-bit PNG (``image_format``);
- ``loaddata.csv``: one row per field of view, ``FileName_Orig<Channel>`` and
  ``PathName_Orig<Channel>`` (the folder relative to the CSV: ``images/<plate>``) for the five
  channels, ``Metadata_Plate``, ``Metadata_Well``, ``Metadata_Site``, ``Metadata_Batch``;
- ``platemap.csv``: ``Metadata_Plate, Metadata_Well, Metadata_Compound, Metadata_Concentration``
  per treated well (the controls, DMSO, fill the first wells of the edge columns 1 and 24 or 48);
- ``moas.csv``: ``Metadata_Compound, Metadata_MoA`` of the annotated compounds (the unlabelled ones
  are absent, their hidden MoA is in ``synthetic_spec.json``);
- ``illumination_truth.npz`` and ``synthetic_spec.json``, as the other synthesizers.

The five channels are made from the BBBC021 synthesizer's cells
(:func:`cellmoa.data.synthetic.phenotypes.render_field`): DNA is its nuclear stain, AGP (actin,
Golgi, plasma membrane) its actin, ER its cytoplasmic tubulin, Mito the cytoplasm with a punctate
texture, RNA nucleoli and cytoplasm; so each MoA's archetype shows in several channels, as on a
real Cell Painting screen. Batch effects (:class:`~cellmoa.data.synthetic.batches.BatchEffects`)
act per batch and plate on the stains each channel is made from.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import tifffile
from scipy.ndimage import gaussian_filter

from cellmoa.columns import BATCH, COMPOUND, CONCENTRATION, MOA, PLATE, SITE, WELL
from cellmoa.data.synthetic.batches import BatchEffects
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
    smooth_noise,
    stable_seed,
)
from cellmoa.data.wells import PLATE_FORMATS, parse_well, well_name
from cellmoa.files import atomic_path, write_text

CHANNELS = ("DNA", "ER", "RNA", "AGP", "Mito")
#: which BBBC021 stain's batch effects each channel takes
EFFECT_CHANNEL = {"DNA": "DAPI", "ER": "Tubulin", "RNA": "DAPI", "AGP": "Actin", "Mito": "Tubulin"}
BACKGROUND = {"DNA": 300.0, "ER": 900.0, "RNA": 700.0, "AGP": 1200.0, "Mito": 800.0}
AMPLITUDE = {"DNA": 9000.0, "ER": 3500.0, "RNA": 3000.0, "AGP": 4500.0, "Mito": 4000.0}


@dataclass
class ScreenSpec:
    """What to synthesize; every field can be set from the ``synthetic:`` config section."""

    seed: int = 0
    #: MoA -> compounds (at least two per MoA for leave-one-compound-out)
    moas: dict = field(
        default_factory=lambda: {
            "Microtubule destabilizers": ["nocodazole", "vincristine"],
            "Actin disruptors": ["cytochalasin B", "latrunculin B"],
            "DNA damage": ["etoposide", "mitomycin C"],
        }
    )
    #: doses (uM) given to every compound
    concentrations: list = field(default_factory=lambda: [0.3, 3.0])
    #: compounds without an annotation: a list, or compound -> hidden MoA (see the BBBC021 spec)
    unlabelled_compounds: list | dict = field(default_factory=lambda: ["CMPD-U1"])
    #: batches; plate k of a batch holds replicate k
    weeks: int = 2
    plates_per_week: int = 2
    #: DMSO wells on every plate, on the edge columns (first and last), top to bottom
    dmso_wells_per_plate: int = 8
    sites_per_well: int = 1
    #: "96", "384" or "1536"
    plate_format: str = "384"
    #: "tiff" (16-bit, 12-bit data) or "png" (8-bit)
    image_format: str = "tiff"
    image_height: int = 128
    image_width: int = 160
    nucleus_radius: float = 4.0
    cells_per_field: int = 30
    compound_variation: float = 0.04
    illumination_falloff: float = 2.0
    batch_effects: BatchEffects = field(default_factory=BatchEffects)

    def __post_init__(self):
        if not isinstance(self.batch_effects, BatchEffects):
            self.batch_effects = BatchEffects.from_dict(self.batch_effects)
        if str(self.plate_format) not in PLATE_FORMATS:
            raise ValueError(
                f"synthetic plate_format {self.plate_format!r}: "
                f"use one of {', '.join(PLATE_FORMATS)}"
            )
        self.plate_format = str(self.plate_format)
        if self.image_format not in ("tiff", "png"):
            raise ValueError(f"synthetic image_format {self.image_format!r}: use tiff or png")

    @classmethod
    def from_dict(cls, values: dict | None) -> "ScreenSpec":
        """The spec from the ``synthetic:`` config section, refusing unknown keys."""
        return from_settings(cls, values, "synthetic screen parameter")

    @property
    def compounds(self) -> list[str]:
        """The annotated compounds, MoA by MoA."""
        return [c for cs in self.moas.values() for c in cs]

    def hidden_moas(self) -> dict[str, str]:
        """The hidden MoA of each unlabelled compound (a placeholder when none was given)."""
        if isinstance(self.unlabelled_compounds, dict):
            return {str(c): str(m) for c, m in self.unlabelled_compounds.items()}
        return {c: f"_unlabelled_{i}" for i, c in enumerate(self.unlabelled_compounds)}

    def plates(self) -> list[str]:
        """Barcodes like a screening centre's (``SP<batch><plate>-<4 digits>``).

        They are deterministic for the seed.
        """
        rng = np.random.default_rng(stable_seed(self.seed, "screen-plates"))
        return [
            f"SP{b}{k}-{int(rng.integers(1000, 9999))}"
            for b in range(1, self.weeks + 1)
            for k in range(1, self.plates_per_week + 1)
        ]

    def batch_names(self) -> list[str]:
        """``Batch1``, ``Batch2``, ..: one name per week."""
        return [f"Batch{b}" for b in range(1, self.weeks + 1)]

    def data_defaults(self, base_url: str) -> dict:
        """The ``data:`` settings that read what :meth:`write` writes into ``base_url``."""
        return {
            "loaddata": str(Path(base_url) / "loaddata.csv"),
            "treatments": str(Path(base_url) / "platemap.csv"),
            "moas": str(Path(base_url) / "moas.csv"),
            "channels": list(CHANNELS),
            "control": "DMSO",
            "batch_column": BATCH,
        }

    def write(self, out_dir: Path, archives: bool = True) -> Path:
        """Write the screen (``archives`` is ignored: a LoadData screen has plate folders)."""
        return synthesize(self, Path(out_dir))


def control_wells(spec: ScreenSpec) -> list[str]:
    """The DMSO wells: down the first column, then down the last."""
    rows, columns = PLATE_FORMATS[spec.plate_format]
    edge = [well_name(r, 0) for r in range(rows)] + [well_name(r, columns - 1) for r in range(rows)]
    if spec.dmso_wells_per_plate > len(edge):
        raise ValueError(
            f"a {spec.plate_format}-well plate has {len(edge)} edge-column wells, fewer than "
            f"dmso_wells_per_plate {spec.dmso_wells_per_plate}"
        )
    return edge[: spec.dmso_wells_per_plate]


def treatment_wells(spec: ScreenSpec) -> list[str]:
    """The inner columns' wells, row by row."""
    rows, columns = PLATE_FORMATS[spec.plate_format]
    return [well_name(r, c) for r in range(rows) for c in range(1, columns - 1)]


def plan(spec: ScreenSpec) -> list[dict]:
    """One record per field: plate, batch, replicate, well, site, compound, concentration.

    Each compound is screened in one batch (round-robin, each MoA's compounds spread over the
    batches).

    Parameters
    ----------
    spec : ScreenSpec
        What to synthesize.

    Returns
    -------
    list of dict
        One record per field, plate by plate, the controls first.

    Raises
    ------
    ValueError
        If a plate has too few inner wells for its treatments, or too few edge-column wells for
        its DMSO wells.
    """
    lists = list(spec.moas.values())
    order = [cs[i] for i in range(max(len(cs) for cs in lists)) for cs in lists if i < len(cs)]
    unlabelled = list(spec.unlabelled_compounds)
    batch_of = {c: i % spec.weeks for i, c in enumerate(order + unlabelled)}
    rows = []
    plates = spec.plates()
    for index, plate in enumerate(plates):
        batch, replicate = index // spec.plates_per_week, index % spec.plates_per_week + 1
        treatments = [("DMSO", 0.0, w) for w in control_wells(spec)]
        inner = treatment_wells(spec)
        wanted = [
            (c, conc)
            for c in order + unlabelled
            if batch_of[c] == batch
            for conc in spec.concentrations
        ]
        if len(wanted) > len(inner):
            raise ValueError(
                f"plate {plate} needs {len(wanted)} treatment wells; "
                f"a {spec.plate_format}-well plate has {len(inner)} inner wells"
            )
        treatments += [(c, conc, w) for (c, conc), w in zip(wanted, inner)]
        for compound, conc, well in treatments:
            for site in range(1, spec.sites_per_well + 1):
                rows.append(
                    dict(
                        plate=plate,
                        batch=spec.batch_names()[batch],
                        batch_index=batch + 1,
                        replicate=replicate,
                        well=well,
                        site=site,
                        compound=compound,
                        concentration=conc,
                    )
                )
    return rows


def paint(rng: np.random.Generator, layers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The five Cell Painting channels' signal from the BBBC021 synthesizer's three stains."""
    dapi, tubulin, actin = layers["DAPI"], layers["Tubulin"], layers["Actin"]
    h, w = dapi.shape
    speckle = np.clip(1.0 + 0.6 * smooth_noise(rng, h, w, 0.7), 0.0, None)
    return {
        "DNA": dapi,
        "ER": tubulin,
        "RNA": 0.5 * np.clip(dapi, 0, 1.5) + 0.6 * tubulin,
        "AGP": actin,
        "Mito": 0.9 * tubulin * speckle,
    }


def synthesize(spec: ScreenSpec, out_dir: Path) -> Path:
    """Write the screen into ``out_dir`` (see the module doc).

    Parameters
    ----------
    spec : ScreenSpec
        The screen to write.
    out_dir : Path
        The folder the images, tables, illumination truth and spec go to (made if missing).

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    # the MoA that shapes each compound's phenotype: annotated, else hidden (unlabelled ones)
    moas = {**spec.hidden_moas(), **{c: m for m, cs in spec.moas.items() for c in cs}}
    by_plate: dict[str, list[dict]] = {}
    for row in plan(spec):
        by_plate.setdefault(row["plate"], []).append(row)
    truth, loaddata, platemap = {}, [], []
    for plate, plate_rows in by_plate.items():
        fields, records = _write_plate(spec, out_dir, plate, plate_rows, moas)
        truth.update({f"{plate}/{c}": f for c, f in fields.items()})
        loaddata.extend(records)
        platemap.extend(_platemap_rows(plate, plate_rows))
    _write_tables(spec, out_dir, loaddata, platemap)
    np.savez_compressed(out_dir / "illumination_truth.npz", **truth)
    write_text(out_dir / "synthetic_spec.json", json.dumps(asdict(spec), indent=2) + "\n")
    return out_dir


def _write_plate(
    spec: ScreenSpec, out_dir: Path, plate: str, plate_rows: list[dict], moas: dict[str, str]
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Write one plate's images; return its illumination fields and LoadData rows."""
    rng = np.random.default_rng(stable_seed(spec.seed, "screen-plate", plate))
    fields = {
        c: illumination_field(rng, spec.image_height, spec.image_width, spec.illumination_falloff)
        for c in CHANNELS
    }
    week = plate_rows[0]["batch_index"]
    effects = spec.batch_effects.week(spec.seed, week, spec.weeks)
    effects = spec.batch_effects.plate(
        np.random.default_rng(stable_seed(spec.seed, "screen-effects", plate)), effects
    )
    plate_gain = float(rng.uniform(0.9, 1.1))
    writer = PlateWriter(out_dir, None)
    records = []
    for index, row in enumerate(plate_rows):
        signal = _field_signal(spec, rng, row, moas, effects)
        drift = 1.0 - spec.batch_effects.plate_drift * index / max(len(plate_rows) - 1, 1)
        r, c = parse_well(row["well"])
        suffix = "tiff" if spec.image_format == "tiff" else "png"
        record = {}
        for k, channel in enumerate(CHANNELS, start=1):
            stain = EFFECT_CHANNEL[channel]
            photons = (
                BACKGROUND[channel] * (1.0 + effects["offset"][stain])
                + AMPLITUDE[channel] * effects["stain"][stain] * drift * signal[channel]
            )
            photons = photons * plate_gain * effects["gain"][stain] * fields[channel]
            counts12 = np.clip(np.rint(camera(rng, photons, 16.0, 40.0) / 16.0), 0, 4095)
            name = f"r{r + 1:02d}c{c + 1:02d}f{row['site']:02d}p01-ch{k}sk1fk1fl1.{suffix}"
            writer.add(f"images/{plate}/{name}", _encode(counts12, spec.image_format))
            record[f"FileName_Orig{channel}"] = name
            record[f"PathName_Orig{channel}"] = f"images/{plate}"
        records.append(
            {**record, PLATE: plate, WELL: row["well"], SITE: row["site"], BATCH: row["batch"]}
        )
    writer.close()
    return fields, records


def _field_signal(
    spec: ScreenSpec, rng: np.random.Generator, row: dict, moas: dict[str, str], effects: dict
) -> dict[str, np.ndarray]:
    """One field's painted signal per channel: its treatment's phenotype, the week's blur."""
    compound, conc = row["compound"], row["concentration"]
    if compound == "DMSO":
        pheno = dict(DMSO_PHENOTYPE)
    else:
        pheno = apply_dose(
            compound_phenotype(spec, moas.get(compound), compound),
            dose_strength(conc, spec.concentrations),
        )
    layers = render_field(rng, spec, pheno, effects["density"])
    if effects["blur"] > 0:
        layers = {c: gaussian_filter(v, effects["blur"], mode="reflect") for c, v in layers.items()}
    return paint(rng, layers)


def _platemap_rows(plate: str, plate_rows: list[dict]) -> list[dict]:
    """The plate map's rows of a plate: each well's treatment, in the order first imaged."""
    rows, seen = [], set()
    for row in plate_rows:
        if row["well"] in seen:
            continue
        seen.add(row["well"])
        compound, conc = row["compound"], row["concentration"]
        rows.append(
            {
                PLATE: plate,
                WELL: row["well"],
                COMPOUND: compound,
                CONCENTRATION: "" if compound == "DMSO" else f"{conc:g}",
            }
        )
    return rows


def _write_tables(
    spec: ScreenSpec, out_dir: Path, loaddata: list[dict], platemap: list[dict]
) -> None:
    """Write the LoadData CSV, the plate map and the MoA table."""
    columns = [f"{kind}_Orig{c}" for c in CHANNELS for kind in ("FileName", "PathName")]
    _write_csv(out_dir / "loaddata.csv", [*columns, PLATE, WELL, SITE, BATCH], loaddata)
    _write_csv(out_dir / "platemap.csv", [PLATE, WELL, COMPOUND, CONCENTRATION], platemap)
    _write_csv(
        out_dir / "moas.csv",
        [COMPOUND, MOA],
        [{COMPOUND: c, MOA: m} for m, cs in spec.moas.items() for c in cs],
    )


def _encode(counts12: np.ndarray, image_format: str) -> bytes:
    buf = io.BytesIO()
    if image_format == "tiff":
        tifffile.imwrite(buf, (counts12 * 16).astype(np.uint16), photometric="minisblack")
    else:
        from PIL import Image

        Image.fromarray((counts12 / 16).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
