"""A synthetic dataset in BBBC014's layout, with a real concentration-dependent translocation.

What it writes (into one folder, like the BBBC014 download location):

- ``BBBC014_v1_images.zip`` with members ``BBBC014_v1_images/Channel <1|2>-<NN>-<Row>-<Col>-00.Bmp``
  (8-bit grey BMPs; Channel 1 the NF-kB reporter, Channel 2 DAPI), or the folder itself with
  ``archives=False``;
- ``BBBC014_v1_platemap_all.txt``: a header line and the 96 wells' TNF-alpha concentrations in
  molar, written ``10^<exponent>``, row-major from A01; 12 concentrations from 1e-7 M (column 1)
  to 1e-13 M (column 12), as on the real plate;
- ``illumination_truth.npz`` (``<plate>/<channel>``) and ``synthetic_spec.json``.

Rows A-D hold MCF7-like cells, rows E-H A549-like cells (larger, more elongated, with dimmer
nuclei and a brighter reporter), so a network trained on one cell line is tested on cells that
look different. In every cell the reporter moves from the cytoplasm into the nucleus along a Hill
curve of the concentration (``ec50``, ``hill``).
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cellmoa.data.datasets.bbbc014 import ARCHIVE, BBBC014, CHANNELS, PLATE, PLATEMAP, file_name
from cellmoa.data.synthetic.rendering import (
    PlateWriter,
    camera,
    cell_window,
    from_settings,
    illumination_field,
    nucleus_mask,
    soft_inside,
    stable_seed,
)
from cellmoa.files import atomic_path, write_text

#: per cell line: nucleus size, cytoplasm size (x nucleus radius), elongation, DAPI and reporter
#: brightness
CELL_LINES = {
    "MCF7": dict(nucleus=1.0, cytoplasm=2.1, elongation=1.05, dapi=1.0, reporter=1.0, density=1.0),
    "A549": dict(
        nucleus=1.25, cytoplasm=2.7, elongation=1.35, dapi=0.8, reporter=1.2, density=0.75
    ),
}
BACKGROUND = {"NFkB": 14.0, "DAPI": 10.0}
AMPLITUDE = {"NFkB": 90.0, "DAPI": 170.0}


def _default_concentrations() -> list[float]:
    return [float(10.0**e) for e in np.linspace(-7.0, -13.0, 12)]


@dataclass
class BBBC014Spec:
    """What to synthesize. Every field can be set from the ``synthetic:`` config section."""

    seed: int = 0
    image_height: int = 128  # real BBBC014: 1024
    image_width: int = 170  # real BBBC014: 1360
    #: nucleus radius of an MCF7 cell in pixels
    nucleus_radius: float = 4.0
    cells_per_field: int = 40
    illumination_falloff: float = 2.0
    #: concentration (molar) at which half the reporter has moved into the nucleus
    ec50: float = 1e-10
    hill: float = 1.0
    #: the 12 concentrations of columns 1..12, molar
    concentrations: list = field(default_factory=_default_concentrations)

    @classmethod
    def from_dict(cls, values: dict | None) -> "BBBC014Spec":
        """The spec from the ``synthetic:`` config section, refusing unknown keys.

        Raises
        ------
        ValueError
            If a key is unknown or there are not 12 concentrations.
        """
        spec = from_settings(cls, values, "synthetic BBBC014 parameter")
        if len(spec.concentrations) != 12:
            raise ValueError("synthetic BBBC014 needs 12 concentrations, one per plate column")
        return spec

    def plates(self) -> list[str]:
        """The one plate of BBBC014."""
        return [PLATE]

    def write(self, out_dir: Path, archives: bool = True) -> Path:
        """Write the dataset into ``out_dir`` (see :func:`synthesize_bbbc014`)."""
        return synthesize_bbbc014(self, out_dir, archives)


def translocation(concentration: float, spec: BBBC014Spec) -> float:
    """Fraction of the full nuclear translocation at a concentration (Hill curve, 0..1)."""
    return float(1.0 / (1.0 + (spec.ec50 / concentration) ** spec.hill))


def render_field(
    rng: np.random.Generator, spec: BBBC014Spec, line: str, fraction: float
) -> dict[str, np.ndarray]:
    """Signal of one field per channel (before illumination, background and noise), ~[0, 1]."""
    h, w = spec.image_height, spec.image_width
    look = CELL_LINES[line]
    dapi = np.zeros((h, w))
    reporter = np.zeros((h, w))
    for _ in range(rng.poisson(spec.cells_per_field * look["density"])):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = spec.nucleus_radius * look["nucleus"] * float(np.exp(rng.normal(0, 0.1)))
        elong = look["elongation"] * float(np.exp(rng.normal(0, 0.08)))
        big = r * look["cytoplasm"] * float(np.exp(rng.normal(0, 0.1)))
        cell = cell_window(rng, (h, w), cy, cx, int(np.ceil(big * elong * 1.3)) + 2)
        if cell is None:
            continue
        at = (cell.rows, cell.cols)
        nucleus = nucleus_mask(cell, r, elong)
        body = soft_inside(np.hypot(cell.u / (big * elong), cell.v / (big / elong)), 6.0)
        cytoplasm = body * (1.0 - nucleus)
        f = float(np.clip(fraction + rng.normal(0, 0.06), 0.0, 1.0))
        dapi[at] += look["dapi"] * nucleus * rng.uniform(0.85, 1.15)
        level = look["reporter"] * rng.uniform(0.8, 1.2)
        reporter[at] += level * ((0.15 + 0.85 * f) * nucleus + (0.6 - 0.5 * f) * cytoplasm)
    return {"NFkB": reporter, "DAPI": dapi}


def to_camera(rng, signal: np.ndarray, channel: str, illum: np.ndarray) -> np.ndarray:
    """Illumination, background, noise and 8-bit quantisation."""
    counts = (BACKGROUND[channel] + AMPLITUDE[channel] * signal) * illum
    return np.clip(np.rint(camera(rng, counts, 0.5, 2.0)), 0, 255).astype(np.uint8)


def bmp_bytes(image: np.ndarray) -> bytes:
    """An 8-bit grayscale image encoded as BMP."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image, mode="L").save(buf, format="BMP")
    return buf.getvalue()


def platemap_text(concentrations: list[float]) -> str:
    """The platemap: a header and one ``10^<exponent>`` line per well, row-major (CRLF lines)."""
    lines = ["TNF-alpha concentration (M)"]
    for _row in range(8):
        lines += [f"10^{np.log10(c):.8g}" for c in concentrations]
    return "\r\n".join(lines) + "\r\n"


def synthesize_bbbc014(spec: BBBC014Spec, out_dir: Path, archives: bool = True) -> Path:
    """Write the dataset into ``out_dir``.

    It writes the zip archive and the platemap, or the image folder instead of the zip when
    ``archives`` is False.

    Parameters
    ----------
    spec : BBBC014Spec
        What to synthesize.
    out_dir : Path
        The folder to write into (created if missing).
    archives : bool, optional
        Whether the images go into BBBC014's zip archive (else into the plate folder).

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = platemap_text(spec.concentrations)
    with atomic_path(out_dir / PLATEMAP) as tmp:
        tmp.write_bytes(text.encode("latin-1"))
    dataset = BBBC014()
    molar = [spec.concentrations[i % 12] for i in range(96)]
    table = dataset.table(molar)
    rng = np.random.default_rng(stable_seed(spec.seed, "plate", PLATE))
    fields = {
        c: illumination_field(rng, spec.image_height, spec.image_width, spec.illumination_falloff)
        for c in CHANNELS
    }
    writer = PlateWriter(out_dir, ARCHIVE if archives else None)
    for (_, row), m in zip(table.iterrows(), molar):
        layers = render_field(rng, spec, row["cell_line"], translocation(m, spec))
        for channel in CHANNELS:
            image = to_camera(rng, layers[channel], channel, fields[channel])
            writer.add(f"{PLATE}/{file_name(channel, row['well'])}", bmp_bytes(image))
    writer.close()
    np.savez_compressed(
        out_dir / "illumination_truth.npz", **{f"{PLATE}/{c}": f for c, f in fields.items()}
    )
    write_text(
        out_dir / "synthetic_spec.json",
        json.dumps({"dataset": "bbbc014", **asdict(spec)}, indent=2) + "\n",
    )
    return out_dir
