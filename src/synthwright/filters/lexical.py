"""Lexical dedup: exact duplicates after normalisation, and MinHash-LSH near-duplicates.

Both stream: memory holds one digest (exact) or one signature plus LSH keys (MinHash) per
kept row, never the rows. Exact dedup needs only the standard library; MinHash needs the
`embed` extra (datasketch, numpy). The first row of a group is kept; each dropped row names the
kept row it duplicates.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

from synthwright.errors import UserError, require_module
from synthwright.filters.base import DropInfo, FilterStats, row_id, row_text

Row = dict[str, Any]
_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """NFKC, case-folded, punctuation turned into spaces, whitespace collapsed: what two
    copies of a text that differ only in casing, spacing or punctuation have in common."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return _SPACE.sub(" ", text).strip()


def exact_dedup(
    rows: Iterable[Row], *, text_key: str = "text", id_key: str | None = None, normalise: Callable[[str], str] | None = normalise_text,
    stats: FilterStats | None = None,
) -> Iterator[tuple[Row, DropInfo | None]]:
    """Drop rows whose normalised text equals that of an earlier row (`normalise=None`
    compares raw text)."""
    stats = stats if stats is not None else FilterStats()
    first_seen: dict[bytes, Hashable] = {}
    for position, row in enumerate(rows):
        text = row_text(row, position, text_key)
        digest = hashlib.blake2b((normalise(text) if normalise else text).encode("utf-8"), digest_size=16).digest()
        twin = first_seen.get(digest)
        drop = None if twin is None and digest not in first_seen else DropInfo("exact_duplicate", twin, "exact", 1.0)
        if drop is None:
            first_seen[digest] = row_id(row, position, id_key)
        stats.count(drop)
        yield row, drop


def shingles(text: str, size: int = 5, unit: str = "char") -> set[str]:
    """Overlapping character (or word) n-grams of the normalised text. Character shingles
    suit short texts such as instructions; a text shorter than one shingle is its own."""
    text = normalise_text(text)
    if unit == "word":
        words = text.split()
        grams = {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}
    elif unit == "char":
        grams = {text[i : i + size] for i in range(len(text) - size + 1)}
    else:
        raise UserError(f"Unknown shingle unit '{unit}'.", "Use 'char' or 'word'.")
    return grams or {text}


def minhash_dedup(
    rows: Iterable[Row], *, threshold: float = 0.8, text_key: str = "text", id_key: str | None = None, num_perm: int = 128,
    shingle_size: int = 5, shingle_unit: str = "char", seed: int = 1, stats: FilterStats | None = None,
) -> Iterator[tuple[Row, DropInfo | None]]:
    """Drop rows whose estimated Jaccard similarity (MinHash) with a kept row is at least
    `threshold`. LSH finds candidates; each candidate is confirmed on the signatures, so
    LSH's false positives never drop a row. Needs datasketch."""
    datasketch = require_module("datasketch", "MinHash dedup", "'synthwright[embed]'")
    np = require_module("numpy", "MinHash dedup", "'synthwright[embed]'")
    if not 0 < threshold <= 1:
        raise UserError(f"The MinHash threshold must be in (0, 1], got {threshold}.")
    stats = stats if stats is not None else FilterStats()
    # Candidates are confirmed on the signatures, so a false positive costs one comparison while
    # a false negative keeps a duplicate: tune the bands to miss little.
    lsh = datasketch.MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.1, 0.9))
    signatures: list = []  # numpy arrays by kept index; uint32 is enough (values < 2**32)
    kept_ids: list[Hashable] = []
    for position, row in enumerate(rows):
        grams = shingles(row_text(row, position, text_key), shingle_size, shingle_unit)
        minhash = datasketch.MinHash(num_perm=num_perm, seed=seed)
        minhash.update_batch([g.encode("utf-8") for g in grams])
        signature = minhash.hashvalues.astype(np.uint32)
        best, similarity = _best_candidate(lsh.query(minhash), signatures, signature)
        drop = DropInfo("minhash_duplicate", kept_ids[best], "jaccard_estimate", round(similarity, 4)) if similarity >= threshold else None
        if drop is None:
            lsh.insert(len(signatures), minhash, check_duplication=False)
            signatures.append(signature)
            kept_ids.append(row_id(row, position, id_key))
        stats.count(drop)
        yield row, drop


def _best_candidate(candidates: list[int], signatures: list, signature) -> tuple[int, float]:
    import numpy as np

    if not candidates:
        return -1, 0.0
    candidates = sorted(candidates)  # ties go to the earliest kept row
    agree = (np.stack([signatures[c] for c in candidates]) == signature).mean(axis=1)
    best = int(np.argmax(agree))
    return candidates[best], float(agree[best])
