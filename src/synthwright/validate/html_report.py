"""HTML rendering of a validation report: one self-contained page, from the template
reports/templates/validation.html (autoescaped: every string that comes from data is escaped
by the template engine). Figures are base64 data URIs, the projection is inline SVG, the only
script is a few inline lines; nothing is fetched. This module only lays the report's figures
out as the rows the template's tables show."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from synthwright.reports import render
from synthwright.validate.projection import scatter_svg


def render_html(report: Any, data: dict[str, Any], figures: dict[str, bytes]) -> str:
    """The page for a ValidationReport, `data` its JSON form, `figures` its PNGs by name."""
    dist = report.distribution
    context: dict[str, Any] = {
        "inputs": ", ".join(f"{k}: {v}" for k, v in data["inputs"].items()), "flags": data["flags"], "figures": figures,
        "config": report.config, "dist": dist, "judge": report.judge, "calibration": report.calibration,
        "curves": report.curves, "closed_loop": report.closed_loop, "rounds": report.rounds,
    }
    if dist:
        context.update(_distribution_rows(report))
    if report.judge:
        context["judge_rows"] = [[tier, *(report.judge[tier].get(k) for k in ("n", "mean", "min", "median", "max"))] for tier in ("kept", "dropped")]
    if report.calibration:
        context.update(_calibration_rows(report.calibration))
    if report.curves:
        cv = report.curves
        context["curve_rows"] = [["training loss start → end", f"{cv.train_start:.4g} → {cv.train_end:.4g}"],
                                 ["real validation loss start → end (best)", f"{cv.val_start:.4g} → {cv.val_end:.4g} ({cv.val_best:.4g})"],
                                 ["share of the training drop seen on real data", cv.transfer],
                                 ["same, second half of training", cv.late_transfer]]
    if report.rounds and report.rounds["rounds"]:
        context["round_rows"] = [[str(r["round"]), r["rows"], r["mean_pairwise_distance"], r["clusters"]] for r in report.rounds["rounds"]]
    return str(render("validation.html", **context))


def _distribution_rows(report: Any) -> dict[str, Any]:
    dist, config = report.distribution, report.config
    c, t = dist.coverage, dist.two_sample
    diversity = dist.diversity
    names = [k for k in ("mean_pairwise_distance", "clusters", "clusters_for_90pct", "rows") if k in diversity["real"]]
    diversity_rows = [[name, diversity["real"][name], diversity["synthetic"][name]] for name in names]
    diversity_rows += [[f"nearest-neighbour distance {q}", v, diversity["synthetic"]["nn_distance_quantiles"].get(q)]
                       for q, v in diversity["real"]["nn_distance_quantiles"].items()]
    diversity_rows += [[name, v, diversity["synthetic"]["distinct_ngrams"].get(name)] for name, v in diversity["real"]["distinct_ngrams"].items()]
    projection = dist.projection
    return {
        "coverage_rows": [
            ["precision (synthetic rows inside real neighbourhoods)", c.precision, config.min_precision],
            ["recall (real rows inside synthetic neighbourhoods)", c.recall, config.min_recall],
            ["density", c.density, None],
            ["coverage (real neighbourhoods holding a synthetic row)", c.coverage, config.min_coverage],
            [f"two-sample AUC (logistic regression, {t.folds}-fold)", t.auc, config.max_auc],
            ["two-sample AUC, std across folds", t.auc_std, None],
        ],
        "least_real": [_clip(text) for text in dist.most_synthetic_looking],
        "scatter": Markup(scatter_svg(projection["coords"], projection["labels"], projection["texts"], title="Real and synthetic rows."))
        if projection else "",  # scatter_svg escapes every text it draws
        "marginal_rows": [[d.name, d.real.get("mean"), d.real.get("std"), d.synthetic.get("mean"), d.synthetic.get("std"), d.cohen_d,
                           d.ks_statistic, d.ks_pvalue, d.flagged] for d in dist.marginals],
        "marginal_flags": [d.flagged for d in dist.marginals],
        "ks_note": f", or KS p-value below {config.ks_alpha:g}" if config.ks_alpha is not None else " (KS is reported, not flagged)",
        "diversity_rows": diversity_rows,
    }


def _calibration_rows(calibration: dict[str, Any]) -> dict[str, Any]:
    estimates = {"combined": calibration["agreement"]["combined"], **calibration.get("judges", {})}
    header = ["judge", *list(calibration["agreement"]["combined"].keys())]
    rows = [[name, *(v.get("value") for v in est.values())] for name, est in estimates.items() if isinstance(est, dict)]
    return {"calibration_header": header, "calibration_rows": [row[: len(header)] for row in rows],
            "threshold": calibration.get("threshold", {})}


def render_projection_page(projection: dict[str, Any]) -> str:
    """The interactive projection on a page of its own."""
    scatter = scatter_svg(projection["coords"], projection["labels"], projection["texts"], width=960, height=720,
                          title=f"{projection['method'].upper()} of real and synthetic rows.")
    return str(render("projection.html", method=projection["method"], scatter=Markup(scatter)))


def _clip(text: str, width: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
