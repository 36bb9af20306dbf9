"""Figures (PNG, matplotlib): illumination, confusion matrices, accuracy across networks.

Also the matching, the profile maps, the unannotated compounds and the calibration of their
prediction sets. matplotlib is imported only when a figure is drawn (:func:`_pyplot`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.columns import (
    BATCH,
    COMPOUND,
    CONCENTRATION,
    MOA,
    NETWORK,
    PROB_PREFIX,
    is_metadata,
)
from cellmoa.report.tables import REFERENCE_COLUMN


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix(treatments: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Treatments counted by (true MoA, predicted MoA), rows and columns in ``classes`` order."""
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for true, pred in zip(treatments[MOA], treatments["predicted_moa"]):
        matrix[index[true], index[pred]] += 1
    return matrix


def plot_confusion(treatments: pd.DataFrame, classes: list[str], title: str, path: Path) -> None:
    """The confusion matrix of treatments (true MoA x predicted MoA) as a figure at ``path``."""
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
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black",
                    fontsize=8,
                )
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="treatments")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_accuracy(summary: pd.DataFrame, path: Path) -> None:
    """Treatment accuracy per network with its Clopper-Pearson 95% interval.

    Never a point at 100%, unlike a bootstrap; beside it the paper's figure and chance.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.8 * len(summary) + 2.5, 4))
    x = np.arange(len(summary))
    acc = summary["treatment_accuracy"].to_numpy(dtype=float)
    lo = summary.get("treatment_accuracy_exact_ci_low", pd.Series(acc)).to_numpy(dtype=float)
    hi = summary.get("treatment_accuracy_exact_ci_high", pd.Series(acc)).to_numpy(dtype=float)
    ax.bar(
        x - 0.2,
        acc,
        0.4,
        yerr=[acc - lo, hi - acc],
        capsize=4,
        label="this run (95% Clopper-Pearson)",
    )
    paper = summary[REFERENCE_COLUMN].to_numpy(dtype=float)
    if np.isfinite(paper).any():
        ax.bar(
            x + 0.2, np.nan_to_num(paper), 0.4, color="0.7", label="Kensert et al. 2019 (reference)"
        )
    chance = summary["chance_accuracy"].to_numpy(dtype=float)
    ax.hlines(chance, x - 0.45, x + 0.45, colors="red", linestyles="dashed", label="chance")
    ax.set_xticks(x, summary[NETWORK])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("treatment-level accuracy")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_illumination(functions: dict[str, np.ndarray], title: str, path) -> None:
    """A QC figure: one panel per channel showing the illumination function.

    The centre-to-corner fall-off reads directly off the colour scale.
    """
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


def plot_matching(summary: pd.DataFrame, path: Path) -> None:
    """NSC and NSCB 1-NN accuracy (Clopper-Pearson 95% intervals) and mAP of every summary row.

    The networks and the ensemble, raw profiles beside post-processed ones where the summary has
    them (``pp_*`` columns).
    """
    plt = _pyplot()
    rows = summary[
        np.isfinite(
            summary.get("nn_nsc_accuracy", pd.Series(np.nan, index=summary.index)).astype(float)
        )
    ]
    variants = [("", "raw")] + (
        [("pp_", "post-processed")] if "pp_nn_nsc_accuracy" in rows.columns else []
    )
    bars = [(prefix, scheme, label) for scheme in ("nsc", "nscb") for prefix, label in variants]
    fig, (ax, ax_map) = plt.subplots(1, 2, figsize=(2.2 * max(len(rows), 1) + 6, 4.2))
    x = np.arange(len(rows))
    width = 0.8 / len(bars)
    colours = {
        ("", "nsc"): "#9ecae1",
        ("pp_", "nsc"): "#3182bd",
        ("", "nscb"): "#fdae6b",
        ("pp_", "nscb"): "#e6550d",
    }
    for k, (prefix, scheme, label) in enumerate(bars):
        acc = rows[f"{prefix}nn_{scheme}_accuracy"].to_numpy(dtype=float)
        lo = rows[f"{prefix}nn_{scheme}_exact_ci_low"].to_numpy(dtype=float)
        hi = rows[f"{prefix}nn_{scheme}_exact_ci_high"].to_numpy(dtype=float)
        ax.bar(
            x - 0.4 + (k + 0.5) * width,
            acc,
            width,
            yerr=[acc - lo, hi - acc],
            capsize=3,
            color=colours[(prefix, scheme)],
            label=f"{scheme.upper()} {label}",
        )
        values = rows[f"{prefix}map_{scheme}"].to_numpy(dtype=float)
        ax_map.bar(
            x - 0.4 + (k + 0.5) * width,
            values,
            width,
            color=colours[(prefix, scheme)],
            label=f"{scheme.upper()} {label}",
        )
    for a, ylabel in (
        (ax, "1-NN treatment accuracy (95% Clopper-Pearson)"),
        (ax_map, "mean average precision"),
    ):
        a.set_xticks(x, rows[NETWORK], fontsize=8)
        a.set_ylim(0, 1.05)
        a.set_ylabel(ylabel, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def principal_components(x: np.ndarray, n: int = 2) -> np.ndarray:
    """The rows of ``x`` on their first ``n`` principal components.

    An SVD of the centred rows, the sign of each component fixed so that its largest loading is
    positive; zeros where there are too few rows.

    Examples
    --------
    >>> x = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    >>> principal_components(x, 1).ravel().round(6).tolist()
    [-2.0, 0.0, 2.0]
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return np.zeros((len(x), n))
    centred = x - x.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(n, len(s))
    signs = np.sign(vt[:k][np.arange(k), np.abs(vt[:k]).argmax(axis=1)])
    out = np.zeros((len(x), n))
    out[:, :k] = u[:, :k] * s[:k] * signs
    return out


def plot_profile_map(variants: list[tuple[str, pd.DataFrame]], title: str, path: Path) -> None:
    """One panel per profile variant (raw, post-processed): treatment profiles on two PCs.

    The treatment profiles, scaled to unit length (the cosine geometry of the matching), on their
    first two principal components, coloured by MoA, one marker per batch (``Metadata_Batch``).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(variants), figsize=(5.2 * len(variants) + 1.5, 4.6), squeeze=False
    )
    moas = sorted({m for _, t in variants for m in t[MOA].astype(str)})
    cmap = plt.get_cmap("tab20" if len(moas) > 10 else "tab10")
    markers = "osD^vP*Xhp<>"
    for ax, (name, profiles) in zip(axes[0], variants):
        features = profiles.attrs.get("features") or [
            c for c in profiles.columns if not is_metadata(c)
        ]
        x = profiles[features].to_numpy(np.float64)
        # the geometry the matching sees: cosine similarity, i.e. unit-length profiles
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        xy = principal_components(x, 2)
        batches = [
            ";".join(sorted(b)) if isinstance(b, frozenset) else str(b)
            for b in profiles.get(BATCH, pd.Series(["all"] * len(profiles)))
        ]
        order = sorted(set(batches))
        for i, moa in enumerate(moas):
            for j, batch in enumerate(order):
                mask = (profiles[MOA].astype(str).to_numpy() == moa) & (np.array(batches) == batch)
                if mask.any():
                    ax.scatter(
                        xy[mask, 0],
                        xy[mask, 1],
                        color=cmap(i % cmap.N),
                        marker=markers[j % len(markers)],
                        s=40,
                        edgecolors="black",
                        linewidths=0.4,
                        label=f"{moa} / {batch}",
                    )
        ax.set_title(
            f"{name.replace('postprocessed', 'post-processed')} profiles (unit length)", fontsize=10
        )
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        fontsize=6,
        loc="center left",
        bbox_to_anchor=(0.8, 0.5),
        title="MoA / batch",
        title_fontsize=7,
    )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.8, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_unannotated(table: pd.DataFrame, title: str, path: Path) -> None:
    """Heat map of unannotated treatments (rows) x MoAs (columns).

    Rows in the table's order (most confident first): the treatment probabilities, the MoAs of
    each prediction set outlined, novel treatments marked in their label.
    """
    plt = _pyplot()
    prob_cols = [c for c in table.columns if str(c).startswith(PROB_PREFIX)]
    classes = [c[len(PROB_PREFIX) :] for c in prob_cols]
    values = table[prob_cols].to_numpy(np.float64) if len(table) else np.zeros((0, len(classes)))
    labels = [
        f"{c} {float(x):g} uM" + ("  [novel]" if bool(n) else "")
        for c, x, n in zip(table[COMPOUND], table[CONCENTRATION], table["novel"])
    ]
    fig, ax = plt.subplots(figsize=(0.7 * len(classes) + 5.5, 0.32 * max(len(table), 1) + 2.6))
    im = ax.imshow(
        values if len(table) else np.zeros((1, len(classes))),
        cmap="viridis",
        vmin=0,
        vmax=1,
        aspect="auto",
    )
    for i, members in enumerate(table["prediction_set"].fillna("")):
        for j, moa in enumerate(classes):
            if moa in str(members).split("; "):
                ax.add_patch(
                    plt.Rectangle(
                        (j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="white", linewidth=2
                    )
                )
    ax.set_xticks(range(len(classes)), classes, rotation=50, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.colorbar(
        im,
        ax=ax,
        fraction=0.046,
        pad=0.04,
        label="treatment probability (outlined: in the prediction set)",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_calibration(calibration: pd.DataFrame, path: Path) -> None:
    """Coverage of the prediction sets against the nominal level, and the mean set size.

    The empirical (leave-one-compound-out) coverage, one line per network and the ensemble
    (Clopper-Pearson band).
    """
    plt = _pyplot()
    fig, (ax, ax_size) = plt.subplots(1, 2, figsize=(10, 4.2))
    for name, rows in calibration.groupby(NETWORK, sort=False):
        rows = rows.sort_values("nominal_coverage")
        x = rows["nominal_coverage"].to_numpy(float)
        (line,) = ax.plot(x, rows["empirical_coverage"].to_numpy(float), marker="o", label=name)
        ax.fill_between(
            x,
            rows["coverage_ci_low"].to_numpy(float),
            rows["coverage_ci_high"].to_numpy(float),
            color=line.get_color(),
            alpha=0.12,
        )
        ax_size.plot(
            x, rows["mean_set_size"].to_numpy(float), marker="o", color=line.get_color(), label=name
        )
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="nominal")
    ax.set_xlim(0.45, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("coverage, leave one compound out (95% CI)")
    ax_size.set_xlabel("nominal coverage")
    ax_size.set_ylabel("mean prediction-set size (MoAs)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
