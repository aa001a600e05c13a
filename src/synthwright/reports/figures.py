"""Figures for the reports: drawn on matplotlib's Agg canvas directly (no pyplot global state)
and returned as PNG bytes, so a page can embed them as data URIs."""

from __future__ import annotations

import io

from synthwright.errors import require_module


def new_figure(width: float, height: float):
    """An empty matplotlib Figure of `width` x `height` inches, on its own canvas."""
    require_module("matplotlib", "Report figures", "'synthwright[embed]'  (or: pip install matplotlib)")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
