"""What every filter reports: a keep/drop decision per row, a reason for each drop, and
counters that add up (seen = kept + sum of drops by reason)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from synthwright.errors import UserError


@dataclass(frozen=True)
class DropInfo:
    """Why a row was dropped: it duplicates the kept row `duplicate_of` (that row's id), and
    `measure` says how close they are (e.g. cosine_distance=0.04, rouge_l_f=0.82)."""

    reason: str
    duplicate_of: Any
    measure: str
    value: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FilterStats:
    seen: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def count(self, drop: DropInfo | None) -> None:
        self.seen += 1
        if drop is None:
            self.kept += 1
        else:
            self.dropped[drop.reason] += 1

    def as_dict(self) -> dict[str, Any]:
        return {"seen": self.seen, "kept": self.kept, "dropped": dict(self.dropped)}


def row_id(row: dict[str, Any], position: int, id_key: str | None) -> Any:
    """The row's id column when `id_key` is given, else its 0-based position in the input."""
    if id_key is None:
        return position
    try:
        return row[id_key]
    except KeyError:
        raise UserError(f"Row {position} has no '{id_key}' column to use as its id.", "Pick an id column every row has, or leave it out to use row positions.") from None


def row_text(row: dict[str, Any], position: int, text_key: str) -> str:
    value = row.get(text_key)
    if not isinstance(value, str):
        found = "no such column" if text_key not in row else f"a {type(value).__name__}"
        raise UserError(
            f"Row {position}: the text column '{text_key}' holds {found}, not a string.",
            f"Choose the text column with --text-key (this row has: {', '.join(sorted(row)) or 'no columns'}).",
        )
    return value
