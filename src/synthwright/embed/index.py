"""Cosine nearest-neighbour indexes over L2-normalised vectors that grow as vectors are added.

- `ExactIndex`: numpy, brute force. Exact; right for pools up to tens of thousands.
- `IVFIndex`: faiss inverted lists (k-means cells, vectors stored as float16). Approximate:
  a query scans only the `nprobe` cells nearest to it, so a neighbour in another cell can be
  missed. Distances it reports are exact up to float16 rounding (about 1e-3).
- `AutoIndex`: exact while small, IVF once the pool passes `ann_threshold`, retrained as
  the pool grows. This is what the novelty gate and dedup use by default.

Every index answers in cosine *distance* (1 - cosine similarity) and identifies stored
vectors by slot: 0, 1, 2... in the order they were added. A slot of -1 means "no
neighbour" (empty index), with distance +inf.

Measured recall of IVF against exact search is in docs/benchmarks.md (## Semantic dedup).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np

from synthwright.errors import UserError, require_module

EMBED_EXTRA = "'synthwright[embed]'"
#: decide(distance, slot) -> keep mask, given each query's nearest stored neighbour.
Decide = Callable[[np.ndarray, np.ndarray], np.ndarray]
REBUILD_CHUNK = 16_384  # vectors re-added at once when an index is rebuilt
# Up to this many cells, finding a query's cells is one matrix product with all centroids;
# past it, an inverted file over the centroids (see IVFIndex.train).
FLAT_QUANTIZER_MAX_CELLS = 2048
QUANTIZER_NPROBE = 8


def _as_matrix(vectors: Any, dim: int) -> np.ndarray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise UserError(f"Expected vectors of shape (n, {dim}), got {matrix.shape}.", "Use one embedder for everything that goes into one index.")
    return matrix


def _no_neighbours(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, k), np.inf, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)


class VectorIndex(ABC):
    """A growing cosine index. Vectors must be L2-normalised (embedders return them so)."""

    exact: ClassVar[bool]

    def __init__(self, dim: int):
        self.dim = int(dim)

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def add(self, vectors: np.ndarray) -> None:
        """Store vectors; they get the next slots in order."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(distances, slots), each (n, k), nearest first."""

    def search_then_add(self, queries: np.ndarray, decide: Decide) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Find each query's nearest stored neighbour, let `decide` pick which queries to keep,
        store those. Returns (distance, slot, keep). Indexes override it to share work
        between the search and the add."""
        queries = _as_matrix(queries, self.dim)
        distance, slot = self.search(queries, 1)
        keep = np.asarray(decide(distance[:, 0], slot[:, 0]), dtype=bool)
        self.add(queries[keep])
        return distance[:, 0], slot[:, 0], keep


class ExactIndex(VectorIndex):
    """Brute-force cosine search in numpy; the buffer doubles as it fills."""

    exact = True
    QUERY_CHUNK = 1024  # bounds the (chunk x pool) similarity matrix

    def __init__(self, dim: int, capacity: int = 1024):
        super().__init__(dim)
        self._vectors = np.empty((max(capacity, 1), self.dim), dtype=np.float32)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, vectors: np.ndarray) -> None:
        vectors = _as_matrix(vectors, self.dim)
        needed = self._size + len(vectors)
        if needed > len(self._vectors):
            grown = np.empty((max(needed, 2 * len(self._vectors)), self.dim), dtype=np.float32)
            grown[: self._size] = self._vectors[: self._size]
            self._vectors = grown
        self._vectors[self._size : needed] = vectors
        self._size = needed

    def vectors(self) -> np.ndarray:
        """The stored vectors in slot order (a view: do not modify)."""
        return self._vectors[: self._size]

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        queries = _as_matrix(queries, self.dim)
        distances, slots = _no_neighbours(len(queries), k)
        k_found = min(k, self._size)
        if k_found == 0:
            return distances, slots
        pool = self.vectors()
        for start in range(0, len(queries), self.QUERY_CHUNK):
            sims = queries[start : start + self.QUERY_CHUNK] @ pool.T
            top = np.argmax(sims, axis=1)[:, None] if k_found == 1 else _top_k(sims, k_found)
            slots[start : start + len(sims), :k_found] = top
            distances[start : start + len(sims), :k_found] = 1.0 - np.take_along_axis(sims, top, axis=1)
        return distances, slots


def _top_k(sims: np.ndarray, k: int) -> np.ndarray:
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def choose_nlist(pool_size: int) -> int:
    """Cells for a pool of n vectors (a power of two, 16..65536): about n/64, so a query that
    scans nprobe cells compares with ~64*nprobe stored vectors, but at least 4*sqrt(n) while
    the pool is small (when finding the cells is cheap anyway)."""
    target = max(pool_size / 64, 4 * np.sqrt(max(pool_size, 1)))
    return int(np.clip(2 ** round(np.log2(target)), 16, 65536))


class IVFIndex(VectorIndex):
    """faiss inverted-file index: vectors in k-means cells, float16 storage, inner product.

    Must be trained on a sample first (`train`). A query scans its `nprobe` nearest cells.
    The coarse assignment is computed once per batch and shared by search and add. Past
    2,048 cells the cells come from a two-level k-means, so `nlist` ends up close to, not
    exactly, the number asked for.
    """

    exact = False

    def __init__(self, dim: int, nlist: int, nprobe: int = 16, niter: int = 6, points_per_cell: int = 16, seed: int = 0):
        super().__init__(dim)
        self.faiss = require_module("faiss", "The approximate nearest-neighbour index", EMBED_EXTRA)
        if nlist < 1 or nprobe < 1:
            raise UserError(f"nlist and nprobe must be positive (got {nlist}, {nprobe}).")
        self.nlist, self.nprobe, self.niter, self.seed = int(nlist), min(int(nprobe), int(nlist)), niter, seed
        # k-means cost is sample x cells x iterations; cells only decide what a query scans
        # (distances are always computed on the stored vectors), so a rough partition is enough.
        self.points_per_cell = points_per_cell
        self._quantizer = None
        self._ivf = None
        self._size = 0

    @property
    def trained(self) -> bool:
        return self._ivf is not None

    def train(self, sample: np.ndarray) -> None:
        """Learn the cells from a sample of vectors like those that will be stored."""
        faiss = self.faiss
        sample = _as_matrix(sample, self.dim)
        if len(sample) < self.nlist:
            raise UserError(f"An IVF index with {self.nlist} cells needs at least {self.nlist} training vectors, got {len(sample)}.")
        cap = self.points_per_cell * self.nlist
        if len(sample) > cap:
            sample = sample[np.random.default_rng(self.seed).choice(len(sample), cap, replace=False)]
        if self.nlist <= FLAT_QUANTIZER_MAX_CELLS:
            centroids = self._kmeans(sample, self.nlist)
            self._quantizer = faiss.IndexFlatIP(self.dim)
        else:
            centroids = self._two_level_kmeans(sample)
            # Finding a query's nearest cells is itself a search over the centroids: with many
            # cells, an inverted file over the centroids makes it cost ~sqrt(cells), not cells.
            groups = int(np.sqrt(len(centroids)))
            self._quantizer = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, groups, faiss.METRIC_INNER_PRODUCT)
            self._quantizer.cp.min_points_per_centroid = 1
            self._quantizer.train(centroids)
            self._quantizer.nprobe = QUANTIZER_NPROBE  # groups of centroids scanned: ~8*sqrt(cells) candidates
        self.nlist = len(centroids)
        self.nprobe = min(self.nprobe, self.nlist)
        self._quantizer.add(centroids)
        # by_residual=False: codes are the vectors themselves, so they decode without the centroids.
        self._ivf = faiss.IndexIVFScalarQuantizer(
            self._quantizer, self.dim, self.nlist, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT, False
        )
        self._ivf.train(sample[: min(len(sample), 1000)])  # float16 needs no statistics; cells are set
        self._ivf.nprobe = self.nprobe

    def _kmeans(self, points: np.ndarray, k: int) -> np.ndarray:
        if k >= len(points):
            return points[:k].copy()
        kmeans = self.faiss.Kmeans(self.dim, k, niter=self.niter, seed=self.seed, spherical=True, min_points_per_centroid=1, max_points_per_centroid=10**6)
        kmeans.train(points)
        return kmeans.centroids

    def _two_level_kmeans(self, sample: np.ndarray) -> np.ndarray:
        """~nlist centroids for the cost of two small k-means: sqrt(nlist) groups first, then
        each group split into cells in proportion to its share of the sample."""
        groups = int(np.sqrt(self.nlist))
        top = self.faiss.IndexFlatIP(self.dim)
        top.add(self._kmeans(sample, groups))
        assign = top.search(sample, 1)[1][:, 0]
        sizes = np.bincount(assign, minlength=groups)
        quota = np.minimum(np.maximum(np.round(sizes / len(sample) * self.nlist), 1), sizes).astype(int)
        return np.concatenate([self._kmeans(sample[assign == g], quota[g]) for g in range(groups) if sizes[g]])

    def __len__(self) -> int:
        return self._size

    def _require_trained(self) -> None:
        if self._ivf is None:
            raise UserError("This IVF index is not trained yet.", "Call train(sample) first, or use AutoIndex.")

    def _coarse(self, x: np.ndarray, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        return self._quantizer.search(x, nprobe)

    def _add_assigned(self, x: np.ndarray, cells: np.ndarray, slots: np.ndarray | None = None) -> None:
        if not len(x):
            return
        # Call add_core directly: faiss.contrib's add_preassigned drops its reference to the
        # ids array before the C++ call reads it, which stores garbage ids.
        x = np.ascontiguousarray(x, dtype=np.float32)
        cells = np.ascontiguousarray(cells, dtype=np.int64)
        ids = np.arange(self._size, self._size + len(x), dtype=np.int64) if slots is None else np.ascontiguousarray(slots, dtype=np.int64)
        swig = self.faiss.swig_ptr
        self._ivf.add_core(len(x), swig(x), swig(ids), swig(cells))
        self._size += len(x)

    def add_with_slots(self, vectors: np.ndarray, slots: np.ndarray) -> None:
        """Store vectors under given slots (for rebuilding an index; slots must stay unique)."""
        self._require_trained()
        vectors = _as_matrix(vectors, self.dim)
        self._add_assigned(vectors, self._coarse(vectors, 1)[1][:, 0], slots)

    def _search_assigned(self, x: np.ndarray, k: int, cells: np.ndarray, cell_sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sims, slots = self._ivf.search_preassigned(x, k, cells, cell_sims)
        distances = np.where(slots >= 0, 1.0 - sims, np.inf).astype(np.float32)
        return distances, slots

    def add(self, vectors: np.ndarray) -> None:
        self._require_trained()
        vectors = _as_matrix(vectors, self.dim)
        if len(vectors):
            self._add_assigned(vectors, self._coarse(vectors, 1)[1][:, 0])

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        queries = _as_matrix(queries, self.dim)
        if self._size == 0 or not len(queries):
            return _no_neighbours(len(queries), k)
        cell_sims, cells = self._coarse(queries, self.nprobe)
        return self._search_assigned(queries, k, cells, cell_sims)

    def search_then_add(self, queries: np.ndarray, decide: Decide) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._require_trained()
        queries = _as_matrix(queries, self.dim)
        cell_sims, cells = self._coarse(queries, self.nprobe)
        if self._size:
            distances, slots = self._search_assigned(queries, 1, cells, cell_sims)
        else:
            distances, slots = _no_neighbours(len(queries), 1)
        keep = np.asarray(decide(distances[:, 0], slots[:, 0]), dtype=bool)
        self._add_assigned(queries[keep], cells[keep, 0])
        return distances[:, 0], slots[:, 0], keep

    def iter_vectors(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(slots, vectors) cell by cell, decoded from float16: for rebuilding and audits."""
        self._require_trained()
        invlists = self._ivf.invlists
        for cell in range(self.nlist):
            count = invlists.list_size(cell)
            if not count:
                continue
            ids = self.faiss.rev_swig_ptr(invlists.get_ids(cell), count).copy()
            codes = self.faiss.rev_swig_ptr(invlists.get_codes(cell), count * invlists.code_size)
            yield ids, np.frombuffer(codes, dtype=np.float16).reshape(count, self.dim).astype(np.float32)


class AutoIndex(VectorIndex):
    """Exact search while the pool is small; an IVF index once it holds `ann_threshold`
    vectors, rebuilt with more cells each time the pool grows `growth` times larger (so
    rebuilding costs a constant share of the adds, and a cell holds tens to hundreds of vectors).

    `ann_threshold=None` keeps it exact for ever (no faiss needed).
    """

    def __init__(self, dim: int, ann_threshold: int | None = 20_000, nprobe: int = 16, growth: int = 8, seed: int = 0):
        super().__init__(dim)
        if ann_threshold is not None:
            require_module("faiss", "The approximate nearest-neighbour index", EMBED_EXTRA)
        self.ann_threshold = ann_threshold
        self.nprobe, self.growth, self.seed = nprobe, growth, seed
        self._index: ExactIndex | IVFIndex = ExactIndex(dim)
        self._trained_at = 0
        self.rebuilds = 0

    @property
    def exact(self) -> bool:  # type: ignore[override]
        return isinstance(self._index, ExactIndex)

    @property
    def backend(self) -> VectorIndex:
        return self._index

    def __len__(self) -> int:
        return len(self._index)

    def add(self, vectors: np.ndarray) -> None:
        self._index.add(vectors)
        self._maybe_rebuild()

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        return self._index.search(queries, k)

    def search_then_add(self, queries: np.ndarray, decide: Decide) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        result = self._index.search_then_add(queries, decide)
        self._maybe_rebuild()
        return result

    def _maybe_rebuild(self) -> None:
        size = len(self._index)
        if self.ann_threshold is None or size < self.ann_threshold:
            return
        if not self.exact and size < self.growth * self._trained_at:
            return
        self._index = self._rebuilt(size)
        self._trained_at = size
        self.rebuilds += 1

    def _rebuilt(self, size: int) -> IVFIndex:
        """A fresh IVF index with more cells, holding the same vectors under the same slots."""
        old = self._index
        # Cells sized for the pool this index will hold by the next rebuild.
        nlist = min(choose_nlist(size * self.growth), 2 ** int(np.log2(max(size // 4, 1))))  # >= 4 training vectors a cell
        new = IVFIndex(self.dim, nlist=nlist, nprobe=self.nprobe, seed=self.seed)
        rng = np.random.default_rng(self.seed)
        share = min(1.0, 2 * new.points_per_cell * new.nlist / size)  # k-means samples again; decode no more than it needs
        if isinstance(old, ExactIndex):
            vectors = old.vectors()
            new.train(vectors[rng.random(size) < share])
            new.add(vectors)
            return new
        # A chunk of cells at a time, so the peak is the two indexes plus one decoded chunk,
        # never all vectors as float32 (and adds stay large enough for BLAS).
        new.train(np.concatenate([vectors[rng.random(len(vectors)) < share] for _, vectors in old.iter_vectors()]))
        pending: list[tuple[np.ndarray, np.ndarray]] = []
        for cell in old.iter_vectors():
            pending.append(cell)
            if sum(len(slots) for slots, _ in pending) >= REBUILD_CHUNK:
                new.add_with_slots(np.concatenate([v for _, v in pending]), np.concatenate([s for s, _ in pending]))
                pending = []
        if pending:
            new.add_with_slots(np.concatenate([v for _, v in pending]), np.concatenate([s for s, _ in pending]))
        return new


def make_index(dim: int, kind: str = "auto", **options: Any) -> VectorIndex:
    """`auto` (exact, then IVF past a threshold), `exact`, or `ivf` (needs `nlist`, then `train`)."""
    kinds: dict[str, Callable[..., VectorIndex]] = {"auto": AutoIndex, "exact": ExactIndex, "ivf": IVFIndex}
    if kind not in kinds:
        raise UserError(f"Unknown index kind '{kind}'.", f"Use one of: {', '.join(kinds)}.")
    return kinds[kind](dim, **options)
