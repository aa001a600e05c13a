"""Lineage: every row carries `_meta`, saying where it came from.

`_meta` holds the row id, the step and recipe that made it, the generator model and
template hash, parent row ids, generation round, persona id, perturbation tags and judge
scores as they are added. Ids are derived, not random, so a rerun makes the same ids.
"""

from __future__ import annotations

import hashlib
from typing import Any

META = "_meta"
Row = dict[str, Any]


def derive_id(*parts: Any) -> str:
    """A short stable id from its parts (same parts, same id)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def meta_of(row: Row) -> dict[str, Any]:
    return row.get(META) or {}


def row_id(row: Row) -> str | None:
    return meta_of(row).get("id")


def row_key(row: Row, index: int, id_column: str = "id") -> str:
    """How a row is named where people meet it (human labels, the review page): `_meta.id`,
    else the id column, else the row's position in its file (0-based)."""
    meta_id = meta_of(row).get("id")
    if meta_id is not None:
        return str(meta_id)
    if row.get(id_column) is not None:
        return str(row[id_column])
    return str(index)


def with_meta(row: Row, **fields: Any) -> Row:
    """A copy of `row` whose `_meta` is updated with `fields` (None values are left out)."""
    meta = dict(meta_of(row))
    meta.update({k: v for k, v in fields.items() if v is not None})
    return {**row, META: meta}


def child_row(parent: Row, step: str, sample_index: int = 0, /, **fields: Any) -> Row:
    """A new row made from `parent` by `step`: new id, parent recorded, lineage carried over."""
    parent_meta = meta_of(parent)
    new_id = derive_id(step, parent_meta.get("id"), sample_index)
    meta = {k: v for k, v in parent_meta.items() if k in INHERITED}
    meta.update({
        "id": new_id, "step": step, "sample_index": sample_index,
        "parents": [parent_meta["id"]] if parent_meta.get("id") else [],
    })
    meta.update({k: v for k, v in fields.items() if v is not None})
    return {**{k: v for k, v in parent.items() if k != META}, META: meta}


def add_score(row: Row, judge: str, value: float, **details: Any) -> Row:
    """Record a judge's score on a row (kept with the row through every later step)."""
    meta = dict(meta_of(row))
    scores = dict(meta.get("scores") or {})
    scores[judge] = {"score": value, **details} if details else value
    meta["scores"] = scores
    return {**row, META: meta}


# What a derived row keeps from its parent's lineage (the rest describes the parent alone).
INHERITED = ("persona_id", "round", "perturbations", "source")
