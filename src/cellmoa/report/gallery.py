"""Cell galleries: pictures of the crops behind the calls, for the report.

A microscopist trusts a call after looking at the cells. Three montages (PNG), each row a group
of crops drawn as colour composites (channels mapped to colours, named in a legend):

- **MoAs**: for each MoA the crops nearest the MoA's median embedding (its most typical crops);
- **misclassified treatments**: the treatment's own typical crops beside those of its true MoA
  and of the MoA it was called;
- **unannotated treatments**: the treatment's typical crops beside those of its nearest
  annotated treatment and of its top MoA.

"Typical" is always the same rule: the crops whose embedding (of the gallery's fold model) is
nearest the group's median embedding (Euclidean), :data:`PER_GROUP` of them. Rows are capped at
:data:`MAX_ROWS` (the first ones in the table's order, which is the most confident first for
the unannotated calls) and every crop is shrunk to at most :data:`CROP_PIXELS` pixels a side, so
a montage stays a few MB at BBBC021's scale. Each channel is scaled between its 1st and 99.5th
percentile over the crops of the montage.

Examples
--------
>>> colours_for(["DAPI", "Tubulin", "Actin", "ER"])
[('DAPI', 'blue'), ('Tubulin', 'green'), ('Actin', 'red'), ('ER', 'magenta')]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from cellmoa.columns import COMPOUND, CONCENTRATION, MOA
from cellmoa.report.plots import _pyplot

#: crops per group (a montage cell)
PER_GROUP = 4
#: rows per montage
MAX_ROWS = 24
#: the longest side of a crop in a montage, in pixels
CROP_PIXELS = 96
#: colour of a channel by (lower-case) name fragment; other channels take the spare colours
NAMED_COLOURS = (
    (("dapi", "dna", "hoechst", "nuc"), "blue"),
    (("tub", "mito"), "green"),
    (("actin", "phalloidin", "agp"), "red"),
)
SPARE_COLOURS = ("magenta", "cyan", "yellow", "white")
RGB = {
    "blue": (0.2, 0.4, 1.0),
    "green": (0.0, 1.0, 0.0),
    "red": (1.0, 0.0, 0.0),
    "magenta": (1.0, 0.0, 1.0),
    "cyan": (0.0, 1.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "white": (1.0, 1.0, 1.0),
}


def colours_for(channels: list[str]) -> list[tuple[str, str]]:
    """Each channel's colour: DNA blue, tubulin green, actin red, the others spare colours."""
    used, out = set(), []
    for name in channels:
        colour = next(
            (
                c
                for keys, c in NAMED_COLOURS
                if c not in used and any(k in name.lower() for k in keys)
            ),
            None,
        )
        if colour is None:
            colour = next((c for c in SPARE_COLOURS if c not in used), "white")
        used.add(colour)
        out.append((name, colour))
    return out


def composite(crops: np.ndarray, colours: list[str], limits: np.ndarray) -> np.ndarray:
    """(n, h, w, c) crops as (n, h, w, 3) RGB in [0, 1]; ``limits`` (c, 2) low and high."""
    x = crops.astype(np.float32)
    low, high = limits[:, 0], limits[:, 1]
    scaled = np.clip((x - low) / np.maximum(high - low, 1e-6), 0.0, 1.0)
    rgb = np.einsum("nhwc,ck->nhwk", scaled, np.array([RGB[c] for c in colours], np.float32))
    return np.clip(rgb, 0.0, 1.0)


def typical(rows: np.ndarray, embeddings: np.ndarray, k: int = PER_GROUP) -> np.ndarray:
    """The ``k`` of ``rows`` (crop indices) whose embeddings are nearest their median."""
    rows = np.asarray(rows)
    if len(rows) <= k:
        return np.sort(rows)
    e = embeddings[rows].astype(np.float64)
    distance = np.linalg.norm(e - np.median(e, axis=0), axis=1)
    return rows[np.argsort(distance, kind="stable")[:k]]


@dataclass
class Row:
    """One montage row: a label and its groups of crops, each (caption, crop indices)."""

    label: str
    groups: list[tuple[str, np.ndarray]] = field(default_factory=list)


def _treatment_rows(metadata: pd.DataFrame, compound, concentration) -> np.ndarray:
    same = metadata["compound"].astype(str).eq(str(compound)) & np.isclose(
        metadata["concentration"].astype(float), float(concentration)
    )
    return np.flatnonzero(same.to_numpy() & ~metadata["is_control"].astype(bool).to_numpy())


def _moa_rows(metadata: pd.DataFrame, moa: str) -> np.ndarray:
    annotated = metadata["annotated"].astype(bool).to_numpy()
    return np.flatnonzero(metadata["moa"].astype(str).eq(str(moa)).to_numpy() & annotated)


def moa_rows(metadata: pd.DataFrame, embeddings: np.ndarray) -> list[Row]:
    """One row per annotated MoA: its typical crops."""
    moas = sorted(set(metadata.loc[metadata["annotated"].astype(bool), "moa"].astype(str)))
    return [
        Row(moa, [("", typical(_moa_rows(metadata, moa), embeddings))]) for moa in moas[:MAX_ROWS]
    ]


def misclassified_rows(
    metadata: pd.DataFrame, embeddings: np.ndarray, treatments: pd.DataFrame
) -> list[Row]:
    """One row per misclassified treatment: its crops, its true MoA's, the called MoA's."""
    wrong = treatments[~treatments["correct"].astype(bool)].head(MAX_ROWS)
    out = []
    for _, t in wrong.iterrows():
        own = typical(_treatment_rows(metadata, t[COMPOUND], t[CONCENTRATION]), embeddings)
        out.append(
            Row(
                f"{t[COMPOUND]} {float(t[CONCENTRATION]):g}",
                [
                    ("the treatment", own),
                    (f"true: {t[MOA]}", typical(_moa_rows(metadata, t[MOA]), embeddings)),
                    (
                        f"called: {t['predicted_moa']}",
                        typical(_moa_rows(metadata, t["predicted_moa"]), embeddings),
                    ),
                ],
            )
        )
    return out


def unannotated_rows(
    metadata: pd.DataFrame, embeddings: np.ndarray, calls: pd.DataFrame
) -> list[Row]:
    """One row per unannotated treatment: its crops, its nearest annotated one's, its MoA's."""
    out = []
    for _, t in calls.head(MAX_ROWS).iterrows():
        groups = [
            (
                "the treatment" + (" (novel)" if bool(t["novel"]) else ""),
                typical(_treatment_rows(metadata, t[COMPOUND], t[CONCENTRATION]), embeddings),
            )
        ]
        near = t.get("neighbour_1_compound")
        if isinstance(near, str) and near:
            conc = float(t["neighbour_1_concentration"])
            rows = _treatment_rows(metadata, near, conc)
            groups.append((f"nearest: {near} {conc:g}", typical(rows, embeddings)))
        top = t["top_moa"]
        groups.append((f"top MoA: {top}", typical(_moa_rows(metadata, top), embeddings)))
        out.append(Row(f"{t[COMPOUND]} {float(t[CONCENTRATION]):g}", groups))
    return out


def _read(images: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """Crops ``rows`` of ``/images``, shrunk to at most :data:`CROP_PIXELS` a side."""
    from skimage.transform import resize

    out = []
    for i in rows:
        crop = images[int(i)].astype(np.float32)
        scale = CROP_PIXELS / max(crop.shape[:2])
        if scale < 1:
            shape = (round(crop.shape[0] * scale), round(crop.shape[1] * scale), crop.shape[2])
            crop = resize(crop, shape, anti_aliasing=True, preserve_range=True)
        out.append(crop)
    return np.stack(out) if out else np.zeros((0, 1, 1, images.shape[-1]), np.float32)


def draw(rows: list[Row], tensors: Path, title: str, path: Path) -> None:
    """Draw ``rows`` as one montage PNG (a legend of the channels' colours in the title)."""
    plt = _pyplot()
    with h5py.File(tensors, "r") as f:
        images = f["images"]
        channels = [str(c) for c in f.attrs.get("channels", [])] or [
            f"channel {i + 1}" for i in range(images.shape[-1])
        ]
        crops = [[(c, _read(images, idx)) for c, idx in r.groups] for r in rows]
    pairs = colours_for(channels)
    stacked = [x for r in crops for _, x in r if len(x)]
    limits = (
        np.percentile(np.concatenate([x.reshape(-1, x.shape[-1]) for x in stacked]), [1, 99.5], 0).T
        if stacked
        else np.tile([0.0, 1.0], (len(channels), 1))
    )
    columns = max((len(r.groups) for r in rows), default=1) * PER_GROUP
    fig, axes = plt.subplots(
        max(len(rows), 1),
        columns,
        figsize=(1.3 * columns, 1.45 * max(len(rows), 1) + 0.6),
        squeeze=False,
    )
    for ax in axes.ravel():
        ax.axis("off")
    for i, (row, groups) in enumerate(zip(rows, crops)):
        axes[i, 0].text(
            -0.1,
            0.5,
            row.label,
            transform=axes[i, 0].transAxes,
            ha="right",
            va="center",
            fontsize=7,
        )
        for g, (caption, x) in enumerate(groups):
            pictures = composite(x, [c for _, c in pairs], limits) if len(x) else []
            for j, picture in enumerate(pictures):
                axes[i, g * PER_GROUP + j].imshow(picture)
            axes[i, g * PER_GROUP].set_title(caption[:40], fontsize=6, loc="left")
    if not rows:
        axes[0, 0].text(0, 0.5, "nothing to show", fontsize=9)
    legend = ", ".join(f"{name} {colour}" for name, colour in pairs)
    fig.suptitle(f"{title}\n{legend}", fontsize=8)
    fig.tight_layout(rect=(0.12, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
