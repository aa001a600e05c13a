"""Semantic dedup of a whole dataset: drop every row whose text lies within cosine distance
epsilon of a row already kept, and say which row it duplicated and how close it was.

Rows stream through: memory holds the index of kept vectors and one batch, never all rows.
By default the first row of each near-duplicate group is kept. With `score_key` the
best-scored row is kept instead; that needs the whole dataset ordered by score, so rows
and vectors are spooled to temporary files on disk and replayed in input order.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Hashable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from synthwright.embed.base import DEFAULT_EMBEDDER, Embedder, load_embedder
from synthwright.embed.index import VectorIndex
from synthwright.errors import UserError
from synthwright.filters.base import DropInfo, FilterStats, row_id, row_text
from synthwright.filters.novelty import AdmitResult, NoveltyGate

REASON = "semantic_duplicate"
Row = dict[str, Any]


def _drop(result: AdmitResult, i: int) -> DropInfo | None:
    if result.keep[i]:
        return None
    return DropInfo(REASON, result.neighbour[i], "cosine_distance", round(float(result.distance[i]), 6))


def semantic_dedup(
    rows: Iterable[Row], epsilon: float, *, embedder: Embedder | str = DEFAULT_EMBEDDER, text_key: str = "text",
    id_key: str | None = None, score_key: str | None = None, batch_size: int = 512, index: VectorIndex | None = None,
    stats: FilterStats | None = None, ann_threshold: int | None = 20_000,
) -> Iterator[tuple[Row, DropInfo | None]]:
    """Yield (row, None) for kept rows and (row, DropInfo) for dropped ones, in input order.

    Ids in DropInfo.duplicate_of are `row[id_key]`, or 0-based input positions without it.
    With `score_key`, the highest score wins each group (ties: the earlier row).
    """
    embedder = load_embedder(embedder) if isinstance(embedder, str) else embedder
    gate = NoveltyGate(embedder, epsilon, index=index, ann_threshold=ann_threshold)
    stats = stats if stats is not None else FilterStats()
    decided = _keep_first(rows, gate, text_key, id_key, batch_size) if score_key is None else _keep_best(rows, gate, text_key, id_key, score_key, batch_size)
    for row, drop in decided:
        stats.count(drop)
        yield row, drop


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _keep_first(rows: Iterable[Row], gate: NoveltyGate, text_key: str, id_key: str | None, batch_size: int) -> Iterator[tuple[Row, DropInfo | None]]:
    position = 0
    for batch in _batches(rows, batch_size):
        texts = [row_text(row, position + i, text_key) for i, row in enumerate(batch)]
        ids = [row_id(row, position + i, id_key) for i, row in enumerate(batch)]
        result = gate.admit(texts, ids)
        for i, row in enumerate(batch):
            yield row, _drop(result, i)
        position += len(batch)


def _score(row: Row, position: int, score_key: str) -> float:
    value = row.get(score_key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"Row {position}: the score column '{score_key}' holds {value!r}, not a number.", "Score every row first, or dedup without --score-key.")
    return float(value)


def _keep_best(
    rows: Iterable[Row], gate: NoveltyGate, text_key: str, id_key: str | None, score_key: str, batch_size: int
) -> Iterator[tuple[Row, DropInfo | None]]:
    with tempfile.TemporaryDirectory(prefix="synthwright-dedup-") as folder:
        rows_path, vectors_path = Path(folder) / "rows.pickle", Path(folder) / "vectors.f32"
        ids, scores, dim = _spool(rows, gate.embedder, text_key, id_key, score_key, batch_size, rows_path, vectors_path)
        if not ids:
            return
        vectors = np.memmap(vectors_path, dtype=np.float32, mode="r").reshape(len(ids), dim)
        twin, distance = _decide_by_score(gate, vectors, np.asarray(scores), batch_size)
        del vectors
        with open(rows_path, "rb") as handle:
            for position in range(len(ids)):
                row = pickle.load(handle)
                if twin[position] < 0:
                    yield row, None
                else:
                    yield row, DropInfo(REASON, ids[twin[position]], "cosine_distance", round(float(distance[position]), 6))


def _spool(rows, embedder, text_key, id_key, score_key, batch_size, rows_path: Path, vectors_path: Path):
    """Write rows (pickled) and their vectors (float32) to disk; keep only ids and scores."""
    ids: list[Hashable] = []
    scores: list[float] = []
    dim = 0
    position = 0
    with open(rows_path, "wb") as row_file, open(vectors_path, "wb") as vector_file:
        for batch in _batches(rows, batch_size):
            texts = [row_text(row, position + i, text_key) for i, row in enumerate(batch)]
            for i, row in enumerate(batch):
                ids.append(row_id(row, position + i, id_key))
                scores.append(_score(row, position + i, score_key))
                pickle.dump(row, row_file, protocol=pickle.HIGHEST_PROTOCOL)
            vectors = embedder.embed(texts)
            dim = vectors.shape[1]
            vector_file.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
            position += len(batch)
    return ids, scores, dim


def _decide_by_score(gate: NoveltyGate, vectors: np.ndarray, scores: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Gate rows best score first. Returns, per input position, the position of the kept row
    it duplicates (-1 when kept) and the distance to it: arrays, not objects, per row."""
    twin = np.full(len(scores), -1, dtype=np.int64)
    distance = np.zeros(len(scores), dtype=np.float32)
    order = np.argsort(-scores, kind="stable")  # stable: equal scores keep input order
    for start in range(0, len(order), batch_size):
        positions = order[start : start + batch_size]
        result = gate.admit_vectors(np.asarray(vectors[positions]), positions.tolist())
        dropped = ~result.keep
        twin[positions[dropped]] = [result.neighbour[i] for i in np.flatnonzero(dropped)]
        distance[positions[dropped]] = result.distance[dropped]
    return twin, distance
