"""2-D projection of real and synthetic embeddings together (UMAP by default, t-SNE or PCA
on request), and an interactive scatter as inline SVG: hover a point to read its text,
tick a box to hide a set. No JavaScript library and no network: it opens from disk.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence

import numpy as np

from synthwright.errors import UserError, require_module

METHODS = ("umap", "tsne", "pca")
MAX_POINTS = 3000  # more points add nothing to the picture and slow UMAP/t-SNE down


def project(vectors: np.ndarray, method: str = "umap", *, seed: int = 0) -> np.ndarray:
    """(n, 2) coordinates of `vectors` (the real and synthetic sets stacked, fit together so
    they share one map)."""
    vectors = np.asarray(vectors, np.float32)
    n = len(vectors)
    if n < 4:
        raise UserError(f"A 2-D projection needs at least 4 rows, not {n}.")
    if method == "pca":
        centred = vectors - vectors.mean(axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        return centred @ components[:2].T
    if method == "umap":
        umap = require_module("umap", "The UMAP projection", "'synthwright[validate]'")
        # Cosine matches how the embeddings are compared everywhere else.
        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), min_dist=0.1, metric="cosine", random_state=seed, n_jobs=1)
        return np.asarray(reducer.fit_transform(vectors))
    if method == "tsne":
        require_module("sklearn", "The t-SNE projection", "'synthwright[validate]'")
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", metric="cosine", random_state=seed).fit_transform(vectors)
    raise UserError(f"Unknown projection '{method}'.", f"Use one of: {', '.join(METHODS)}.")


def sample_for_plot(n_real: int, n_synthetic: int, limit: int = MAX_POINTS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (real, synthetic) to draw: all, or a seeded sample keeping the ratio."""
    rng = np.random.default_rng(seed)
    total = n_real + n_synthetic
    pick = lambda n, share: np.arange(n) if total <= limit else np.sort(rng.choice(n, size=max(1, round(limit * share)), replace=False))
    return pick(n_real, n_real / total), pick(n_synthetic, n_synthetic / total)


COLOURS = {"real": "#4c72b0", "synthetic": "#dd8452"}


def scatter_svg(coords: np.ndarray, labels: Sequence[str], texts: Sequence[str], *, width: int = 720, height: int = 560, title: str = "") -> str:
    """An HTML fragment: an SVG scatter with a <title> tooltip per point and a checkbox per
    set. Every text is escaped; the element ids are unique per call."""
    coords = np.asarray(coords, float)
    low, high = coords.min(axis=0), coords.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    pad = 14
    xy = pad + (coords - low) / span * [width - 2 * pad, height - 2 * pad]
    xy[:, 1] = height - xy[:, 1]  # SVG y grows downwards
    uid = "proj" + hashlib.sha256(coords.tobytes() + title.encode()).hexdigest()[:8]  # stable across runs, unique per plot
    groups = []
    for label in dict.fromkeys(labels):
        points = "".join(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{html.escape(label)}: {html.escape(_clip(text))}</title></circle>'
            for (x, y), lab, text in zip(xy, labels, texts) if lab == label
        )
        colour = COLOURS.get(label, "#55a868")
        groups.append(f'<g class="{uid}-{html.escape(label)}" fill="{colour}" fill-opacity="0.55">{points}</g>')
    boxes = " ".join(
        f'<label style="color:{COLOURS.get(label, "#55a868")}"><input type="checkbox" checked '
        f'onchange="document.querySelectorAll(\'.{uid}-{html.escape(label)}\').forEach(function(g){{g.style.display=this.checked?\'\':\'none\';}},this)"> '
        f'{html.escape(label)} ({sum(1 for lab in labels if lab == label):,})</label>'
        for label in dict.fromkeys(labels)
    )
    return (f'<div class="scatter"><div>{html.escape(title)} {boxes}</div>'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'style="border:1px solid #ccc;background:#fff">{"".join(groups)}</svg>'
            f'<div class="hint">Hover a point to read its row.</div></div>')


def _clip(text: str, width: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
