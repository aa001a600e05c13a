"""Keep or drop rows by judge score: the bottom q% (default 15%), or below a threshold.

Dropped rows keep every judge column (scores, probabilities, reasons), so what was dropped
and why can be read back and audited. Ranking ties are broken by row id, so the same input
always drops the same rows.
"""

from __future__ import annotations

import math

from synthwright.core.lineage import Row, row_id
from synthwright.errors import UserError

DEFAULT_DROP_BOTTOM = 0.15


def confidence(p_a: float) -> float:
    """How sure a pairwise verdict is: 0 at P(A)=0.5, 1 at 0 or 1."""
    return abs(p_a - 0.5) * 2.0


def _fmt(value: float) -> str:
    return f"{value:g}"


def select_by_score(
    rows: list[Row],
    column: str,
    *,
    drop_bottom: float | None = None,
    threshold: float | None = None,
    by_confidence: bool = False,
) -> tuple[list[Row], list[tuple[Row, str]]]:
    """(kept rows, [(dropped row, reason)]), both in input order.

    `threshold`: drop rows scoring below it. `drop_bottom`: drop the lowest-scoring fraction
    (floor(q * n) rows, so never more than asked). Neither: drop the bottom 15%.
    `by_confidence` ranks pairwise rows by |P(A) - 0.5| instead of P(A).
    """
    if drop_bottom is not None and threshold is not None:
        raise UserError("Give either a drop fraction or a threshold, not both.")
    if threshold is None and drop_bottom is None:
        drop_bottom = DEFAULT_DROP_BOTTOM
    if drop_bottom is not None and not 0.0 <= drop_bottom < 1.0:
        raise UserError(f"The drop fraction must be in [0, 1), not {drop_bottom}.", "E.g. 0.15 drops the bottom 15%.")
    missing = [i for i, row in enumerate(rows) if not isinstance(row.get(column), (int, float))]
    if missing:
        raise UserError(f"Row {missing[0]} has no numeric '{column}' column.", "Judge the rows first, or name the score column.")
    values = [confidence(row[column]) if by_confidence else float(row[column]) for row in rows]
    what = f"{column}_confidence" if by_confidence else column
    if threshold is not None:
        reason = f"{what}_below_{_fmt(threshold)}"
        dropped_at = {i for i, v in enumerate(values) if v < threshold}
    else:
        count = math.floor(drop_bottom * len(rows) + 1e-9)
        order = sorted(range(len(rows)), key=lambda i: (values[i], str(row_id(rows[i]) or ""), i))
        dropped_at = set(order[:count])
        reason = f"{what}_bottom_{_fmt(drop_bottom * 100)}pct"
    kept = [row for i, row in enumerate(rows) if i not in dropped_at]
    dropped = [(row, reason) for i, row in enumerate(rows) if i in dropped_at]
    return kept, dropped
