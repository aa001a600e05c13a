"""The judge report: per-judge statistics, position bias, agreement, circularity.

Built from judged rows alone (the columns `judge_rows` writes), so the CLI, the pipeline's
`judge_filter` stage and a later `calibrate` all report the same numbers from the same file.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from synthwright.core.lineage import Row, meta_of
from synthwright.judges.ensemble import agreement_table
from synthwright.judges.family import check_circularity, model_family
from synthwright.judges.apply import generators_of, judged_mode
from synthwright.judges.stats import to_scale


def detect_mode(rows: list[Row], prefix: str = "judge") -> str:
    """judged_mode, for rows that must have been judged."""
    mode = judged_mode(rows, prefix)
    if mode is None:
        raise ValueError(f"no judged rows: no column {prefix}_score or {prefix}_p_a")
    return mode


def member_values(rows: list[Row], prefix: str = "judge") -> dict[str, list[float]]:
    """Judge name -> its value (score or P(A)) on each row, for rows every judge judged."""
    key = "p_a" if detect_mode(rows, prefix) == "pairwise" else "score"
    names: list[str] = []
    for row in rows:
        for name in row.get(f"{prefix}_by") or {}:
            if name not in names:
                names.append(name)
    complete = [row for row in rows if all(name in (row.get(f"{prefix}_by") or {}) for name in names)]
    return {name: [float(row[f"{prefix}_by"][name][key]) for row in complete] for name in names}


def judge_models(rows: list[Row], prefix: str = "judge") -> dict[str, str | None]:
    """Judge name -> model spec, from the rows' lineage."""
    models: dict[str, str | None] = {}
    for row in rows:
        for key, value in (meta_of(row).get("scores") or {}).items():
            if key.startswith(prefix + ".") and isinstance(value, dict):
                models.setdefault(key[len(prefix) + 1 :], value.get("model"))
    return models


def _rate(flags: list[bool]) -> float | None:
    return float(np.mean(flags)) if flags else None


def pairwise_bias(details: list[dict[str, Any]]) -> dict[str, Any]:
    """Position bias of one judge from its per-order probabilities.

    first_wins_rate: share of single-order judgments won by the document shown first (0.5 is
    unbiased); consistency: share of pairs where both orders pick the same document.
    """
    firsts = [d["p_first_ab"] for d in details] + [d["p_first_ba"] for d in details]
    return {
        "n": len(details),
        "first_wins_rate": _rate([p > 0.5 for p in firsts]),
        "mean_p_first": float(np.mean(firsts)) if firsts else None,
        "consistency": _rate([bool(d["consistent"]) for d in details]),
        "a_wins_rate": _rate([d["p_a"] > 0.5 for d in details]),
        "a_wins_rate_a_first": _rate([d["p_first_ab"] > 0.5 for d in details]),
        "a_wins_rate_b_first": _rate([d["p_first_ba"] < 0.5 for d in details]),
    }


def pointwise_summary(details: list[dict[str, Any]]) -> dict[str, Any]:
    scores = [float(d["score"]) for d in details]
    criteria: dict[str, list[float]] = {}
    for d in details:
        for name, c in (d.get("criteria") or {}).items():
            criteria.setdefault(name, []).append(float(c["score"]))
    histogram = Counter(to_scale(scores))
    return {
        "n": len(scores),
        "mean": float(np.mean(scores)) if scores else None,
        "std": float(np.std(scores)) if scores else None,
        "histogram": {str(k): histogram.get(k, 0) for k in range(1, 6)},
        "criteria_mean": {name: float(np.mean(v)) for name, v in criteria.items()},
    }


def judge_report(rows: list[Row], prefix: str = "judge", generator: str | None = None) -> dict[str, Any]:
    """Everything worth knowing about how the judges judged these rows."""
    mode = detect_mode(rows, prefix)
    judged = [row for row in rows if row.get(f"{prefix}_by")]
    models = judge_models(judged, prefix)
    judges: dict[str, Any] = {}
    for name in member_values(judged, prefix):
        details = [row[f"{prefix}_by"][name] for row in judged if name in row[f"{prefix}_by"]]
        stats = pairwise_bias(details) if mode == "pairwise" else pointwise_summary(details)
        judges[name] = {"model": models.get(name), "family": model_family(models.get(name)), **stats}
    combined_key = f"{prefix}_p_a" if mode == "pairwise" else f"{prefix}_score"
    combined = [float(row[combined_key]) for row in judged]
    weights = (meta_of(judged[0]).get("scores") or {}).get(prefix, {}).get("weights") if judged else None
    generators = generators_of(rows, generator, prefix)
    circular = check_circularity(models, generators)
    return {
        "mode": mode,
        "rows": len(judged),
        "judges": judges,
        "combined": (
            {"a_wins_rate": _rate([p > 0.5 for p in combined]), "mean_p_a": float(np.mean(combined)) if combined else None}
            if mode == "pairwise" else
            {"mean": float(np.mean(combined)) if combined else None, "std": float(np.std(combined)) if combined else None,
             "histogram": {str(k): v for k, v in sorted(Counter(to_scale(combined)).items())}}
        ),
        "weights": weights,
        "agreement": agreement_table(member_values(judged, prefix), mode),
        "generators": generators,
        "circularity": [c.to_dict() for c in circular],
    }
