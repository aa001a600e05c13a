"""Judging rows: items out of columns, verdicts back into columns and lineage.

Columns written (with the default prefix `judge`):

pointwise  `judge_score`     combined overall score (1-5)
           `judge_criteria`  combined score per criterion (LLM judges)
pairwise   `judge_p_a`       combined P(A better), order-averaged
           `judge_winner`    "a", "b" or "tie"
both       `judge_by`        per judge: its score or P(A), criteria and probabilities,
                             each order's P(first wins), reason

and `_meta.scores` gets `judge` (combined, with the weights) and `judge.NAME` per judge (with
its model), so lineage says which model judged what. A row a judge could not judge is
returned as failed, with the reason, and gets no score.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from synthwright.core.lineage import Row, add_score, meta_of
from synthwright.judges.base import PairItem, PointItem
from synthwright.judges.ensemble import EnsembleOutcome, JudgeEnsemble, ProgressFactory
from synthwright.judges.family import Circularity, check_circularity, warn_circularity

Mode = Literal["pointwise", "pairwise"]


@dataclass(frozen=True)
class JudgeColumns:
    """Which columns hold what. Pairwise needs `context`; pointwise uses it when given."""

    text: str = "text"
    context: str | None = None
    a: str = "a"
    b: str = "b"
    prefix: str = "judge"

    def needed(self, mode: Mode) -> tuple[str, ...]:
        if mode == "pairwise":
            return tuple(c for c in (self.context, self.a, self.b) if c)
        return tuple(c for c in (self.text, self.context) if c)

    def score_column(self, mode: Mode) -> str:
        return f"{self.prefix}_p_a" if mode == "pairwise" else f"{self.prefix}_score"


def judged_mode(rows: Iterable[Row], prefix: str = "judge") -> Mode | None:
    """How rows were judged: pairwise when they carry PREFIX_p_a, pointwise with PREFIX_score,
    None when no row was judged. The one place that reads it from the columns."""
    rows = list(rows)
    columns = JudgeColumns(prefix=prefix)
    return next((mode for mode in ("pairwise", "pointwise") if any(columns.score_column(mode) in row for row in rows)), None)


@dataclass
class JudgedRows:
    rows: list[Row]  # judged rows, input order
    failed: list[tuple[Row, str]] = field(default_factory=list)
    circularity: list[Circularity] = field(default_factory=list)
    outcome: EnsembleOutcome | None = None


def generators_of(rows: list[Row], extra: str | None = None, prefix: str = "judge") -> list[str]:
    """The models that generated these rows: their lineage (`_meta.model`), a generator named
    when they were judged, and `extra`."""
    found: Counter = Counter()
    for row in rows:
        meta = meta_of(row)
        combined = (meta.get("scores") or {}).get(prefix)
        named = combined.get("generator") if isinstance(combined, dict) else None
        for model in (meta.get("model"), named):
            if model:
                found[str(model)] += 1
    names = [name for name, _ in found.most_common()]
    if extra and extra not in names:
        names.insert(0, extra)
    return names


def judge_rows(
    rows: list[Row],
    ensemble: JudgeEnsemble,
    mode: Mode = "pointwise",
    columns: JudgeColumns = JudgeColumns(),
    *,
    generator: str | None = None,
    progress: ProgressFactory | None = None,
    warn: bool = True,
) -> JudgedRows:
    """Judge every row with every member of `ensemble`; see the module doc for the columns."""
    if mode not in ("pointwise", "pairwise"):
        raise ValueError(f"mode must be 'pointwise' or 'pairwise', not {mode!r}")
    if mode == "pairwise" and not columns.context:
        raise ValueError("pairwise judging needs a context column (the query or instruction)")
    circular = check_circularity({j.name: j.model for j in ensemble.judges}, generators_of(rows, generator))
    if warn:
        warn_circularity(circular)
    usable, failed_early = [], {}
    for index, row in enumerate(rows):
        missing = [c for c in columns.needed(mode) if row.get(c) is None]
        if missing:
            failed_early[index] = f"missing_column: {', '.join(missing)}"
        else:
            usable.append(index)
    items = [_item(rows[i], mode, columns) for i in usable]
    outcome = ensemble.score(items, progress) if mode == "pointwise" else ensemble.compare(items, progress)
    models = {j.name: j.model for j in ensemble.judges}
    judged: dict[int, Row] = {}
    failed: dict[int, str] = dict(failed_early)
    for position, index in enumerate(usable):
        if outcome.failures[position] is not None:
            failed[index] = outcome.failures[position]
        else:
            judged[index] = _with_verdict(rows[index], outcome, position, mode, columns, models, generator)
    return JudgedRows(
        rows=[judged[i] for i in sorted(judged)],
        failed=[(rows[i], failed[i]) for i in sorted(failed)],
        circularity=circular,
        outcome=outcome,
    )


def _item(row: Row, mode: Mode, columns: JudgeColumns) -> PointItem | PairItem:
    if mode == "pairwise":
        return PairItem(context=str(row[columns.context]), a=str(row[columns.a]), b=str(row[columns.b]))
    context = str(row[columns.context]) if columns.context else None
    return PointItem(text=str(row[columns.text]), context=context)


def _with_verdict(
    row: Row, outcome: EnsembleOutcome, position: int, mode: Mode, columns: JudgeColumns, models: dict[str, str | None],
    generator: str | None,
) -> Row:
    p = columns.prefix
    combined = outcome.combined[position]
    by = {name: results[position].to_dict() for name, results in outcome.members.items()}
    row = dict(row)
    if mode == "pointwise":
        row[f"{p}_score"] = combined
        row[f"{p}_criteria"] = _combined_criteria(outcome, position)
    else:
        row[f"{p}_p_a"] = combined
        row[f"{p}_winner"] = "a" if combined > 0.5 else "b" if combined < 0.5 else "tie"
    row[f"{p}_by"] = by
    for name, detail in by.items():
        extra: dict[str, Any] = {"model": models[name]} if models.get(name) else {}
        if "criteria" in detail:
            extra["criteria"] = {c: v["score"] for c, v in detail["criteria"].items()}
        row = add_score(row, f"{p}.{name}", outcome.member_value(name, position), **extra)
    # A generator named by hand (not in lineage) is recorded, so later reports see it too.
    named = {"generator": generator} if generator else {}
    return add_score(row, p, combined, mode=mode, weights=outcome.weights, **named)


def _combined_criteria(outcome: EnsembleOutcome, position: int) -> dict[str, float]:
    """Per criterion, the weighted mean over the judges that scored it."""
    sums: dict[str, float] = {}
    weights: dict[str, float] = {}
    for name, results in outcome.members.items():
        w = outcome.weights.get(name, 0.0)
        for criterion, score in getattr(results[position], "criteria", {}).items():
            sums[criterion] = sums.get(criterion, 0.0) + w * score.score
            weights[criterion] = weights.get(criterion, 0.0) + w
    return {c: sums[c] / weights[c] for c in sums if weights[c] > 0}


__all__ = ["JudgeColumns", "JudgedRows", "judge_rows", "generators_of"]
