"""Human labels for judge calibration: a stratified sample, a labels file that survives
anything, and a running agreement-with-judge figure.

The labels file is what `synthwright calibrate --human` reads, one line per row:

```
{"id": "3f2a...", "score": 3.67, "criteria": {"naturalness": 4, "difficulty": 3, ...}, "step": "judged", "at": ...}
{"id": "9b1c...", "preference": "a", "shown_first": "b", "step": "pairs", "at": ...}
```

It is rewritten whole on every label (temporary file, fsync, rename), so a crash, a killed
server or a closed tab never leaves half a line; a changed label replaces the old one.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from synthwright import atomic
from synthwright.errors import UserError
from synthwright.io.rows import numbered_jsonl
from synthwright.judges.apply import judged_mode
from synthwright.judges.rubric import DEFAULT_RUBRIC, Criterion, Rubric, load_rubric
from synthwright.judges.stats import spearman
from synthwright.review.source import Entry, Source

Mode = Literal["pointwise", "pairwise"]
POINT_BINS = 5  # judge scores 1-5, one bin per point of the scale
PAIR_BINS = 5  # P(A better) in fifths: confident B ... tie ... confident A
OVERALL = Criterion(name="overall", question="How good is this row overall?",
                    anchors=("useless", "poor", "acceptable", "good", "excellent"))


# -- the sample -----------------------------------------------------------------------------
def score_bin(value: float, mode: Mode) -> int:
    if mode == "pairwise":
        return min(int(value * PAIR_BINS), PAIR_BINS - 1)
    return min(max(math.floor(value + 0.5), 1), POINT_BINS) - 1


def stratified_sample(entries: Sequence[Entry], prefix: str, mode: Mode, size: int, seed: int) -> tuple[list[str], list[int]]:
    """Row keys spread evenly across judge-score bins, then shuffled; and how many each bin gave.

    A random sample mirrors the judge's score distribution, so the rare low scores (the rows
    a threshold is about) get few labels; equal shares per bin cover the whole scale. A bin
    with fewer rows than its share gives all it has and the rest go to the others.
    """
    bins: list[list[str]] = [[] for _ in range(PAIR_BINS if mode == "pairwise" else POINT_BINS)]
    for entry in entries:
        value = entry.score(prefix)
        if value is not None and not math.isnan(value):
            bins[score_bin(value, mode)].append(entry.key)
    rng = random.Random(f"review-sample:{seed}")
    quota = _share_out(min(size, sum(map(len, bins))), [len(b) for b in bins])
    chosen = [key for keys, n in zip(bins, quota) for key in rng.sample(sorted(keys), n)]
    rng.shuffle(chosen)
    return chosen, quota


def _share_out(total: int, capacity: list[int]) -> list[int]:
    """Split `total` as evenly as the bins' capacities allow (water filling)."""
    quota = [0] * len(capacity)
    while total > 0:
        open_bins = [i for i, c in enumerate(capacity) if quota[i] < c]
        each = max(1, total // len(open_bins))
        for i in open_bins:
            give = min(each, capacity[i] - quota[i], total)
            quota[i] += give
            total -= give
            if total == 0:
                break
    return quota


# -- agreement ------------------------------------------------------------------------------
def agreement(mode: Mode, pairs: list[tuple[Any, float]]) -> dict[str, Any]:
    """How the human labels so far agree with the judge: (human label, judge value) pairs."""
    if mode == "pointwise":
        human, judge = [float(h) for h, _ in pairs], [j for _, j in pairs]
        return {
            "n": len(pairs),
            "spearman": spearman(human, judge) if len(pairs) >= 3 else None,
            "mae": sum(abs(h - j) for h, j in zip(human, judge)) / len(pairs) if pairs else None,
        }
    decided = [(h, j) for h, j in pairs if h != "tie" and j != 0.5]
    agree = sum((h == "a") == (j > 0.5) for h, j in decided)
    return {"n": len(decided), "agree": agree, "rate": agree / len(decided) if decided else None, "ties": len(pairs) - len(decided)}


# -- the labels file ------------------------------------------------------------------------
class LabelStore:
    """Labels by row key, saved whole after every change; `undo` steps back one change."""

    def __init__(self, path: Path):
        self.path = path
        self.records: dict[str, dict[str, Any]] = _read_labels(path)
        self._history: list[tuple[str, dict[str, Any] | None]] = []
        self._lock = threading.Lock()

    def put(self, record: dict[str, Any]) -> None:
        with self._lock:
            key = record["id"]
            self._history.append((key, self.records.pop(key, None)))
            self.records[key] = record  # a changed label moves to the end: the file keeps labelling order
            self._save()

    def undo(self) -> str | None:
        """Take back the last change (restoring a replaced label); the key it touched, or None."""
        with self._lock:
            if not self._history:
                return None
            key, previous = self._history.pop()
            self.records.pop(key, None)
            if previous is not None:
                self.records[key] = previous
            self._save()
            return key

    def _save(self) -> None:
        atomic.write_text(self.path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records.values()))


def _read_labels(path: Path) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return records
    for number, record in numbered_jsonl(path):
        if "id" not in record:
            raise UserError(f"{path}:{number}: a label needs an `id`.", "Fix or remove that line.")
        records[str(record["id"])] = record
    return records


# -- a labelling session on one step --------------------------------------------------------
@dataclass
class LabelTask:
    """The sample, the rubric and the labels for one step: what the labelling page talks to."""

    source: Source
    step: str
    mode: Mode
    keys: list[str]
    bins: list[int]
    criteria: tuple[Criterion, ...]
    rubric: Rubric | None
    store: LabelStore
    prefix: str
    seed: int

    @cached_property
    def by_key(self) -> dict[str, Entry]:
        wanted = set(self.keys)
        return {e.key: e for e in self.source.step_entries(self.step) if e.key in wanted}

    def shown_first(self, key: str) -> str:
        """Which of A and B is shown on the left: random per row, the same on every visit."""
        return "b" if random.Random(f"review-order:{self.seed}:{key}").random() < 0.5 else "a"

    def human_score(self, ratings: dict[str, int]) -> float:
        if self.rubric is not None and all(c.name in {r.name for r in self.rubric.criteria} for c in self.criteria):
            return round(self.rubric.overall({k: float(v) for k, v in ratings.items()}), 4)
        return round(sum(ratings.values()) / len(ratings), 4)

    def record(self, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The label line for `payload` from the page; ValueError if it is not a whole label."""
        if key not in self.keys:
            raise ValueError("not a row of this calibration sample")
        base = {"id": key, "step": self.step, "at": round(time.time(), 3)}
        if self.mode == "pairwise":
            choice = payload.get("preference")
            if choice not in ("a", "b", "tie"):
                raise ValueError("preference must be a, b or tie")
            return {**base, "preference": choice, "shown_first": self.shown_first(key)}
        ratings = payload.get("criteria")
        names = [c.name for c in self.criteria]
        if not isinstance(ratings, dict) or sorted(ratings) != sorted(names):
            raise ValueError(f"rate every criterion: {', '.join(names)}")
        if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5 for v in ratings.values()):
            raise ValueError("ratings are whole numbers from 1 to 5")
        return {**base, "score": self.human_score(ratings), "criteria": {n: ratings[n] for n in names}}

    def agreement(self) -> dict[str, Any]:
        entries = self.by_key
        pairs = []
        for key, record in self.store.records.items():
            judge = entries[key].score(self.prefix) if key in entries else None
            label = record.get("preference") if self.mode == "pairwise" else record.get("score")
            if judge is not None and label is not None:
                pairs.append((label, judge))
        return agreement(self.mode, pairs)

    def progress(self) -> dict[str, Any]:
        done = sum(1 for k in self.keys if k in self.store.records)
        return {"done": done, "total": len(self.keys), "agreement": self.agreement(), "labels_file": str(self.store.path)}

    def items(self) -> list[dict[str, Any]]:
        """The sample as the page shows it: texts (never the judge's verdict) and any label."""
        entries = self.by_key
        return [self._item(entries[key]) for key in self.keys if key in entries]

    def _item(self, entry: Entry) -> dict[str, Any]:
        columns = self.source.columns
        label = self.store.records.get(entry.key)
        item: dict[str, Any] = {"key": entry.key, "label": label}
        texts = entry.texts(columns)
        if self.mode == "pointwise":
            item["texts"] = texts
            return item
        sides = {"a": entry.row.get(columns.a), "b": entry.row.get(columns.b)}
        first = self.shown_first(entry.key)
        second = "b" if first == "a" else "a"
        item["left"] = {"side": first, "text": "" if sides[first] is None else str(sides[first])}
        item["right"] = {"side": second, "text": "" if sides[second] is None else str(sides[second])}
        item["texts"] = [(k, v) for k, v in texts if k not in (columns.a, columns.b)]
        return item

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step, "mode": self.mode, "bins": self.bins,
            "criteria": [{"name": c.name, "question": c.question, "anchors": list(c.anchors)} for c in self.criteria],
            "items": self.items(), "progress": self.progress(),
        }


def open_task(source: Source, step: str, *, prefix: str = "judge", size: int = 200, seed: int = 0,
              rubric: str | None = None) -> LabelTask:
    """The labelling session for `step`: its stored sample (drawn now the first time), its rubric, its labels."""
    entries = source.step_entries(step)
    mode = judged_mode((e.row for e in entries), prefix)
    if mode is None:
        raise UserError(f"Step '{step}' has no judge scores ({prefix}_score or {prefix}_p_a).",
                        "Label a step that a judge scored (or its filter), or give --prefix.")
    keys, bins = _stored_or_new_sample(source, step, entries, prefix, mode, size, seed)
    the_rubric = _rubric_for(source, rubric) if mode == "pointwise" else None
    criteria = _criteria_for(the_rubric, [e for e in entries if e.key in set(keys)], prefix, source.columns.context) if mode == "pointwise" else ()
    return LabelTask(source, step, mode, keys, bins, criteria, the_rubric, LabelStore(source.labels_path(step)), prefix, seed)


def _stored_or_new_sample(source, step, entries, prefix, mode, size, seed) -> tuple[list[str], list[int]]:
    """The sample drawn before (labels refer to it) if its size and seed match, else a new one."""
    path = source.sample_path(step)
    known = {e.key for e in entries}
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("size") == size and stored.get("seed") == seed and stored.get("prefix") == prefix:
            return [k for k in stored["keys"] if k in known], stored["bins"]
    keys, bins = stratified_sample(entries, prefix, mode, size, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"step": step, "mode": mode, "size": size, "seed": seed, "prefix": prefix, "bins": bins, "keys": keys}, indent=1),
                    encoding="utf-8")
    return keys, bins


def _rubric_for(source: Source, override: str | None) -> Rubric | None:
    spec = override or source.rubric_spec
    if spec in (None, "default"):
        return DEFAULT_RUBRIC
    if override or Path(spec).is_file():
        return load_rubric(spec)
    return None  # the run names a rubric file this folder cannot see: criteria come from the rows


def _criteria_for(rubric: Rubric | None, entries: list[Entry], prefix: str, context: str | None) -> tuple[Criterion, ...]:
    """The rubric's criteria the judge actually scored on these rows (a criterion that needs a
    context is skipped without one); the bare names when the rubric is unknown; else overall."""
    scored: list[str] = []
    for entry in entries:
        for name in entry.row.get(f"{prefix}_criteria") or {}:
            if name not in scored and (entry.row[f"{prefix}_criteria"] or {}).get(name) is not None:
                scored.append(name)
    if rubric is not None:
        usable = [c for c in rubric.criteria if (c.name in scored if scored else (context is not None or not c.needs_context))]
        if usable:
            return tuple(usable)
    if scored:
        return tuple(Criterion(name=name, question=f"{name.replace('_', ' ').capitalize()}?") for name in scored)
    return (OVERALL,)
