"""Semantic dedup at scale: 1,000,000 random-but-clustered 384-d vectors through the novelty
gate (the engine of `semantic_dedup`), on this machine's CPU.

    .venv/bin/python benchmarks/semantic_dedup.py [--rows 1000000] [--epsilon 0.1] [--nprobe 16]

Data: cluster centres uniform on the sphere; each row is a centre plus Gaussian noise whose
spread varies by cluster (same-cluster pairs sit at cosine distance ~0.1-0.7, like MiniLM
neighbours of one topic). 10% of rows are planted near-duplicates of an earlier row, at
cosine distance uniform in [0.01, 0.10] - the range where MiniLM puts paraphrases.
Vectors are generated batch by batch with a fixed seed, so the data never sits in memory.

Reported:
- time and peak memory (ru_maxrss) of deduplicating all rows at `epsilon`;
- recall on a 50,000-vector sample: of the rows that exact search drops as near-duplicates,
  the share the approximate index also drops (and with the same twin), for the shipped
  AutoIndex and for a stress setting (IVF with the large pool's cell count from the start);
- the naive quadratic (exact) time, measured on the sample and extrapolated to all rows.
Always exits 0: a benchmark, not a test.
"""

from __future__ import annotations

import os

# On a shared machine OpenMP's default busy-waiting burns the cores other processes need
# (and ours, when oversubscribed); set before faiss/numpy load their thread pools.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import resource
import time
from collections.abc import Iterator

import numpy as np

from synthwright.embed.index import AutoIndex, ExactIndex, IVFIndex, choose_nlist
from synthwright.filters.novelty import NoveltyGate

DIM = 384
DUP_SHARE = 0.10
DUP_DISTANCE = (0.01, 0.10)
RING = 100_000  # planted twins are drawn from the last RING original rows


class ClusteredStream:
    """Deterministic stream of (vectors, planted twin position or -1) batches."""

    def __init__(self, rows: int, seed: int = 0, rows_per_cluster: int = 50):
        self.rows = rows
        self.rng = np.random.default_rng(seed)
        clusters = max(rows // rows_per_cluster, 1)
        self.centres = self._unit(self.rng.standard_normal((clusters, DIM), dtype=np.float32))
        self.spread = self.rng.uniform(0.3, 1.5, clusters).astype(np.float32) / np.float32(np.sqrt(DIM))
        self.ring = np.zeros((RING, DIM), dtype=np.float16)
        self.ring_pos = np.full(RING, -1, dtype=np.int64)
        self.originals = 0

    @staticmethod
    def _unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    def batches(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        done = 0
        while done < self.rows:
            n = min(size, self.rows - done)
            yield self._batch(n, done)
            done += n

    def _batch(self, n: int, first: int) -> tuple[np.ndarray, np.ndarray]:
        cluster = self.rng.integers(0, len(self.centres), n)
        x = self.rng.standard_normal((n, DIM), dtype=np.float32) * self.spread[cluster, None] + self.centres[cluster]
        x = self._unit(x)
        twin = np.full(n, -1, dtype=np.int64)
        planted = (self.rng.random(n) < DUP_SHARE) & (self.originals > 0)
        planted[0] = False
        src = self.rng.integers(0, max(min(self.originals, RING), 1), n)
        for i in np.flatnonzero(planted):
            twin[i] = self.ring_pos[src[i]]
            x[i] = self._near_copy(self.ring[src[i]].astype(np.float32))
        for i in np.flatnonzero(~planted):  # originals feed the ring
            slot = self.originals % RING
            self.ring[slot], self.ring_pos[slot] = x[i], first + i
            self.originals += 1
        return x, twin

    def _near_copy(self, v: np.ndarray) -> np.ndarray:
        """A vector at cosine distance d from v, d uniform in DUP_DISTANCE."""
        d = self.rng.uniform(*DUP_DISTANCE)
        noise = self.rng.standard_normal(DIM).astype(np.float32)
        noise -= (noise @ v) * v
        noise /= np.linalg.norm(noise)
        cos = 1.0 - d
        out = cos * v + np.sqrt(1 - cos * cos) * noise
        return (out / np.linalg.norm(out)).astype(np.float32)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def dedup(rows: int, epsilon: float, index, batch: int, seed: int = 0, report_every: int = 0):
    """Run the gate over the stream; returns (dropped mask, twin of each dropped row, seconds, cpu seconds)."""
    gate = NoveltyGate(None, epsilon, index=index)
    dropped = np.zeros(rows, dtype=bool)
    twins = np.full(rows, -1, dtype=np.int64)
    wall, cpu = time.perf_counter(), time.process_time()
    done = 0
    for x, _ in ClusteredStream(rows, seed).batches(batch):
        result = gate.admit_vectors(x, list(range(done, done + len(x))))
        out = np.flatnonzero(~result.keep)
        dropped[done + out] = True
        twins[done + out] = [result.neighbour[i] for i in out]
        done += len(x)
        if report_every and done % report_every < batch:
            print(f"  {done:>9,} rows  {time.perf_counter() - wall:7.1f} s  kept {len(gate):,}  peak {peak_rss_gb():.2f} GB", flush=True)
    return dropped, twins, time.perf_counter() - wall, time.process_time() - cpu, gate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=50_000)
    parser.add_argument("--epsilon", type=float, default=0.10)
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument("--batch", type=int, default=2048)
    args = parser.parse_args()
    print(f"semantic dedup benchmark: {args.rows:,} x {DIM}-d vectors, epsilon {args.epsilon}, nprobe {args.nprobe}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")

    # 1. Recall and the quadratic baseline on a sample (run first: the big run's memory would hide its peak).
    exact_dropped, exact_twin, exact_s, _, _ = dedup(args.sample, args.epsilon, ExactIndex(DIM), args.batch)
    planted = np.concatenate([t for _, t in ClusteredStream(args.sample).batches(args.batch)]) >= 0
    print(f"sample {args.sample:,}: exact search drops {exact_dropped.sum():,} rows ({planted.sum():,} planted) in {exact_s:.1f} s")
    configs = {
        "AutoIndex (shipped)": lambda: AutoIndex(DIM, nprobe=args.nprobe),
        f"IVF {choose_nlist(args.rows)} cells from the start (stress)": lambda: _stress_index(args),
    }
    for name, make in configs.items():
        ann_dropped, ann_twin, ann_s, _, _ = dedup(args.sample, args.epsilon, make(), args.batch)
        both = exact_dropped & ann_dropped
        print(
            f"  {name}: recall {both.sum() / max(exact_dropped.sum(), 1):.4f} of exact's dropped rows, "
            f"same twin {(exact_twin[both] == ann_twin[both]).mean():.4f}, extra drops {(ann_dropped & ~exact_dropped).sum()}, {ann_s:.1f} s"
        )
    quadratic = exact_s * (args.rows / args.sample) ** 2
    print(f"naive quadratic extrapolated to {args.rows:,} rows: {quadratic:,.0f} s ({quadratic / 3600:.1f} h)")

    # 2. The full run.
    dropped, _, wall, cpu, gate = dedup(args.rows, args.epsilon, AutoIndex(DIM, nprobe=args.nprobe), args.batch, report_every=100_000)
    index = gate.index
    print(
        f"full run: {args.rows:,} rows in {wall:.1f} s wall ({cpu:.1f} s CPU), kept {len(gate):,}, dropped {dropped.sum():,}; "
        f"index {type(index.backend).__name__} nlist {getattr(index.backend, 'nlist', '-')}, rebuilds {index.rebuilds}; peak RSS {peak_rss_gb():.2f} GB"
    )


def _stress_index(args) -> IVFIndex:
    index = IVFIndex(DIM, nlist=choose_nlist(args.rows), nprobe=args.nprobe)
    sample = np.concatenate([x for x, _ in ClusteredStream(args.sample).batches(args.batch)])
    index.train(sample)
    return index


if __name__ == "__main__":
    main()
