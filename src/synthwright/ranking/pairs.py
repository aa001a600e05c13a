"""Which document pairs to send to a pairwise judge, per query, within a budget.

Judging every pair of n candidates costs n(n-1)/2 judgments; score recovery needs far fewer,
but only if the comparison graph is connected (otherwise two pieces have no common scale and
their scores cannot be compared). So each query's pairs are chosen in priority order and the
list is cut at the budget:

1. a spanning structure first: the source (known positive) document against each candidate,
   a star that connects everything with n-1 pairs and anchors every candidate to a known
   relevant document; without a source, the ranking chain below plays this role;
2. neighbours in the ranking (rank r vs r+1): the pairs whose order is least certain;
3. a few seeded random pairs among all nodes, which shorten paths across the graph.

If the budget is smaller than the spanning structure, the lowest-ranked candidates are
dropped (never a connecting pair), so the graph stays connected.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from synthwright.errors import UserError


def _query_seed(seed: int, key: Hashable) -> int:
    """A seed per query from its id, so a query's pairs do not depend on the other queries."""
    digest = hashlib.blake2b(f"{seed}:{key!r}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def select_pairs(
    candidates: Sequence[Hashable],
    source: Hashable | None = None,
    *,
    budget: int,
    n_random: int = 4,
    seed: int = 0,
) -> list[tuple[Hashable, Hashable]]:
    """Pairs (a, b) for one query. `candidates` in ranking order (best first; duplicates and
    the source itself are ignored). At most `budget` pairs, always a connected graph over the
    source and the candidates that were kept."""
    if budget < 1:
        raise UserError(f"The pair budget must be at least 1 (got {budget}).")
    ranked = [doc for doc in dict.fromkeys(candidates) if doc != source]
    # A spanning tree over s nodes has s-1 edges: drop tail candidates until it fits.
    room = budget if source is not None else budget + 1
    ranked = ranked[:room]
    nodes = ([source] if source is not None else []) + ranked
    if len(nodes) < 2:
        return []
    chosen: dict[frozenset, tuple] = {}

    def add(a, b):
        key = frozenset((a, b))
        if a != b and key not in chosen:
            chosen[key] = (a, b)

    if source is not None:
        for doc in ranked:
            add(source, doc)
    for first, second in itertools.pairwise(ranked):
        add(first, second)
    rng = np.random.default_rng(seed)
    n_nodes, wanted = len(nodes), len(chosen) + n_random
    tries = 0
    # Rejection sampling is fine: graphs are sparse, so most random pairs are new.
    while len(chosen) < min(wanted, n_nodes * (n_nodes - 1) // 2) and tries < 20 * n_random:
        i, j = rng.choice(n_nodes, 2, replace=False)
        add(nodes[i], nodes[j])
        tries += 1
    return list(chosen.values())[:budget]


def select_pairs_many(
    queries: Mapping[Hashable, tuple[Hashable | None, Sequence[Hashable]]],
    *,
    budget: int,
    n_random: int = 4,
    seed: int = 0,
) -> list[tuple[Hashable, Hashable, Hashable]]:
    """{query_id: (source or None, ranked candidates)} -> [(query_id, a, b), ...]."""
    out = []
    for qid, (source, candidates) in queries.items():
        pairs = select_pairs(candidates, source, budget=budget, n_random=n_random, seed=_query_seed(seed, qid))
        out.extend((qid, a, b) for a, b in pairs)
    return out


def is_connected(pairs: Sequence[tuple[Hashable, Hashable]], nodes: Sequence[Hashable] | None = None) -> bool:
    """True when the pairs connect every node (all nodes named in the pairs by default)."""
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    everything = set(parent) | set(nodes or ())
    return len({find(x) for x in everything}) <= 1
