"""PNG plot for choosing epsilon: the nearest-neighbour distance histogram with the
candidate thresholds marked, and how many rows each threshold keeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthwright.diversity.epsilon import EpsilonReport
from synthwright.errors import require_module


def plot_epsilon(report: EpsilonReport, path: str | Path, title: str = "") -> Path:
    """Write the plot; uses matplotlib's Agg canvas directly (no pyplot global state)."""
    require_module("matplotlib", "The diversity plot", "'synthwright[embed]'")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    histogram, kept = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
    distances = report.nn_distance[np.isfinite(report.nn_distance)]
    histogram.hist(distances, bins=np.linspace(0, max(1.0, float(distances.max(initial=0))), 81), color="#4c72b0")
    for row in report.thresholds:
        histogram.axvline(row.threshold, color="#c44e52", linestyle="--", linewidth=0.9)
        histogram.text(row.threshold, histogram.get_ylim()[1] * 0.97, f" {row.threshold:g}", color="#c44e52", fontsize=7, rotation=90, va="top")
    histogram.set_xlabel("cosine distance to nearest neighbour")
    histogram.set_ylabel("rows")
    histogram.set_title("Nearest-neighbour distances")
    xs = [row.threshold for row in report.thresholds]
    kept.plot(xs, [row.kept for row in report.thresholds], marker="o", color="#55a868")
    for row in report.thresholds:
        kept.annotate(f"{row.kept_share:.0%}", (row.threshold, row.kept), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    lowest = min((row.kept for row in report.thresholds), default=0)
    kept.set_ylim(max(0, lowest - 0.1 * report.rows), report.rows * 1.03)  # zoomed: the differences are the point
    kept.set_xlabel("epsilon (cosine distance)")
    kept.set_ylabel("rows kept by semantic dedup")
    kept.set_title(f"Rows kept of {report.rows:,}")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
