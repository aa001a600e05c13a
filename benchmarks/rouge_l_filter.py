"""ROUGE-L near-duplicate filter (Self-Instruct's > 0.7 rule): synthwright's pruned, bit-parallel
filter against the plain loop that scores each new text against every kept one.

    .venv/bin/python benchmarks/rouge_l_filter.py [--rows 20000] [--reference-rows 2000]

Texts: 8-25 words drawn from a vocabulary with frequent function words; 10% are copies of an
earlier text with one word changed. The plain loop runs on the first `--reference-rows` rows
only (it is quadratic) and must make the same decisions. Always exits 0: a benchmark.
"""

from __future__ import annotations

import argparse
import random
import time

from synthwright.filters import rouge_l, rouge_l_filter, tokenize


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocabulary = ["the", "a", "to", "of", "and", "in", "for", "with", "on", "how", "what", "write", "explain", "give", "list"] * 20 + [f"w{i}" for i in range(5000)]
    texts: list[str] = []
    for _ in range(n):
        if texts and rng.random() < 0.1:
            words = rng.choice(texts).split()
            words[rng.randrange(len(words))] = "changed"
            texts.append(" ".join(words))
        else:
            texts.append(" ".join(rng.choice(vocabulary) for _ in range(rng.randint(8, 25))))
    return texts


def plain_loop(texts: list[str], threshold: float = 0.7) -> list[int | None]:
    kept: list[int] = []
    tokens = [tokenize(t) for t in texts]
    decisions: list[int | None] = []
    for i in range(len(texts)):
        best = max(((rouge_l(tokens[i], tokens[k]), k) for k in kept), default=(0.0, None))
        decisions.append(best[1] if best[0] > threshold else None)
        if best[0] <= threshold:
            kept.append(i)
    return decisions


def timed_filter(texts: list[str]) -> tuple[list, float]:
    start = time.perf_counter()
    decisions = [drop and drop.duplicate_of for _, drop in rouge_l_filter([{"text": t} for t in texts])]
    return decisions, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--reference-rows", type=int, default=2_000)
    args = parser.parse_args()
    texts = make_texts(args.rows)
    small = texts[: args.reference_rows]
    fast_small, fast_small_s = timed_filter(small)
    start = time.perf_counter()
    reference = plain_loop(small)
    reference_s = time.perf_counter() - start
    print(f"{len(small):,} rows: filter {fast_small_s:.2f} s, plain loop {reference_s:.2f} s ({reference_s / fast_small_s:.0f}x), same decisions: {fast_small == reference}")
    fast, fast_s = timed_filter(texts)
    extrapolated = reference_s * (len(texts) / len(small)) ** 2
    print(f"{len(texts):,} rows: filter {fast_s:.2f} s, dropped {sum(d is not None for d in fast):,}; plain loop extrapolated {extrapolated:,.0f} s")


if __name__ == "__main__":
    main()
