"""Score recovery speed: synthwright.ranking.recover_scores against choix, on the same data.

    .venv/bin/python benchmarks/score_recovery.py [--items 100000] [--comparisons 1000000] [--choix-full]

Data: true scores ~ N(0, 1); each comparison draws two distinct items uniformly and one
Bradley-Terry outcome (a hard win/loss, the only input choix takes). Both fit Bradley-Terry.

choix at this size: `opt_pairwise` and `ilsr_pairwise` build dense n x n matrices (80 GB at
100,000 items), so `mm_pairwise` (minorisation-maximisation, a Python loop over comparisons
per iteration) is the only choix method that runs. Its regulariser (alpha = 0.01, a
pseudo-count) differs in form from synthwright's Gaussian prior, so the two are compared by
Spearman correlation of the fitted scores, not by value.

By default choix runs to convergence on a 1/10 subset (same comparisons per item), and its
full-size time is extrapolated as (seconds per MM iteration measured on the full data) x
(iterations it needed on the subset); --choix-full runs it on the full data instead (about
10 minutes on 2 cores). Prints figures; always exits 0.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.stats import spearmanr

from synthwright.ranking import recover_scores

CHOIX_ALPHA = 0.01


def simulate(n_items: int, n_comparisons: int, seed: int):
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 1, n_items)
    a = rng.integers(0, n_items, n_comparisons)
    b = (a + rng.integers(1, n_items, n_comparisons)) % n_items
    won = rng.random(n_comparisons) < 1 / (1 + np.exp(-(true[a] - true[b])))
    return true, a, b, won


def run_choix(choix, n_items, a, b, won, max_iter=10_000):
    """(seconds, scores or None, MM iterations). Counts iterations by wrapping choix's inner step."""
    data = list(zip(np.where(won, a, b).tolist(), np.where(won, b, a).tolist()))
    inner, calls = choix.mm._mm_pairwise, [0]

    def counting(*args):
        calls[0] += 1
        return inner(*args)

    choix.mm._mm_pairwise = counting
    start = time.perf_counter()
    try:
        scores = choix.mm_pairwise(n_items, data, alpha=CHOIX_ALPHA, max_iter=max_iter)
    except RuntimeError:  # stopped at max_iter before converging
        scores = None
    finally:
        choix.mm._mm_pairwise = inner
    return time.perf_counter() - start, scores, calls[0]


def time_ours(n_items, a, b, won, repeats=3):
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = recover_scores(a, b, won.astype(float), model="bradley_terry", n_items=n_items)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--comparisons", type=int, default=1_000_000)
    parser.add_argument("--subset", type=int, default=10, help="choix runs on 1/N of the items and comparisons")
    parser.add_argument("--choix-full", action="store_true", help="run choix to convergence on the full data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    true, a, b, won = simulate(args.items, args.comparisons, args.seed)
    recover_scores(a[:100], b[:100], won[:100].astype(float), n_items=args.items)  # warm imports
    ours_s, ours = time_ours(args.items, a, b, won)
    thurstone_start = time.perf_counter()
    thurstone = recover_scores(a, b, won.astype(float), model="thurstone", n_items=args.items)
    thurstone_s = time.perf_counter() - thurstone_start
    print(f"data: {args.comparisons:,} comparisons over {args.items:,} items (hard Bradley-Terry outcomes)")
    print(f"synthwright bradley_terry: {ours_s:.2f} s (best of 3), {ours.iterations} Newton steps, "
          f"Spearman vs true scores {spearmanr(ours.scores, true)[0]:.4f}")
    print(f"synthwright thurstone:     {thurstone_s:.2f} s, Spearman vs true scores {spearmanr(thurstone.scores, true)[0]:.4f}")

    try:
        import choix
    except ImportError:
        print("choix is not installed (pip install choix): no comparison")
        return

    if args.choix_full:
        seconds, scores, iterations = run_choix(choix, args.items, a, b, won)
        print(f"choix mm_pairwise, full data: {seconds:.1f} s, {iterations} iterations (measured)")
        print(f"Spearman(synthwright, choix) = {spearmanr(ours.scores, scores)[0]:.5f}; speedup {seconds / ours_s:.0f}x")
        return

    # Subset with the same density: the first n/N items and the comparisons among them would be
    # too sparse, so draw a fresh problem of size n/N with m/N comparisons instead.
    n_sub, m_sub = args.items // args.subset, args.comparisons // args.subset
    true_sub, a_sub, b_sub, won_sub = simulate(n_sub, m_sub, args.seed + 1)
    sub_ours_s, sub_ours = time_ours(n_sub, a_sub, b_sub, won_sub)
    sub_s, sub_scores, sub_iters = run_choix(choix, n_sub, a_sub, b_sub, won_sub)
    print(f"\nsubset: {m_sub:,} comparisons over {n_sub:,} items")
    print(f"  synthwright {sub_ours_s:.3f} s; choix mm_pairwise {sub_s:.1f} s ({sub_iters} iterations to converge); "
          f"speedup {sub_s / sub_ours_s:.0f}x")
    print(f"  Spearman(synthwright, choix) = {spearmanr(sub_ours.scores, sub_scores)[0]:.5f}; "
          f"vs true: synthwright {spearmanr(sub_ours.scores, true_sub)[0]:.4f}, choix {spearmanr(sub_scores, true_sub)[0]:.4f}")

    probe = 3
    full_probe_s, _, _ = run_choix(choix, args.items, a, b, won, max_iter=probe)
    per_iter = full_probe_s / probe
    estimate = per_iter * sub_iters
    print(f"\nchoix on the full data: {per_iter:.2f} s per MM iteration (measured, {probe} iterations)")
    print(f"  EXTRAPOLATED full run: {per_iter:.2f} s x {sub_iters} iterations (as on the subset) = ~{estimate:.0f} s; "
          f"speedup ~{estimate / ours_s:.0f}x (run with --choix-full to measure)")


if __name__ == "__main__":
    main()
