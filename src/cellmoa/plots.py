"""Figures (PNG, matplotlib): illumination functions, confusion matrices, accuracy across networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix(treatments: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Treatments counted by (true MoA, predicted MoA), rows and columns in ``classes`` order."""
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for true, pred in zip(treatments["Metadata_MoA"], treatments["predicted_moa"]):
        matrix[index[true], index[pred]] += 1
    return matrix


def plot_confusion(treatments: pd.DataFrame, classes: list[str], title: str, path: Path) -> None:
    plt = _pyplot()
    matrix = confusion_matrix(treatments, classes)
    size = max(4.0, 0.55 * len(classes) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted MoA")
    ax.set_ylabel("true MoA")
    for i in range(len(classes)):
        for j in range(len(classes)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="treatments")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_accuracy(summary: pd.DataFrame, path: Path) -> None:
    """Treatment accuracy per network with its Clopper-Pearson 95% interval (never a point at 100%,
    unlike a bootstrap), the paper's figure and chance."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.8 * len(summary) + 2.5, 4))
    x = np.arange(len(summary))
    acc = summary["treatment_accuracy"].to_numpy(dtype=float)
    lo = summary.get("treatment_accuracy_exact_ci_low", pd.Series(acc)).to_numpy(dtype=float)
    hi = summary.get("treatment_accuracy_exact_ci_high", pd.Series(acc)).to_numpy(dtype=float)
    ax.bar(x - 0.2, acc, 0.4, yerr=[acc - lo, hi - acc], capsize=4, label="this run (95% Clopper-Pearson)")
    from cellmoa.reporting import REFERENCE_COLUMN

    paper = summary[REFERENCE_COLUMN].to_numpy(dtype=float)
    if np.isfinite(paper).any():
        ax.bar(x + 0.2, np.nan_to_num(paper), 0.4, color="0.7", label="Kensert et al. 2019 (reference)")
    chance = summary["chance_accuracy"].to_numpy(dtype=float)
    ax.hlines(chance, x - 0.45, x + 0.45, colors="red", linestyles="dashed", label="chance")
    ax.set_xticks(x, summary["Metadata_Network"])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("treatment-level accuracy")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_illumination(functions: dict[str, np.ndarray], title: str, path) -> None:
    """A QC figure: one panel per channel showing the illumination function (centre-to-corner
    fall-off reads directly off the colour scale)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(functions), figsize=(4 * len(functions), 3.4), squeeze=False)
    for ax, (channel, function) in zip(axes[0], functions.items()):
        im = ax.imshow(function, cmap="viridis")
        ax.set_title(f"{channel}: max/min {function.max() / function.min():.2f}")
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
