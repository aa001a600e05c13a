"""Content-hash embedding cache: a text is embedded once per model, across runs.

Keys are (model identity, blake2b-128 of the UTF-8 text); values are the float32 vector
bytes. SQLite in WAL mode, so a crash mid-run keeps every batch already committed and
several processes can share one cache file.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synthwright.errors import UserError
from synthwright.paths import home_dir

CACHE_ENV = "SYNTHWRIGHT_EMBED_CACHE"
# SQLite's default limit on bound parameters is 999 in old builds; stay under it.
_LOOKUP_CHUNK = 900

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_embeddings",
        """
        CREATE TABLE embeddings (
            model TEXT NOT NULL,
            text_hash BLOB NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (model, text_hash)
        ) WITHOUT ROWID;
        """,
    ),
]


def default_cache_path() -> Path:
    """$SYNTHWRIGHT_EMBED_CACHE, else <home>/embeddings/cache.sqlite."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else home_dir() / "embeddings" / "cache.sqlite"


def text_hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class EmbeddingCache:
    """Maps (model identity, text) to a stored vector."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise UserError(
                f"Cannot open the embedding cache '{self.path}': {exc}.",
                f"Set {CACHE_ENV} to a writable file, or pass cache=None to embed without one.",
            ) from None

    def _migrate(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)")
        done = {row[0] for row in self._db.execute("SELECT name FROM migrations")}
        for name, sql in MIGRATIONS:
            if name not in done:
                self._db.executescript(f"BEGIN; {sql} INSERT INTO migrations VALUES ('{name}'); COMMIT;")

    def get_many(self, model: str, hashes: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """Vectors found for `hashes` (missing ones are simply absent)."""
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(hashes), _LOOKUP_CHUNK):
            chunk = list(hashes[start : start + _LOOKUP_CHUNK])
            marks = ",".join("?" * len(chunk))
            query = f"SELECT text_hash, vector FROM embeddings WHERE model = ? AND text_hash IN ({marks})"
            for key, blob in self._db.execute(query, [model, *chunk]):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model: str, hashes: Sequence[bytes], vectors: np.ndarray) -> None:
        rows = [(model, key, np.ascontiguousarray(vec, dtype=np.float32).tobytes()) for key, vec in zip(hashes, vectors)]
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO embeddings VALUES (?, ?, ?)", rows)

    def count(self, model: str | None = None) -> int:
        if model is None:
            return self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM embeddings WHERE model = ?", (model,)).fetchone()[0]

    def close(self) -> None:
        self._db.close()
