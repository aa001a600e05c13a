"""HTML rendering of a validation report: one self-contained page. Figures are base64 data
URIs, the projection is inline SVG, the only script is a few inline lines; nothing is
fetched. Every string that comes from data (texts, column names, messages) is escaped."""

from __future__ import annotations

import html
import math
from typing import Any

from synthwright.validate.projection import scatter_svg
from synthwright.validate.report import ValidationReport, data_uri

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;margin:8px 0;font-size:0.92em}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f5f5f5}td.l,th.l{text-align:left}tr.flag td{background:#fde8e8}
.flags li{color:#a61d24}.ok{color:#2a7a2a}img{max-width:100%;border:1px solid #eee}.hint{color:#777;font-size:0.85em}
.muted{color:#777}blockquote{margin:4px 0;padding:4px 10px;border-left:3px solid #dd8452;background:#fafafa;white-space:pre-wrap}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _n(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    return _e(value)


def _table(header: list[str], rows: list[list[Any]], flagged: list[bool] | None = None) -> str:
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{_e(h)}</th>' for i, h in enumerate(header))
    body = "".join(
        f'<tr class="{"flag" if flagged and flagged[r] else ""}">' + "".join(f'<td class="{"l" if i == 0 else ""}">{_n(v)}</td>' for i, v in enumerate(row)) + "</tr>"
        for r, row in enumerate(rows)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(figures: dict[str, bytes], name: str, alt: str) -> str:
    return f'<img id="fig-{_e(name)}" alt="{_e(alt)}" src="{data_uri(figures[name])}">' if name in figures else ""


def render_html(report: ValidationReport, data: dict[str, Any], figures: dict[str, bytes]) -> str:
    flags = data["flags"]
    parts = [f"<h1>Validation against real data</h1><p class=\"muted\">{_e(', '.join(f'{k}: {v}' for k, v in data['inputs'].items()))}</p>"]
    parts.append('<section id="flags"><h2>Flags</h2>' + (
        '<ul class="flags">' + "".join(f"<li><b>{_e(f['section'])} / {_e(f['name'])}</b>: {_e(f['message'])}</li>" for f in flags) + "</ul>"
        if flags else '<p class="ok">No flags: the synthetic set passes every check that ran.</p>') + "</section>")
    dist = report.distribution
    if dist:
        c, t = dist.coverage, dist.two_sample
        parts.append(
            '<section id="coverage"><h2>Embedding coverage and two-sample test</h2>'
            f"<p>{dist.synthetic_rows:,} synthetic rows against {dist.real_rows:,} real rows; k-NN measures with k={c.k} "
            "(Naeem et al. 2020; about 0.97 coverage and 1.0 density when both come from one distribution).</p>"
            + _table(["measure", "value", "flag below / above"], [
                ["precision (synthetic rows inside real neighbourhoods)", c.precision, report.config.min_precision],
                ["recall (real rows inside synthetic neighbourhoods)", c.recall, report.config.min_recall],
                ["density", c.density, None],
                ["coverage (real neighbourhoods holding a synthetic row)", c.coverage, report.config.min_coverage],
                [f"two-sample AUC (logistic regression, {t.folds}-fold)", t.auc, report.config.max_auc],
                ["two-sample AUC, std across folds", t.auc_std, None],
            ])
            + "<p>Synthetic rows the classifier finds least real:</p>" + "".join(f"<blockquote>{_e(_clip(x))}</blockquote>" for x in dist.most_synthetic_looking)
            + "</section>"
        )
        if dist.projection:
            parts.append(
                f'<section id="projection"><h2>2-D projection ({_e(dist.projection["method"].upper())})</h2>'
                + _img(figures, "projection", "projection of real and synthetic embeddings")
                + "<h3>Interactive</h3>"
                + scatter_svg(dist.projection["coords"], dist.projection["labels"], dist.projection["texts"], title="Real and synthetic rows.")
                + "</section>"
            )
        header = ["dimension", "real mean", "real std", "synthetic mean", "synthetic std", "Cohen's d", "KS", "KS p", "flagged"]
        rows = [[d.name, d.real.get("mean"), d.real.get("std"), d.synthetic.get("mean"), d.synthetic.get("std"), d.cohen_d, d.ks_statistic, d.ks_pvalue, d.flagged]
                for d in dist.marginals]
        ks_note = f", or KS p-value below {report.config.ks_alpha:g}" if report.config.ks_alpha is not None else " (KS is reported, not flagged)"
        parts.append(
            '<section id="marginals"><h2>Marginals</h2>'
            f"<p>Flagged when |Cohen's d| (difference of means over the pooled standard deviation) exceeds {report.config.d_threshold:g}{_e(ks_note)}.</p>"
            + _table(header, rows, [d.flagged for d in dist.marginals])
            + "<ul class=\"muted\">" + "".join(f"<li><b>{_e(d.name)}</b>: {_e(d.description)}</li>" for d in dist.marginals) + "</ul>"
            + _img(figures, "marginals", "marginal distributions") + "</section>"
        )
        names = [k for k in ("mean_pairwise_distance", "clusters", "clusters_for_90pct", "rows") if k in dist.diversity["real"]]
        table_rows = [[name, dist.diversity["real"][name], dist.diversity["synthetic"][name]] for name in names]
        table_rows += [[f"nearest-neighbour distance {q}", v, dist.diversity["synthetic"]["nn_distance_quantiles"].get(q)] for q, v in dist.diversity["real"]["nn_distance_quantiles"].items()]
        table_rows += [[name, v, dist.diversity["synthetic"]["distinct_ngrams"].get(name)] for name, v in dist.diversity["real"]["distinct_ngrams"].items()]
        parts.append('<section id="diversity"><h2>Diversity, side by side</h2>' + _table(["measure", "real", "synthetic"], table_rows) + "</section>")
    if report.judge:
        j = report.judge
        parts.append('<section id="judge"><h2>Judge scores</h2>' + _table(["rows", "n", "mean", "min", "median", "max"], [
            ["kept", *(j["kept"].get(k) for k in ("n", "mean", "min", "median", "max"))],
            ["dropped", *(j["dropped"].get(k) for k in ("n", "mean", "min", "median", "max"))],
        ]) + _img(figures, "judge_scores", "judge score distribution") + "</section>")
    if report.calibration:
        cal = report.calibration
        rows = [[name, *(v.get("value") for v in est.values())] for name, est in {"combined": cal["agreement"]["combined"], **cal.get("judges", {})}.items() if isinstance(est, dict)]
        header = ["judge", *list(cal["agreement"]["combined"].keys())]
        threshold = cal.get("threshold", {})
        parts.append('<section id="calibration"><h2>Judge calibration (human sample)</h2>'
                     f"<p>{cal.get('matched', 0):,} human labels matched judged rows ({_e(cal.get('mode'))}).</p>"
                     + _table(header, [r[: len(header)] for r in rows])
                     + f"<p>Threshold: {_n(threshold.get('threshold'))}. {_e(threshold.get('note', ''))}</p>"
                     + _img(figures, "calibration", "calibration curve") + "</section>")
    if report.curves:
        cv = report.curves
        parts.append('<section id="curves"><h2>Training loop</h2>'
                     f"<p><b>{_e(cv.verdict)}</b>: {_e(cv.message)}</p>"
                     + _table(["measure", "value"], [["training loss start → end", f"{cv.train_start:.4g} → {cv.train_end:.4g}"],
                                                     ["real validation loss start → end (best)", f"{cv.val_start:.4g} → {cv.val_end:.4g} ({cv.val_best:.4g})"],
                                                     ["share of the training drop seen on real data", cv.transfer],
                                                     ["same, second half of training", cv.late_transfer]])
                     + _img(figures, "curves", "loss curves") + "</section>")
    if report.closed_loop or report.rounds:
        text = f"<p>{_e(report.closed_loop.message)}{' (overridden)' if report.closed_loop.overridden else ''}</p>" if report.closed_loop else ""
        if report.rounds and report.rounds["rounds"]:
            text += _table(["round", "rows", "mean pairwise distance", "clusters"],
                           [[str(r["round"]), r["rows"], r["mean_pairwise_distance"], r["clusters"]] for r in report.rounds["rounds"]])
            if report.rounds.get("shrinkage") is not None:
                text += f"<p>Diversity shrinkage first → last round: {report.rounds['shrinkage']:.1%}.</p>"
        parts.append('<section id="lineage"><h2>Lineage: closed loop and rounds</h2>' + text + _img(figures, "rounds", "diversity by round") + "</section>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>synthwright validation</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def render_projection_page(projection: dict[str, Any]) -> str:
    """The interactive projection on a page of its own."""
    body = scatter_svg(projection["coords"], projection["labels"], projection["texts"], width=960, height=720,
                       title=f"{projection['method'].upper()} of real and synthetic rows.")
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>projection</title><style>{STYLE}</style></head>"
            f"<body><h1>{_e(projection['method'].upper())} projection</h1>{body}</body></html>\n")


def _clip(text: str, width: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
