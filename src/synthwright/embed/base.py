"""What an embedder is, the registry that finds one by spec, and the batching + cache logic
that every embedder shares.

An embedder only turns a list of texts into vectors (`_encode`). Deduplicating texts
within a call, looking them up in the content-hash cache, batching the misses and
L2-normalising the result live here, once. Embedders register like a plugin's:
subclass `Embedder`, decorate with `@register_embedder("name")`, and name the module in the
`synthwright.embedders` entry-point group (pyproject.toml does so for the built-in ones), so
this registry imports none of them.

Specs: `minilm` (offline all-MiniLM-L6-v2 from PyPI, the default), `st:/path/to/model`
(any sentence-transformers folder; a bare path means the same), `openai:MODEL@BASE_URL`
(any OpenAI-compatible `/embeddings` endpoint).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from synthwright.embed.cache import EmbeddingCache, text_hash
from synthwright.errors import UserError

DEFAULT_EMBEDDER = "minilm"

#: `cache=` accepts an open cache, a path, True (the default cache file) or None/False (no cache).
CacheArg = EmbeddingCache | str | Path | bool | None


@dataclass
class EmbedStats:
    """Counters that add up: texts = duplicates_in_call + cache_hits + encoded."""

    texts: int = 0
    duplicates_in_call: int = 0
    cache_hits: int = 0
    encoded: int = 0


def _open_cache(cache: CacheArg) -> EmbeddingCache | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        return EmbeddingCache()
    if isinstance(cache, EmbeddingCache):
        return cache
    return EmbeddingCache(cache)


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise each row, so cosine similarity is a dot product; zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0).astype(np.float32)


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors. Subclasses implement `_encode`,
    `identity` and `dim`."""

    name: ClassVar[str]
    default_batch_size: ClassVar[int] = 64

    def __init__(self, target: str = "", *, cache: CacheArg = True, batch_size: int | None = None):
        if batch_size is not None and batch_size < 1:
            raise UserError(f"batch_size must be at least 1, not {batch_size}.")
        self.target = target
        self.batch_size = batch_size or self.default_batch_size
        self.cache = _open_cache(cache)
        self.stats = EmbedStats()

    @property
    @abstractmethod
    def identity(self) -> str:
        """What makes this model's vectors this model's: the cache key prefix. No secrets."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Vector length (may load the model)."""

    @abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray:
        """Vectors for at most `batch_size` texts, one row each (need not be normalised)."""

    def embed(self, texts: Sequence[str], on_progress: Callable[[int], None] | None = None) -> np.ndarray:
        """One normalised row per text, in order. Each distinct text is encoded at most once
        (within this call, and across calls when a cache is set). `on_progress(n)` is called
        as texts are done."""
        texts = list(texts)
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise UserError(f"Text {position} to embed is a {type(text).__name__}, not a string.", "Pass strings only (check the text column).")
        unique = list(dict.fromkeys(texts))
        self.stats.texts += len(texts)
        self.stats.duplicates_in_call += len(texts) - len(unique)
        if not unique:
            return np.empty((0, self.dim), dtype=np.float32)
        vectors = self._lookup_or_encode(unique, on_progress)
        row_of = {text: row for row, text in enumerate(unique)}
        if on_progress and len(texts) > len(unique):
            on_progress(len(texts) - len(unique))
        return vectors[[row_of[text] for text in texts]]

    def _lookup_or_encode(self, unique: list[str], on_progress: Callable[[int], None] | None) -> np.ndarray:
        hashes = [text_hash(text) for text in unique]
        found = self.cache.get_many(self.identity, hashes) if self.cache else {}
        self.stats.cache_hits += len(found)
        if on_progress and found:
            on_progress(len(found))
        missing = [i for i, key in enumerate(hashes) if key not in found]
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            encoded = normalise_rows(self._encode([unique[i] for i in chunk]))
            if encoded.shape[0] != len(chunk):
                raise UserError(f"Embedder {self.identity} returned {encoded.shape[0]} vectors for {len(chunk)} texts.")
            keys = [hashes[i] for i in chunk]
            if self.cache:  # commit per batch: a crash keeps what was already paid for
                self.cache.put_many(self.identity, keys, encoded)
            found.update(zip(keys, encoded))
            self.stats.encoded += len(chunk)
            if on_progress:
                on_progress(len(chunk))
        return np.stack([found[key] for key in hashes]).astype(np.float32, copy=False)

    def close(self) -> None:
        """Release the cache connection (and any network session)."""
        if self.cache is not None:
            self.cache.close()


EMBEDDERS: dict[str, type[Embedder]] = {}


def register_embedder(name: str):
    def decorate(cls: type[Embedder]) -> type[Embedder]:
        cls.name = name
        EMBEDDERS[name] = cls
        return cls

    return decorate


def embedder_class(name: str) -> type[Embedder]:
    # Importing a registered module registers its embedders; they import their heavy deps lazily.
    if name not in EMBEDDERS:
        from importlib.metadata import entry_points

        for entry in entry_points(group="synthwright.embedders"):
            if entry.name == name:
                entry.load()
    try:
        return EMBEDDERS[name]
    except KeyError:
        known = ", ".join(sorted(EMBEDDERS))
        raise UserError(
            f"Unknown embedder '{name}'.", f"Use one of: {known} (for example minilm, st:/path/to/model, openai:MODEL@URL)."
        ) from None


def parse_embedder_spec(spec: str) -> tuple[str, str]:
    """`minilm` -> (minilm, ''); `st:/m` and a bare path `/m` -> (st, /m); `openai:M@URL` -> (openai, M@URL)."""
    spec = (spec or "").strip()
    if not spec:
        raise UserError("The embedder spec is empty.", f"Give one like {DEFAULT_EMBEDDER}, st:/path/to/model or openai:MODEL@URL.")
    name, sep, target = spec.partition(":")
    if not sep:
        looks_like_path = "/" in spec or spec.startswith(".") or Path(spec).exists()
        return ("st", spec) if looks_like_path else (spec, "")
    if "/" in name or "\\" in name:  # a path with a colon in it
        return "st", spec
    return name, target


def load_embedder(spec: str = DEFAULT_EMBEDDER, **options: Any) -> Embedder:
    """Build the embedder a spec names. Models load lazily, on the first `embed` call."""
    name, target = parse_embedder_spec(spec)
    return embedder_class(name)(target, **options)
