"""Score recovery: Thurstone / Bradley-Terry from soft pairwise preferences."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy", reason="score recovery needs the ranking extra (scipy)")

from scipy.special import expit, ndtr
from scipy.stats import spearmanr

from synthwright.errors import UserError
from synthwright.ranking import recover_scores


def simulate(n_items=300, n_comparisons=4000, seed=0, link=ndtr):
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 1, n_items)
    a = rng.integers(0, n_items, n_comparisons)
    b = (a + rng.integers(1, n_items, n_comparisons)) % n_items  # never a == b
    return rng, true, a, b, link(true[a] - true[b])


@pytest.mark.parametrize("model,link", [("thurstone", ndtr), ("bradley_terry", expit)])
def test_clean_soft_preferences_recover_the_true_scores(model, link):
    _, true, a, b, p = simulate(link=link)
    result = recover_scores(a, b, p, model=model, prior_std=10.0)
    assert result.converged
    assert spearmanr(result.scores, true)[0] > 0.999
    # Clean probabilities determine scores up to the prior's slight shrinkage.
    assert np.abs(result.scores - true - (result.scores - true).mean()).max() < 0.05
    scores, std = result  # unpacks as a pair
    assert scores.shape == std.shape == (300,) and np.all(std > 0)


def test_ranking_degrades_gracefully_with_noise_and_sparsity():
    rng, true, a, b, p = simulate(n_comparisons=6000)
    hard = (rng.random(len(p)) < p).astype(float)  # one noisy judgment per pair instead of p
    rho_soft = spearmanr(recover_scores(a, b, p).scores, true)[0]
    rho_noisy = spearmanr(recover_scores(a, b, hard).scores, true)[0]
    rho_sparse = spearmanr(recover_scores(a[:600], b[:600], hard[:600]).scores, true)[0]
    rho_flipped = spearmanr(recover_scores(a, b, np.where(rng.random(len(p)) < 0.2, 1 - hard, hard)).scores, true)[0]
    assert rho_soft > 0.999
    assert 0.85 < rho_noisy < rho_soft
    assert 0.5 < rho_sparse < rho_noisy  # 4 comparisons per item: worse, still informative
    assert 0.6 < rho_flipped < rho_noisy  # 20% of verdicts flipped


def test_uncertainty_shrinks_with_more_comparisons():
    _, _, a, b, p = simulate(n_items=50, n_comparisons=2000)
    # Item 0 in few comparisons vs all others: keep only 3 of its comparisons.
    involves0 = np.flatnonzero((a == 0) | (b == 0))
    keep = np.setdiff1d(np.arange(len(a)), involves0[3:])
    result = recover_scores(a[keep], b[keep], p[keep])
    assert result.std[0] > 2 * np.median(result.std[1:])


def test_laplace_std_matches_the_inverse_hessian():
    # Small enough to invert the Hessian by hand: H = B' diag(c) B + I/prior^2.
    a, b, p = np.array([0, 1, 2, 0]), np.array([1, 2, 3, 2]), np.array([0.8, 0.6, 0.9, 0.7])
    result = recover_scores(a, b, p, model="bradley_terry", prior_std=2.0)
    d = result.scores[a] - result.scores[b]
    c = expit(d) * expit(-d)
    H = np.eye(4) / 4.0
    for k in range(4):
        e = np.zeros(4)
        e[a[k]], e[b[k]] = 1, -1
        H += c[k] * np.outer(e, e)
    assert np.allclose(result.std, np.sqrt(np.diag(np.linalg.inv(H))), rtol=1e-6)


def test_disconnected_and_unanimous_graphs_stay_finite():
    # Two separate pieces, and item 0 wins everything: no finite ML estimate without the prior.
    a = np.array([0, 0, 1, 3, 5])
    b = np.array([1, 2, 2, 4, 6])
    p = np.array([1.0, 1.0, 1.0, 0.0, 0.5])
    result = recover_scores(a, b, p, n_items=8)  # item 7 never compared
    assert np.all(np.isfinite(result.scores)) and np.all(np.isfinite(result.std))
    assert result.scores[0] > result.scores[1] > result.scores[2]
    assert result.scores[4] > result.scores[3]
    assert result.scores[5] == pytest.approx(result.scores[6]) == pytest.approx(0.0, abs=1e-9)
    assert result.scores[7] == 0.0 and result.std[7] == pytest.approx(3.0)  # the prior alone


def test_groups_are_independent_graphs_with_their_own_ids():
    _, true, a, b, p = simulate(n_items=40, n_comparisons=600)
    # Same local ids in two queries; the second query's preferences are reversed.
    groups = np.repeat(["q1", "q2"], len(a))
    result = recover_scores(np.tile(a, 2), np.tile(b, 2), np.concatenate([p, 1 - p]), groups=groups)
    assert len(result) == 80
    by_key = result.as_dict()
    s1 = np.array([by_key[("q1", i)][0] for i in range(40)])
    s2 = np.array([by_key[("q2", i)][0] for i in range(40)])
    assert spearmanr(s1, true)[0] > 0.99
    assert np.allclose(s1, -s2, atol=1e-6)
    alone = recover_scores(a, b, p)
    assert np.allclose(alone.scores, s1, atol=1e-6)  # a group fits as if alone


def test_weights_count_like_repeated_comparisons():
    _, _, a, b, p = simulate(n_items=30, n_comparisons=300)
    twice = recover_scores(np.tile(a, 2), np.tile(b, 2), np.tile(p, 2))
    weighted = recover_scores(a, b, p, weight=np.full(len(p), 2.0))
    assert np.allclose(twice.scores, weighted.scores, atol=1e-6)


def test_matches_choix_bradley_terry_map():
    choix = pytest.importorskip("choix", reason="choix is only for this cross-check: pip install choix (in the dev extra)")
    rng, _, a, b, p = simulate(n_items=150, n_comparisons=2000, link=expit)
    won = rng.random(len(p)) < p
    data = list(zip(np.where(won, a, b).tolist(), np.where(won, b, a).tolist()))
    prior_std = 2.0
    # choix minimises nll + alpha * |s|^2, i.e. a Gaussian prior with variance 1 / (2 alpha).
    reference = choix.opt_pairwise(150, data, alpha=1 / (2 * prior_std**2), method="Newton-CG")
    ours = recover_scores(a, b, won.astype(float), model="bradley_terry", prior_std=prior_std)
    assert spearmanr(ours.scores, reference)[0] > 0.99
    assert np.abs(ours.scores - reference).max() < 1e-4


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"p": [0.5, 1.5]}, "must lie in"),
        ({"p": [0.5]}, "one entry per comparison"),
        ({"model": "elo"}, "Unknown score model"),
        ({"prior_std": 0.0}, "prior_std"),
        ({"weight": [1.0, -1.0]}, "weight"),
    ],
)
def test_bad_input_is_a_user_error(kwargs, message):
    args = {"item_a": [0, 1], "item_b": [1, 2], "p": [0.5, 0.5], **kwargs}
    with pytest.raises(UserError, match=message):
        recover_scores(**args)
