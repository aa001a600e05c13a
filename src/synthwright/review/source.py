"""What the review page shows: the steps of a run folder, or one rows file, as `Entry`s.

A source never takes a path from the page: steps are the folders the run has, rows are
found by the key they were given when loaded, and the only files written are the labels
and the calibration sample, under the source's own review folder.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from synthwright.core.lineage import Row, meta_of, row_key
from synthwright.errors import UserError

KINDS = ("out", "dropped", "failed")


@dataclass(frozen=True)
class Columns:
    """Which columns hold what the judge saw (shown first, labelled); the rest follow."""

    text: str = "text"
    context: str | None = None
    a: str = "a"
    b: str = "b"


@dataclass
class Entry:
    """One row as the page sees it: where it lives, its key, and what to show."""

    row: Row
    key: str
    step: str
    kind: str  # out, dropped or failed

    @property
    def meta(self) -> dict[str, Any]:
        return meta_of(self.row)

    @property
    def reason(self) -> str | None:
        return self.row.get("_drop_reason") or self.row.get("_failure")

    @property
    def persona(self) -> str | None:
        value = self.meta.get("persona_id")
        return None if value is None else str(value)

    @property
    def tags(self) -> list[str]:
        return [str(t) for t in self.meta.get("perturbations") or []]

    def texts(self, columns: Columns | None = None) -> list[tuple[str, str]]:
        """(column, text) for every text column, the judged ones first."""
        fields = [(k, v) for k, v in self.row.items() if isinstance(v, str) and not k.startswith("_") and not _judge_column(k)]
        if columns is None:
            return fields
        first = [c for c in (columns.context, columns.text, columns.a, columns.b) if c]
        return sorted(fields, key=lambda kv: first.index(kv[0]) if kv[0] in first else len(first))

    def other_fields(self) -> list[tuple[str, str]]:
        """Non-text, non-judge columns, as JSON."""
        return [
            (k, json.dumps(v, ensure_ascii=False, default=str)) for k, v in self.row.items()
            if not isinstance(v, str) and not k.startswith("_") and not _judge_column(k) and v is not None
        ]

    def lineage(self) -> list[tuple[str, Any]]:
        return [(k, v) for k, v in self.meta.items() if k != "scores" and v not in (None, [], {})]

    def score(self, prefix: str) -> float | None:
        """The combined judge value: score (pointwise) or P(A better) (pairwise)."""
        for column in (f"{prefix}_score", f"{prefix}_p_a"):
            if isinstance(self.row.get(column), (int, float)):
                return float(self.row[column])
        combined = (self.meta.get("scores") or {}).get(prefix)
        value = combined.get("score") if isinstance(combined, dict) else combined
        return float(value) if isinstance(value, (int, float)) else None

    def judges(self, prefix: str) -> list[dict[str, Any]]:
        """Per judge: name, value, criteria scores and reason (from the `PREFIX_by` column)."""
        found = []
        for name, detail in (self.row.get(f"{prefix}_by") or {}).items():
            if not isinstance(detail, dict):
                continue
            value = detail.get("score", detail.get("p_a"))
            criteria = {c: v.get("score") if isinstance(v, dict) else v for c, v in (detail.get("criteria") or {}).items() if v is not None}
            found.append({"name": name, "value": value, "criteria": criteria, "reason": detail.get("reason")})
        return found

    @cached_property
    def haystack(self) -> str:
        """Everything a search looks in, lowercased."""
        return (self.key + "\n" + json.dumps(self.row, ensure_ascii=False, default=str)).lower()


def _judge_column(name: str) -> bool:
    return name.endswith(("_score", "_criteria", "_by", "_p_a", "_winner"))


@dataclass
class Source:
    """Rows by step and kind, loaded on first use, with a key index across every step."""

    name: str
    review_dir: Path
    columns: Columns = field(default_factory=Columns)
    rubric_spec: str | None = None  # the judge step's rubric option, when the run says
    _entries: dict[tuple[str, str], list[Entry]] = field(default_factory=dict, init=False, repr=False)
    _keys: dict[str, dict[str, Entry]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def steps(self) -> list[str]:
        raise NotImplementedError

    def _load(self, step: str, kind: str) -> list[Row]:
        raise NotImplementedError

    def labels_path(self, step: str) -> Path:
        return self.review_dir / f"{step}.human.jsonl"

    def sample_path(self, step: str) -> Path:
        return self.review_dir / f"{step}.sample.json"

    def check_step(self, step: str) -> str:
        """`step` if it is one of this source's steps; anything else (a path, `..`) is refused."""
        if step not in self.steps():
            raise KeyError(step)
        return step

    def entries(self, step: str, kind: str = "out") -> list[Entry]:
        self.check_step(step)
        if kind not in KINDS:
            raise KeyError(kind)
        with self._lock:
            return self._entries_unlocked(step, kind)

    def _entries_unlocked(self, step: str, kind: str) -> list[Entry]:
        if (step, kind) not in self._entries:
            # Keys number rows the way `calibrate` does: kept rows first, then set-aside ones.
            offset = 0 if kind == "out" else sum(len(self._entries_unlocked(step, k)) for k in KINDS[: KINDS.index(kind)])
            self._entries[(step, kind)] = [Entry(row, row_key(row, offset + i), step, kind) for i, row in enumerate(self._load(step, kind))]
        return self._entries[(step, kind)]

    def step_entries(self, step: str, kinds: tuple[str, ...] = KINDS) -> list[Entry]:
        return [e for kind in kinds for e in self.entries(step, kind)]

    def counts(self, step: str) -> dict[str, int]:
        return {kind: len(self.entries(step, kind)) for kind in KINDS}

    def find(self, key: str, prefer_step: str | None = None) -> Entry | None:
        """A row by key: in `prefer_step` first, then the latest step that has it."""
        order = ([prefer_step] if prefer_step in self.steps() else []) + list(reversed(self.steps()))
        for step in order:
            if step not in self._keys:
                self._keys[step] = {e.key: e for e in reversed(self.step_entries(step))}  # first row wins a shared key
            if key in self._keys[step]:
                return self._keys[step][key]
        return None


class RunSource(Source):
    """A run folder written by `synthwright run`."""

    def __init__(self, path: Path):
        from synthwright.pipeline.rundir import RunDirectory

        self.run = RunDirectory(path)
        manifest = self.run.read_manifest()
        if manifest is None:
            raise UserError(f"'{path}' is not a run folder (no manifest.json).", "Give the folder `synthwright run` printed, or a .jsonl/.parquet file.")
        self._order = [s["name"] for s in (manifest.get("config") or {}).get("steps", [])]
        judge = next((s.get("with") or {} for s in (manifest.get("config") or {}).get("steps", []) if s.get("uses") == "judge"), {})
        columns = Columns(text=judge.get("text_column", "text"), context=judge.get("context_column"),
                          a=judge.get("a_column", "a"), b=judge.get("b_column", "b"))
        super().__init__(name=str(manifest.get("name") or path.name), review_dir=path / "review", columns=columns,
                         rubric_spec=judge.get("rubric"))

    def steps(self) -> list[str]:
        present = {p.name for p in (self.run.path / "steps").iterdir() if (p / "state.json").is_file()} if (self.run.path / "steps").is_dir() else set()
        # Pipeline order first; steps from an older config of the same run folder after.
        return [s for s in self._order if s in present] + sorted(present - set(self._order))

    def _load(self, step: str, kind: str) -> list[Row]:
        return list(self.run.rows(step, kind))


class FileSource(Source):
    """One rows file (JSONL or Parquet), and the `.dropped` file `synthwright judge` sets beside it."""

    def __init__(self, path: Path, columns: Columns):
        from synthwright.io.rows import check_row_format

        check_row_format(path)
        self.path = path
        self.step = path.with_suffix("").name
        super().__init__(name=path.name, review_dir=path.parent, columns=columns)

    def steps(self) -> list[str]:
        return [self.step]

    def labels_path(self, step: str) -> Path:
        return self.path.with_name(f"{self.step}.human.jsonl")

    def sample_path(self, step: str) -> Path:
        return self.path.with_name(f"{self.step}.sample.json")

    def _load(self, step: str, kind: str) -> list[Row]:
        from synthwright.io.rows import read_rows

        if kind == "out":
            return read_rows(self.path)
        sibling = self.path.with_name(f"{self.step}.dropped.jsonl")  # as `judge --drop-bottom` names it
        if kind == "dropped" and sibling.is_file():
            return read_rows(sibling)
        return []


def open_source(target: Path, columns: Columns | None = None) -> Source:
    """A run folder or a rows file; `columns` override what the run's judge step says."""
    if not target.exists():
        raise UserError(f"'{target}' does not exist.", "Give a run folder or a .jsonl/.parquet rows file.")
    if target.is_dir():
        source = RunSource(target)
        if columns is not None:
            source.columns = columns
        return source
    return FileSource(target, columns or Columns())


__all__ = ["KINDS", "Columns", "Entry", "FileSource", "RunSource", "Source", "open_source"]
