"""Calibration against human labels: how far to trust the judge, and where to cut.

Given judged rows and a small human-labelled sample (JSONL: row id -> human score, or
pairwise preference), this reports agreement with bootstrap intervals and turns a target
into a threshold:

- pointwise: Spearman, Kendall's tau-b, quadratic-weighted kappa (judge scores rounded onto
  1-5) and MAE, for the combined score and each judge; then the lowest judge-score threshold
  whose kept rows a human rates >= `good_at_least` with precision >= the target (lowest =
  the most recall), with its precision and recall and their intervals;
- pairwise: accuracy of the combined verdict, of each judge, and of each single order alone
  (what asking only one order would have given), first-wins rate and both-orders
  consistency; then the smallest confidence margin |P(A) - 0.5| at which kept verdicts
  agree with humans at the target accuracy.

Precision and recall at a chosen threshold are binomial proportions: their intervals are
Wilson score intervals, which stay honest at 0 and 1 where a percentile bootstrap collapses.
They are estimated on the sample that chose the threshold, so they lean optimistic;
`conservative=True` picks the threshold by the interval's lower bound instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from synthwright.core.lineage import Row, row_key
from synthwright.errors import UserError
from synthwright.io.rows import numbered_jsonl
from synthwright.judges.family import check_circularity
from synthwright.judges.apply import generators_of
from synthwright.judges.report import detect_mode, judge_models, pairwise_bias
from synthwright.judges.stats import Estimate, bootstrap, cohen_kappa, kendall, spearman, to_scale

LABEL_KEYS = ("score", "preference", "label", "human")


# -- human labels ------------------------------------------------------------------------------
def _preference(value: Any) -> bool | None:
    """True if A is better, False if B, None for a tie. Accepts "a"/"b", true/false, 1/0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("a", "b", "tie"):
        return {"a": True, "b": False, "tie": None}[value.strip().lower()]
    raise ValueError(f"{value!r} is not a preference (use \"a\", \"b\" or \"tie\")")


def load_human_labels(path: str | Path, mode: str, id_key: str = "id", label_key: str | None = None) -> dict[str, Any]:
    """id -> human score (pointwise) or True/False/None = A/B/tie (pairwise)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Human labels file '{path}' does not exist.", "Give a JSONL file of {\"id\": ..., \"score\": ...} lines.")
    labels: dict[str, Any] = {}
    for number, record in numbered_jsonl(path):
        key = label_key or next((k for k in LABEL_KEYS if k in record), None)
        if key is None or id_key not in record or key not in record:
            raise UserError(
                f"{path}:{number}: needs an id field '{id_key}' and a label field ({label_key or ' / '.join(LABEL_KEYS)}).",
                'Write lines like {"id": "3f2a...", "score": 4} or {"id": "...", "preference": "a"}.',
            )
        try:
            value = float(record[key]) if mode == "pointwise" else _preference(record[key])
        except (TypeError, ValueError) as exc:
            raise UserError(f"{path}:{number}: label {record[key]!r} is not usable: {exc}.", "Pointwise labels are numbers; pairwise ones a/b/tie.") from None
        labels[str(record[id_key])] = value
    if not labels:
        raise UserError(f"Human labels file '{path}' has no labels.")
    return labels


# -- threshold choice ----------------------------------------------------------------------------
def wilson(successes: int, n: int, level: float = 0.95) -> Estimate:
    """A binomial proportion with its Wilson score interval."""
    if n == 0:
        return Estimate(None, n=0)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


@dataclass
class ThresholdChoice:
    """Keep rows scoring >= `threshold`; `precision`, `recall` and `kept` (fraction of the
    sample kept) are measured on the labelled sample. threshold None: the target is out of reach."""

    target: float
    threshold: float | None
    precision: Estimate
    recall: Estimate
    kept: Estimate
    conservative: bool
    note: str
    curve: list[dict[str, float]] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return self.threshold is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "threshold": self.threshold, "met": self.met, "conservative": self.conservative,
            "precision": self.precision.to_dict(), "recall": self.recall.to_dict(), "kept": self.kept.to_dict(),
            "note": self.note, "curve": self.curve,
        }


def choose_threshold(
    scores, good, target: float, *, level: float = 0.95, conservative: bool = False, min_kept: int = 5
) -> ThresholdChoice:
    """The lowest threshold t such that rows with score >= t are `good` with precision >= target.

    Lowest t keeps the most good rows (highest recall). `conservative` requires the Wilson
    lower bound of the precision, not its estimate, to reach the target. Thresholds that
    keep fewer than `min_kept` rows are not considered: a precision from two rows is noise.
    """
    scores, good = np.asarray(scores, float), np.asarray(good, bool)
    n, n_good = len(scores), int(good.sum())
    min_kept = min(min_kept, n)
    curve, chosen, best = [], None, None
    for t in np.unique(scores):  # ascending: each step keeps fewer rows
        kept = scores >= t
        n_kept = int(kept.sum())
        if n_kept < max(min_kept, 1):
            break
        hits = int((good & kept).sum())
        precision = wilson(hits, n_kept, level)
        curve.append({"threshold": float(t), "kept": n_kept, "precision": precision.value,
                      "recall": hits / n_good if n_good else None})
        value = precision.low if conservative else precision.value
        if best is None or precision.value > best[1]:
            best = (float(t), precision.value)
        if chosen is None and value >= target:
            chosen = float(t)
    if chosen is None:
        reach = f"; the best is {best[1]:.3f} at threshold {best[0]:g}" if best else ""
        what = "whose interval's lower bound reaches" if conservative else "reaches"
        return ThresholdChoice(target, None, Estimate(None), Estimate(None), Estimate(None), conservative,
                               f"no threshold {what} precision {target:g} on this sample{reach}", curve)
    kept = scores >= chosen
    hits = int((good & kept).sum())
    what = "every labelled row already meets the target: nothing needs dropping" if kept.all() else f"keeps rows scoring >= {chosen:g}"
    note = (
        f"{what}; precision and recall are measured on the {n} labelled rows that chose it"
        + ("" if conservative else " (optimistic: use the conservative option to pick by the interval's lower bound)")
    )
    return ThresholdChoice(
        target, chosen, wilson(hits, int(kept.sum()), level), wilson(hits, n_good, level),
        wilson(int(kept.sum()), n, level), conservative, note, curve,
    )


# -- agreement ----------------------------------------------------------------------------------
def pointwise_agreement(judge, human, *, resamples: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, Estimate]:
    judge, human = np.asarray(judge, float), np.asarray(human, float)
    boot = lambda f: bootstrap(f, len(judge), resamples=resamples, level=level, seed=seed)  # noqa: E731
    return {
        "spearman": boot(lambda i: spearman(judge[i], human[i])),
        "kendall": boot(lambda i: kendall(judge[i], human[i])),
        "qwk": boot(lambda i: cohen_kappa(to_scale(judge[i]), to_scale(human[i]), labels=range(1, 6), weights="quadratic")),
        "mae": boot(lambda i: float(np.mean(np.abs(judge[i] - human[i])))),
    }


def _correct(p_a: np.ndarray, human_a: np.ndarray) -> np.ndarray:
    """1 where the verdict agrees with the human, 0 where not, 0.5 for a judge tie."""
    return np.where(p_a == 0.5, 0.5, ((p_a > 0.5) == human_a).astype(float))


def pairwise_agreement(p_a, human_a, *, resamples: int = 1000, level: float = 0.95, seed: int = 0) -> Estimate:
    p_a, human_a = np.asarray(p_a, float), np.asarray(human_a, bool)
    correct = _correct(p_a, human_a)
    return bootstrap(lambda i: float(correct[i].mean()), len(p_a), resamples=resamples, level=level, seed=seed)


def _rate_estimate(flags, resamples: int, level: float, seed: int) -> Estimate:
    flags = np.asarray(flags, float)
    return bootstrap(lambda i: float(flags[i].mean()), len(flags), resamples=resamples, level=level, seed=seed)


# -- the whole report ----------------------------------------------------------------------------
def _keyed_by_every_name(rows: dict[int, Row], id_column: str) -> dict[str, Row]:
    """Each row under each name a label may use for it: its 0-based position, its id column,
    its `_meta.id` (a later name wins a clash). Labels written against a file's own ids still
    match after a synthwright step gave its rows lineage ids."""
    keyed: dict[str, Row] = {str(i): row for i, row in rows.items()}
    keyed.update({str(row[id_column]): row for row in rows.values() if row.get(id_column) is not None})
    keyed.update({row_key(row, i, id_column): row for i, row in rows.items()})
    return keyed


def calibrate(
    rows: list[Row],
    labels: dict[str, Any],
    *,
    prefix: str = "judge",
    id_column: str = "id",
    good_at_least: float = 3.0,
    target: float = 0.9,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    conservative: bool = False,
    min_kept: int = 5,
) -> dict[str, Any]:
    """Agreement of the judged `rows` with human `labels` and the threshold that meets `target`
    (precision for pointwise, accuracy for pairwise). A JSON-ready dict; `format_report` in
    the CLI prints it."""
    mode = detect_mode(rows, prefix)
    value_key, combined_col = ("p_a", f"{prefix}_p_a") if mode == "pairwise" else ("score", f"{prefix}_score")
    judged = {i: row for i, row in enumerate(rows) if row.get(combined_col) is not None}
    keyed = _keyed_by_every_name(judged, id_column)
    ties = sorted(k for k, v in labels.items() if v is None)
    matched = [k for k in labels if k in keyed and labels[k] is not None]
    if len(matched) < 3:
        raise UserError(
            f"Only {len(matched)} human label(s) match judged rows (of {len(labels)} labels, {len(judged)} judged rows).",
            f"Label ids must be the rows' _meta.id, or their '{id_column}' column, or their 0-based position.",
        )
    sample = [keyed[k] for k in matched]
    names = list(sample[0].get(f"{prefix}_by") or {})
    judge_value = {name: np.array([row[f"{prefix}_by"][name][value_key] for row in sample], float) for name in names}
    combined = np.array([row[combined_col] for row in sample], float)
    options = {"resamples": resamples, "level": level, "seed": seed}
    report: dict[str, Any] = {
        "mode": mode, "matched": len(matched), "labels": len(labels), "unmatched_labels": len(labels) - len(matched) - len(ties),
        "ties_left_out": len(ties), "level": level, "resamples": resamples,
    }
    if mode == "pointwise":
        human = np.array([labels[k] for k in matched], float)
        report["agreement"] = {"combined": _dicts(pointwise_agreement(combined, human, **options))}
        report["judges"] = {name: _dicts(pointwise_agreement(v, human, **options)) for name, v in judge_value.items()}
        choice = choose_threshold(combined, human >= good_at_least, target, level=level, conservative=conservative, min_kept=min_kept)
        report["target"] = {"kind": "precision", "good_at_least": good_at_least, "value": target}
        weights = {name: max(0.0, report["judges"][name]["spearman"]["value"] or 0.0) for name in names}
        all_scores = np.array([row[combined_col] for row in judged.values()], float)
    else:
        human_a = np.array([labels[k] for k in matched], bool)
        report["agreement"] = {"combined": {"accuracy": pairwise_agreement(combined, human_a, **options).to_dict()}}
        report["judges"] = {}
        for name in names:
            details = [row[f"{prefix}_by"][name] for row in sample]
            first_ab = np.array([d["p_first_ab"] for d in details])
            first_ba = np.array([d["p_first_ba"] for d in details])
            report["judges"][name] = {
                "accuracy": pairwise_agreement(judge_value[name], human_a, **options).to_dict(),
                "accuracy_a_first": pairwise_agreement(first_ab, human_a, **options).to_dict(),
                "accuracy_b_first": pairwise_agreement(1.0 - first_ba, human_a, **options).to_dict(),
                "first_wins_rate": _rate_estimate(np.concatenate([first_ab > 0.5, first_ba > 0.5]), **options).to_dict(),
                "consistency": _rate_estimate([d["consistent"] for d in details], **options).to_dict(),
                "bias_on_all_rows": pairwise_bias([row[f"{prefix}_by"][name] for row in judged.values() if name in row[f"{prefix}_by"]]),
            }
        confident = np.abs(combined - 0.5) * 2.0
        correct = _correct(combined, human_a) == 1.0
        choice = choose_threshold(confident, correct, target, level=level, conservative=conservative, min_kept=min_kept)
        report["target"] = {"kind": "accuracy", "value": target, "on": "confidence |P(A) - 0.5| * 2"}
        weights = {name: max(0.0, 2.0 * report["judges"][name]["accuracy"]["value"] - 1.0) for name in names}
        all_scores = np.abs(np.array([row[combined_col] for row in judged.values()], float) - 0.5) * 2.0
    report["threshold"] = choice.to_dict()
    if choice.met:
        report["threshold"]["data_drop_fraction"] = float(np.mean(all_scores < choice.threshold))
    report["suggested_weights"] = weights if sum(weights.values()) > 0 else None
    models = judge_models(rows, prefix)
    report["circularity"] = [c.to_dict() for c in check_circularity(models, generators_of(rows, prefix=prefix))]
    return report


def _dicts(estimates: dict[str, Estimate]) -> dict[str, dict]:
    return {name: e.to_dict() for name, e in estimates.items()}
