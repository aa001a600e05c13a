"""PNG figures for the validation report, drawn on matplotlib's Agg canvas directly (no
pyplot global state) and returned as bytes, so the report can embed them as data URIs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from synthwright.reports.figures import new_figure, png_bytes
from synthwright.validate.projection import COLOURS


def projection_png(coords: np.ndarray, labels: Sequence[str], title: str) -> bytes:
    figure = new_figure(7.5, 6)
    axes = figure.subplots()
    labels = np.asarray(labels)
    for label in dict.fromkeys(labels.tolist()):
        mask = labels == label
        axes.scatter(coords[mask, 0], coords[mask, 1], s=9, alpha=0.55, color=COLOURS.get(label, "#55a868"), label=f"{label} ({mask.sum():,})", linewidths=0)
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(loc="best")
    return png_bytes(figure)


def marginals_png(dimensions: Sequence) -> bytes:
    """One small panel per dimension: both distributions (share of rows per bin), d and KS."""
    columns = 3
    rows = max(1, math.ceil(len(dimensions) / columns))
    figure = new_figure(4.2 * columns, 2.9 * rows)
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for ax, dim in zip(axes, dimensions):
        hist = dim.histogram
        if hist:
            edges = np.asarray(hist["edges"])
            for side in ("real", "synthetic"):
                ax.stairs(hist[side], edges, color=COLOURS[side], fill=side == "real", alpha=0.45 if side == "real" else 1.0, label=side, linewidth=1.5)
        colour = "#c44e52" if dim.flagged else "black"
        ax.set_title(f"{dim.name}\nd={dim.cohen_d:+.2f}  KS={dim.ks_statistic:.2f} (p={dim.ks_pvalue:.2g})", fontsize=9, color=colour)
        ax.tick_params(labelsize=7)
        if dim.flagged:
            for spine in ax.spines.values():
                spine.set_color(colour)
                spine.set_linewidth(2)
    for ax in axes[len(dimensions):]:
        ax.axis("off")
    if len(dimensions):
        axes[0].legend(fontsize=7)
    return png_bytes(figure)


def scores_png(kept: Sequence[float], dropped: Sequence[float], name: str) -> bytes:
    figure = new_figure(7, 3.6)
    ax = figure.subplots()
    values = [v for v in (*kept, *dropped)]
    bins = np.linspace(min(values), max(values) if max(values) > min(values) else min(values) + 1, 31)
    if len(kept):
        ax.hist(kept, bins=bins, color="#55a868", alpha=0.7, label=f"kept ({len(kept):,})")
    if len(dropped):
        ax.hist(dropped, bins=bins, color="#c44e52", alpha=0.7, label=f"dropped ({len(dropped):,})")
    ax.set_xlabel(name)
    ax.set_ylabel("rows")
    ax.legend()
    ax.set_title("Judge scores of kept and dropped rows")
    return png_bytes(figure)


def calibration_png(curve: Sequence[dict], target: float | None) -> bytes:
    figure = new_figure(7, 3.6)
    ax = figure.subplots()
    xs = [p["threshold"] for p in curve]
    ax.plot(xs, [p["precision"] for p in curve], marker=".", label="precision (human-rated good)")
    ax.plot(xs, [p["recall"] if p["recall"] is not None else np.nan for p in curve], marker=".", label="recall")
    if target is not None:
        ax.axhline(target, color="#c44e52", linestyle="--", linewidth=1, label=f"target {target:g}")
    ax.set_xlabel("keep rows with judge score >= threshold")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("Judge calibration on the human-labelled sample")
    return png_bytes(figure)


def curves_png(train: Sequence, val: Sequence, verdict: str) -> bytes:
    figure = new_figure(7, 3.8)
    ax = figure.subplots()
    t, v = np.asarray(train, float), np.asarray(val, float)
    ax.plot(t[:, 0], t[:, 1], label="training loss (synthetic)", color=COLOURS["synthetic"])
    ax.plot(v[:, 0], v[:, 1], label="validation loss (real)", color=COLOURS["real"], marker="o", markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.set_title(f"Loss curves: {verdict}", color="black" if verdict == "tracks" else "#c44e52")
    return png_bytes(figure)


def rounds_png(rounds: Sequence[dict]) -> bytes:
    figure = new_figure(7, 3.4)
    ax = figure.subplots()
    names = [str(r["round"]) for r in rounds]
    ax.plot(names, [r["mean_pairwise_distance"] for r in rounds], marker="o", label="mean pairwise cosine distance")
    ax.set_xlabel("generation round")
    ax.set_ylabel("mean pairwise distance")
    ax.set_title("Diversity by generation round")
    return png_bytes(figure)
