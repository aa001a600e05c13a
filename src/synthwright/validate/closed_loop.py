"""Closed-loop guard: training a student on data its own outputs (or its descendants')
helped make is how model collapse starts. Lineage says which model made each row
(`_meta.model`) and from which rows (`_meta.parents`); real rows carry `_meta.real: true`.

`check_closed_loop` refuses such a training set unless real rows anchor at least
`min_real_fraction` of it (or the caller overrides, and the report says so);
`diversity_by_round` shows whether diversity shrinks from one generation round to the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from synthwright.core.lineage import Row, meta_of
from synthwright.errors import UserError

DEFAULT_MIN_REAL_FRACTION = 0.2


def _model_name(spec: str) -> str:
    """'llamacpp:qwen2.5-coder-1.5b' and 'qwen2.5-coder-1.5b' name the same model."""
    spec = str(spec).strip().lower()
    return spec.split(":", 1)[1] if ":" in spec and "/" not in spec.split(":", 1)[0] else spec


def descends_from(model: str | None, student: str, model_parents: Mapping[str, str] | None = None) -> bool:
    """True if `model` is the student or, per `model_parents` (child -> parent model, e.g. a
    fine-tune of the student), one of its descendants."""
    parents = {_model_name(k): _model_name(v) for k, v in (model_parents or {}).items()}
    current, seen, target = _model_name(model) if model else None, set(), _model_name(student)
    while current and current not in seen:
        if current == target:
            return True
        seen.add(current)
        current = parents.get(current)
    return False


@dataclass
class ClosedLoopReport:
    student: str
    rows: int
    real_rows: int
    tainted_rows: int  # rows the student (or a descendant) made, directly or via a parent row
    real_fraction: float
    min_real_fraction: float
    tainted_models: list[str] = field(default_factory=list)
    overridden: bool = False

    @property
    def closed_loop(self) -> bool:
        return self.tainted_rows > 0

    @property
    def refused(self) -> bool:
        """Would training on these rows be refused (before any override)?"""
        return self.closed_loop and self.real_fraction < self.min_real_fraction

    @property
    def message(self) -> str:
        if not self.closed_loop:
            return f"no row descends from the student {self.student}"
        return (f"{self.tainted_rows:,} of {self.rows:,} rows descend from the student {self.student} "
                f"(via {', '.join(self.tainted_models)}); real rows anchor {self.real_fraction:.1%} of the set, "
                f"{'below' if self.refused else 'at least'} the required {self.min_real_fraction:.0%}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "closed_loop": self.closed_loop, "refused": self.refused, "message": self.message}


def check_closed_loop(
    rows: Sequence[Row], student_model: str, min_real_fraction: float = DEFAULT_MIN_REAL_FRACTION, *,
    override: bool = False, model_parents: Mapping[str, str] | None = None, ancestors: Sequence[Row] = (),
) -> ClosedLoopReport:
    """Check a would-be training set. Raises UserError when rows descend from `student_model`
    and real rows are less than `min_real_fraction` of the set, unless `override`.

    A row descends from the student when its `_meta.model` is the student (or a descendant
    model per `model_parents`), or when any ancestor row does: parents are followed through
    `rows` and `ancestors` (earlier rounds' rows, when they are not in the set itself).
    """
    if not 0 <= min_real_fraction <= 1:
        raise UserError(f"min_real_fraction must be within [0, 1], not {min_real_fraction}.")
    by_id = {str(meta_of(r)["id"]): r for r in [*ancestors, *rows] if meta_of(r).get("id") is not None}
    memo: dict[str, str | None] = {}

    def tainting_model(row: Row) -> str | None:
        """The student-descended model behind this row, or None. Iterative over parents."""
        stack, seen = [row], set()
        while stack:
            current = stack.pop()
            meta = meta_of(current)
            key = str(meta.get("id", id(current)))
            if key in seen:
                continue
            seen.add(key)
            if key in memo:
                if memo[key]:
                    return memo[key]
                continue
            if not meta.get("real") and descends_from(meta.get("model"), student_model, model_parents):
                memo[key] = str(meta["model"])
                return memo[key]
            stack.extend(by_id[str(p)] for p in meta.get("parents") or () if str(p) in by_id)
        return None

    real = sum(1 for r in rows if meta_of(r).get("real") is True)
    models = [tainting_model(r) for r in rows if meta_of(r).get("real") is not True]
    tainted = [m for m in models if m]
    report = ClosedLoopReport(
        student=student_model, rows=len(rows), real_rows=real, tainted_rows=len(tainted),
        real_fraction=real / len(rows) if rows else 0.0, min_real_fraction=min_real_fraction,
        tainted_models=sorted(set(tainted)), overridden=False,
    )
    if report.refused:
        if not override:
            raise UserError(
                f"Closed loop: {report.message}.",
                f"Mix in real rows (marked _meta.real: true) up to {min_real_fraction:.0%}, generate with another model, "
                "or override explicitly (--allow-closed-loop) if you accept the collapse risk.",
            )
        report.overridden = True
    return report


def diversity_by_round(rows: Sequence[Row], vectors=None, *, texts: Sequence[str] | None = None, text_key: str | None = None,
                       embedder: str = "minilm", max_shrinkage: float = 0.1) -> dict[str, Any]:
    """Diversity of the synthetic rows of each generation round (`_meta.round`), and how much
    the mean pairwise distance shrank from the first round to the last. Real rows and rows
    without a round are left out. `vectors` (aligned with `rows`) skips embedding.

    Returns {"rounds": [{"round", "rows", measures...}], "shrinkage", "flagged"}; shrinkage is
    1 - last/first mean pairwise distance (positive = the set got less diverse).
    """
    import numpy as np

    from synthwright.diversity import diversity_measures

    rounds: dict[Any, list[int]] = {}
    for i, row in enumerate(rows):
        meta = meta_of(row)
        if meta.get("round") is not None and not meta.get("real"):
            rounds.setdefault(meta["round"], []).append(i)
    if texts is None:
        key = text_key or next((k for k in ("text", "instruction", "prompt", "query", "question") if isinstance(rows[0].get(k), str)), None) if rows else None
        texts = [str(r.get(key, "")) for r in rows] if key else None
    if vectors is None and rounds:
        if texts is None:
            raise UserError("Cannot tell which column holds the text for diversity by round.", "Pass text_key.")
        from synthwright.embed import load_embedder

        vectors = load_embedder(embedder).embed(list(texts))
    result = []
    for number in sorted(rounds, key=lambda r: (str(type(r)), r)):
        index = rounds[number]
        if len(index) < 2:
            continue
        measures = diversity_measures(np.asarray(vectors)[index], [texts[i] for i in index] if texts else None)
        result.append({"round": number, **measures.to_dict()})
    shrinkage = None
    if len(result) >= 2 and result[0]["mean_pairwise_distance"] > 0:
        shrinkage = 1.0 - result[-1]["mean_pairwise_distance"] / result[0]["mean_pairwise_distance"]
    return {"rounds": result, "shrinkage": shrinkage, "max_shrinkage": max_shrinkage,
            "flagged": shrinkage is not None and shrinkage > max_shrinkage}
