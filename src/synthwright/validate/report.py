"""The whole validation of a synthetic set against real data, its flags, and the report:
one self-contained HTML page (figures embedded as data URIs, no network needed), a JSON
with every figure, and PNG/HTML files of the plots beside them.

Tiers, each optional beyond the first:
1. distribution: embedding coverage, classifier two-sample AUC, 2-D projection,
   per-dimension marginals, diversity side by side;
2. judge scores of kept and dropped rows, and calibration against human labels;
3. training-loop check of loss curves;
4. closed-loop guard and diversity by generation round.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthwright.validate.closed_loop import ClosedLoopReport
from synthwright.validate.coverage import (
    Coverage,
    TwoSampleTest,
    knn_coverage,
    two_sample_auc,
)
from synthwright.validate.curves import CurveCheck
from synthwright.validate.marginals import Dimension, compare_marginals


@dataclass
class ValidationConfig:
    """Thresholds that raise flags, and how the checks run.

    Coverage defaults come from splitting real instructions into random halves (precision,
    recall and coverage ~0.95-0.98, AUC 0.40-0.52 at ~300 rows a side), with room for noise.
    """

    k: int = 5
    d_threshold: float = 2.0  # flag a dimension when |Cohen's d| exceeds this
    ks_alpha: float | None = None  # also flag a dimension whose KS p-value is below this
    max_auc: float = 0.7
    min_precision: float = 0.8
    min_recall: float = 0.8
    min_coverage: float = 0.85
    min_diversity_ratio: float = 0.75  # synthetic / real mean pairwise distance
    projection: str | None = "umap"  # umap, tsne, pca, or None to skip
    syntax: bool = True  # spaCy parse features
    columns: list[str] | None = None  # numeric columns to compare (default: found in both)
    folds: int = 5
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Flag:
    section: str
    name: str
    value: float
    threshold: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Distribution:
    """Tier 1: how the synthetic set sits against the real one."""

    real_rows: int
    synthetic_rows: int
    coverage: Coverage
    two_sample: TwoSampleTest
    marginals: list[Dimension]
    diversity: dict[str, dict]
    projection: dict[str, Any] | None  # method, coords, labels, texts (a seeded sample)
    most_synthetic_looking: list[str] = field(default_factory=list)
    real_rows_that_look_synthetic: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        projection = None
        if self.projection:
            projection = {"method": self.projection["method"], "points": [
                {"x": float(x), "y": float(y), "set": lab} for (x, y), lab in zip(self.projection["coords"], self.projection["labels"])]}
        return {
            "real_rows": self.real_rows, "synthetic_rows": self.synthetic_rows, "coverage": self.coverage.to_dict(),
            "two_sample": self.two_sample.to_dict(), "marginals": [d.to_dict() for d in self.marginals],
            "diversity": self.diversity, "projection": projection,
            "most_synthetic_looking": self.most_synthetic_looking, "real_rows_that_look_synthetic": self.real_rows_that_look_synthetic,
        }


def compare_distributions(
    real_texts: Sequence[str], synthetic_texts: Sequence[str], real_vectors: np.ndarray, synthetic_vectors: np.ndarray,
    *, real_rows: Sequence[dict] = (), synthetic_rows: Sequence[dict] = (), config: ValidationConfig | None = None,
) -> Distribution:
    """Tier 1 on texts and their (normalised) embeddings, aligned row by row."""
    from synthwright.diversity import diversity_measures
    from synthwright.validate.projection import project, sample_for_plot

    config = config or ValidationConfig()
    real_vectors, synthetic_vectors = np.asarray(real_vectors, np.float32), np.asarray(synthetic_vectors, np.float32)
    coverage = knn_coverage(real_vectors, synthetic_vectors, k=config.k, seed=config.seed)
    test = two_sample_auc(real_vectors, synthetic_vectors, folds=config.folds, seed=config.seed)
    p_synth = test.p_synthetic[len(real_texts):]
    p_real = test.p_synthetic[: len(real_texts)]
    # What most gives the synthetic set away: its rows the classifier is surest about.
    telltale = [synthetic_texts[i] for i in np.argsort(-p_synth)[:5]]
    blended = [real_texts[i] for i in np.argsort(-p_real)[:5]]
    marginals = compare_marginals(real_texts, synthetic_texts, real_rows=real_rows, synthetic_rows=synthetic_rows, syntax=config.syntax,
                                  d_threshold=config.d_threshold, ks_alpha=config.ks_alpha, columns=config.columns)
    diversity = {"real": diversity_measures(real_vectors, real_texts, seed=config.seed).to_dict(),
                 "synthetic": diversity_measures(synthetic_vectors, synthetic_texts, seed=config.seed).to_dict()}
    projection = None
    if config.projection and config.projection != "none":
        pick_real, pick_synth = sample_for_plot(len(real_texts), len(synthetic_texts), seed=config.seed)
        coords = project(np.vstack([real_vectors[pick_real], synthetic_vectors[pick_synth]]), config.projection, seed=config.seed)
        projection = {
            "method": config.projection, "coords": coords,
            "labels": ["real"] * len(pick_real) + ["synthetic"] * len(pick_synth),
            "texts": [real_texts[i] for i in pick_real] + [synthetic_texts[i] for i in pick_synth],
        }
    return Distribution(len(real_texts), len(synthetic_texts), coverage, test, marginals, diversity, projection, telltale, blended)


def judge_tier(kept: Sequence[dict], dropped: Sequence[dict], score_column: str) -> dict[str, Any] | None:
    """Score distribution of kept and dropped rows (None when no row has the score column)."""
    def scores(rows):
        return np.array([r[score_column] for r in rows if isinstance(r.get(score_column), (int, float)) and not isinstance(r.get(score_column), bool)], float)

    k, d = scores(kept), scores(dropped)
    if not len(k) and not len(d):
        return None
    summary = lambda v: {"n": len(v), **({"mean": float(v.mean()), "min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())} if len(v) else {})}
    return {"score_column": score_column, "kept": summary(k), "dropped": summary(d), "kept_scores": k.tolist(), "dropped_scores": d.tolist()}


@dataclass
class ValidationReport:
    config: ValidationConfig
    distribution: Distribution | None = None
    judge: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    curves: CurveCheck | None = None
    closed_loop: ClosedLoopReport | None = None
    rounds: dict[str, Any] | None = None
    inputs: dict[str, Any] = field(default_factory=dict)

    # -- flags ------------------------------------------------------------------------------------
    def flags(self) -> list[Flag]:
        c, flags = self.config, []
        if self.distribution:
            dist = self.distribution
            for name, low in (("precision", c.min_precision), ("recall", c.min_recall), ("coverage", c.min_coverage)):
                value = getattr(dist.coverage, name)
                if value < low:
                    flags.append(Flag("coverage", name, value, low, f"k-NN {name} {value:.2f} is below {low:g}" + _COVERAGE_HINT[name]))
            auc = dist.two_sample.auc
            if auc > c.max_auc:
                flags.append(Flag("two_sample", "auc", auc, c.max_auc, f"a linear classifier tells synthetic from real with AUC {auc:.2f} (above {c.max_auc:g})"))
            for dim in dist.marginals:
                if dim.flagged:
                    why = f"Cohen's d {dim.cohen_d:+.2f} beyond ±{c.d_threshold:g}" if abs(dim.cohen_d) > c.d_threshold else f"KS p={dim.ks_pvalue:.2g} below {c.ks_alpha:g}"
                    flags.append(Flag("marginals", dim.name, dim.cohen_d, c.d_threshold,
                                      f"{dim.name}: synthetic mean {dim.synthetic.get('mean', float('nan')):.3g} vs real {dim.real.get('mean', float('nan')):.3g} ({why})"))
            real_d, synth_d = dist.diversity["real"]["mean_pairwise_distance"], dist.diversity["synthetic"]["mean_pairwise_distance"]
            if real_d and real_d > 0 and synth_d / real_d < c.min_diversity_ratio:
                flags.append(Flag("diversity", "mean_pairwise_distance_ratio", synth_d / real_d, c.min_diversity_ratio,
                                  f"synthetic rows are less diverse: mean pairwise distance {synth_d:.3f} vs real {real_d:.3f}"))
        if self.curves and self.curves.flagged:
            flags.append(Flag("curves", self.curves.verdict, self.curves.late_transfer, 0.0, self.curves.message))
        if self.closed_loop and self.closed_loop.refused:
            flags.append(Flag("closed_loop", "real_fraction", self.closed_loop.real_fraction, self.closed_loop.min_real_fraction,
                              self.closed_loop.message + (" (overridden)" if self.closed_loop.overridden else "")))
        if self.rounds and self.rounds.get("flagged"):
            flags.append(Flag("rounds", "diversity_shrinkage", self.rounds["shrinkage"], self.rounds["max_shrinkage"],
                              f"diversity shrank {self.rounds['shrinkage']:.0%} from the first generation round to the last"))
        if self.calibration and not self.calibration.get("threshold", {}).get("met", True):
            flags.append(Flag("calibration", "threshold", float("nan"), self.calibration["target"]["value"], self.calibration["threshold"]["note"]))
        return flags

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "inputs": self.inputs, "config": self.config.to_dict(), "flags": [f.to_dict() for f in self.flags()],
            "distribution": self.distribution.to_dict() if self.distribution else None,
            "judge": self.judge, "calibration": self.calibration,
            "curves": self.curves.to_dict() if self.curves else None,
            "closed_loop": self.closed_loop.to_dict() if self.closed_loop else None, "rounds": self.rounds,
        })

    # -- files ------------------------------------------------------------------------------------
    def figures(self) -> dict[str, bytes]:
        """name -> PNG bytes of every plot this report has."""
        from synthwright.validate import plots

        figures: dict[str, bytes] = {}
        dist = self.distribution
        if dist and dist.projection:
            figures["projection"] = plots.projection_png(dist.projection["coords"], dist.projection["labels"],
                                                         f"{dist.projection['method'].upper()} of the embeddings")
        if dist and dist.marginals:
            figures["marginals"] = plots.marginals_png(dist.marginals)
        if self.judge:
            figures["judge_scores"] = plots.scores_png(self.judge["kept_scores"], self.judge["dropped_scores"], self.judge["score_column"])
        if self.calibration and self.calibration.get("threshold", {}).get("curve"):
            figures["calibration"] = plots.calibration_png(self.calibration["threshold"]["curve"], self.calibration.get("target", {}).get("value"))
        if self.curves:
            figures["curves"] = plots.curves_png(self.curves.train, self.curves.val, self.curves.verdict)
        if self.rounds and len(self.rounds["rounds"]) >= 2:
            figures["rounds"] = plots.rounds_png(self.rounds["rounds"])
        return figures

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write report.html, validation.json, one PNG per figure and projection.html."""
        from synthwright.validate.html_report import render_html, render_projection_page

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        figures = self.figures()
        paths: dict[str, Path] = {}
        for name, png in figures.items():
            paths[name] = folder / f"{name}.png"
            paths[name].write_bytes(png)
        if self.distribution and self.distribution.projection:
            paths["projection_html"] = folder / "projection.html"
            paths["projection_html"].write_text(render_projection_page(self.distribution.projection), encoding="utf-8")
        data = self.to_dict()
        paths["json"] = folder / "validation.json"
        paths["json"].write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        paths["html"] = folder / "report.html"
        paths["html"].write_text(render_html(self, data, figures), encoding="utf-8")
        return paths


_COVERAGE_HINT = {
    "precision": ": many synthetic rows lie outside the real data's neighbourhoods",
    "recall": ": part of the real variety is never produced",
    "coverage": ": some real regions (topics) have no synthetic row near them",
}


def _clean(value: Any) -> Any:
    """JSON-safe: numpy to Python, NaN/inf to None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


__all__ = ["Distribution", "Flag", "ValidationConfig", "ValidationReport", "compare_distributions", "judge_tier"]
