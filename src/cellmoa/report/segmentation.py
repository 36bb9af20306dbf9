"""The segmentation's QC figure (rule ``segmentation_qc``, the report's Cells section).

Three panels over the whole run: nuclei per field (the flagged fields apart), the nucleus areas
against the expected one (``segmentation.nucleus_diameter``), and a few fields of the first plate
with their nuclei and cells outlined over the DNA stain, so that a scientist sees whether the
objects are cells before reading any number built on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.report.plots import _pyplot
from cellmoa.segment.qc import usable_mask


def outlined(dna: np.ndarray, nuclei: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """An RGB picture of a field: the DNA stain in grey, nuclei outlined yellow, cells cyan.

    Examples
    --------
    >>> labels = np.zeros((6, 6), np.int32)
    >>> labels[1:4, 1:4] = 1
    >>> outlined(np.ones((6, 6)), labels, labels).shape
    (6, 6, 3)
    """
    from skimage.segmentation import find_boundaries

    lo, hi = np.percentile(dna, [1, 99.5])
    grey = np.clip((dna - lo) / max(hi - lo, 1e-9), 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    rgb[find_boundaries(cells, mode="inner") & (cells > 0)] = (0.0, 0.9, 0.9)
    rgb[find_boundaries(nuclei, mode="inner") & (nuclei > 0)] = (1.0, 0.85, 0.0)
    return rgb


def plot_segmentation_qc(
    qc: pd.DataFrame,
    objects: pd.DataFrame,
    examples: list[tuple[str, np.ndarray]],
    path: Path,
) -> None:
    """Write the QC figure.

    Parameters
    ----------
    qc : pandas.DataFrame
        Every field's QC record (``n_nuclei``, ``usable``, ``expected_nucleus_area``).
    objects : pandas.DataFrame
        The objects (``kind``, ``area``).
    examples : list
        (title, RGB picture from :func:`outlined`) of the fields to show.
    path : Path
        The PNG written.
    """
    plt = _pyplot()
    n = max(1, len(examples))
    fig = plt.figure(figsize=(4 * max(n, 2), 7.5))
    grid = fig.add_gridspec(2, max(n, 2))
    ax = fig.add_subplot(grid[0, : max(n, 2) // 2])
    usable = usable_mask(qc)
    ax.hist([qc.loc[usable, "n_nuclei"], qc.loc[~usable, "n_nuclei"]], bins=30, stacked=True,
            label=[f"usable ({usable.sum()})", f"flagged ({(~usable).sum()})"])  # fmt: skip
    ax.set(xlabel="nuclei per field", ylabel="fields", title="Objects per field")
    ax.legend()
    ax = fig.add_subplot(grid[0, max(n, 2) // 2 :])
    areas = objects.loc[objects["kind"] == "nucleus", "area"]
    ax.hist(areas, bins=50, color="tab:orange")
    expected = float(qc["expected_nucleus_area"].iloc[0]) if len(qc) else float("nan")
    ax.axvline(expected, color="k", ls="--", label=f"expected {expected:.0f} px")
    ax.set(xlabel="nucleus area (px)", ylabel="nuclei", title=f"Nucleus areas ({len(areas)})")
    ax.legend()
    for i, (title, picture) in enumerate(examples):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(picture)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
