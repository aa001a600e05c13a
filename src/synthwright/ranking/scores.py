"""Recover per-item scores from soft pairwise preferences (Thurstone Case V or Bradley-Terry).

Each comparison k says "item a_k beats item b_k with probability p_k" (a judge's soft verdict,
e.g. P("1") averaged over both presentation orders), with an optional weight w_k. Scores s
maximise

    sum_k w_k [p_k log F(s_a - s_b) + (1 - p_k) log F(s_b - s_a)]  -  sum_i s_i^2 / (2 prior_std^2)

with F = the standard normal CDF (Thurstone Case V, in units where the noise of a difference
has standard deviation 1) or the logistic function (Bradley-Terry). Soft labels enter the
likelihood as a cross-entropy, so p = 0.5 says "tie" instead of being rounded to a win.

Why a prior: with hard or near-hard verdicts an item that wins every comparison has no finite
maximum-likelihood score, and a graph in several pieces has no common origin. A weak Gaussian
prior (default sd 3, i.e. differences up to ~6 noise units are cheap) fixes both and pulls
each disconnected piece, and each query group, towards 0.

The objective is convex, so Newton's method finds the optimum. The Hessian is a weighted graph
Laplacian plus a diagonal, solved inexactly with preconditioned conjugate gradients on a
sparse incidence matrix: every step is a few sparse matrix-vector products over all
comparisons at once, never a Python loop per comparison or per group.

Uncertainty is the Laplace approximation: the posterior sd of s_i is sqrt((H^-1)_ii) at the
optimum. It is computed exactly (dense inverse, batched by component size) for connected
components up to `EXACT_STD_MAX_ITEMS` items, which covers per-query graphs; a larger
component gets 1/sqrt(H_ii), which ignores correlations and so understates the sd.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from synthwright.errors import UserError, require_module

RANKING_EXTRA = "'synthwright[ranking]'"
MODELS = ("thurstone", "bradley_terry")
EXACT_STD_MAX_ITEMS = 512
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)

Model = Literal["thurstone", "bradley_terry"]


@dataclass
class RecoveredScores:
    """One row per item. Unpacks as `scores, std = recover_scores(...)`.

    `group` and `item` say which (group, item) each row is: without groups, group is all 0
    and item is 0..n_items-1, so `scores[i]` is item i's score.
    """

    scores: np.ndarray
    std: np.ndarray
    group: np.ndarray
    item: np.ndarray
    iterations: int = 0
    converged: bool = True
    max_gradient: float = 0.0
    info: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.scores, self.std))

    def __len__(self) -> int:
        return len(self.scores)

    def as_dict(self) -> dict[tuple, tuple[float, float]]:
        """{(group, item): (score, std)}, for code that looks items up by id."""
        return {
            (g, i): (float(s), float(d))
            for g, i, s, d in zip(self.group.tolist(), self.item.tolist(), self.scores, self.std)
        }


def _link(model: str, d: np.ndarray, p: np.ndarray):
    """Per comparison: -log-likelihood, its first derivative psi in d (the ll's), and -psi' >= 0."""
    if model == "bradley_terry":
        # -log sigma(d) = softplus(-d), and softplus(d) = softplus(-d) + d: one transcendental pass.
        nll = np.logaddexp(0.0, -d) + (1 - p) * d
        sig = 0.5 * (1.0 + np.tanh(0.5 * d))  # stable logistic
        return nll, p - sig, sig * (1.0 - sig)
    special = require_module("scipy.special", "Thurstone score recovery", RANKING_EXTRA)
    # log Phi of the smaller side is accurate from log_ndtr; the larger side is log1p(-that),
    # accurate because the smaller side's Phi is at most 0.5. One log_ndtr call instead of two.
    small = special.log_ndtr(-np.abs(d))
    large = np.log1p(-np.exp(small))
    positive = d >= 0
    log_cdf_pos = np.where(positive, large, small)
    log_cdf_neg = np.where(positive, small, large)
    log_pdf = -0.5 * d * d - _LOG_SQRT_2PI
    # Inverse Mills ratios phi/Phi from logs, so they stay finite far in the tails.
    h_pos, h_neg = np.exp(log_pdf - log_cdf_pos), np.exp(log_pdf - log_cdf_neg)
    nll = -(p * log_cdf_pos + (1 - p) * log_cdf_neg)
    psi = p * h_pos - (1 - p) * h_neg
    curvature = p * h_pos * (d + h_pos) + (1 - p) * h_neg * (h_neg - d)
    return nll, psi, curvature


def _index_items(item_a, item_b, groups, n_items):
    """Map comparisons to dense item slots 0..n-1, returning (a, b, group, item, n)."""
    a, b = np.asarray(item_a), np.asarray(item_b)
    if a.shape != b.shape or a.ndim != 1:
        raise UserError(f"item_a and item_b must be 1-d arrays of one length (got shapes {a.shape} and {b.shape}).")
    if groups is None:
        if a.size and (not np.issubdtype(a.dtype, np.integer) or not np.issubdtype(b.dtype, np.integer)):
            raise UserError("Without groups, items must be integer ids 0..n_items-1.", "Pass groups= to use any ids, or map ids to integers first.")
        a, b = a.astype(np.int64), b.astype(np.int64)
        high = int(max(a.max(initial=-1), b.max(initial=-1))) + 1
        n = high if n_items is None else int(n_items)
        if a.size and (min(a.min(), b.min()) < 0 or high > n):
            raise UserError(f"Item ids must lie in 0..{n - 1} (n_items={n}).")
        return a, b, np.zeros(n, dtype=np.int64), np.arange(n), n
    g = np.asarray(groups)
    if g.shape != a.shape:
        raise UserError(f"groups must have one entry per comparison (got {g.shape}, comparisons {a.shape}).")
    # An item is a (group, item) pair: the same id in two groups is two different items.
    keys_g = np.concatenate([g, g])
    keys_i = np.concatenate([a, b])
    g_codes, g_values = _factorize(keys_g)
    i_codes, i_values = _factorize(keys_i)
    pair = g_codes.astype(np.int64) * (len(i_values) + 1) + i_codes
    uniq, slots = np.unique(pair, return_inverse=True)
    m = len(a)
    return slots[:m], slots[m:], g_values[uniq // (len(i_values) + 1)], i_values[uniq % (len(i_values) + 1)], len(uniq)


def _factorize(values: np.ndarray):
    uniq, codes = np.unique(values, return_inverse=True)
    return codes.ravel(), uniq


def recover_scores(
    item_a,
    item_b,
    p,
    weight=None,
    groups=None,
    *,
    model: Model = "thurstone",
    prior_std: float = 3.0,
    n_items: int | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
) -> RecoveredScores:
    """Fit scores to soft pairwise preferences (see the module doc for the model).

    item_a, item_b: the two items of each comparison; p: P(item_a beats item_b) in [0, 1];
    weight: optional non-negative weight per comparison (e.g. judge confidence, or the number
    of judgments a p averages). groups: optional group per comparison (e.g. query id); items
    are then identified by (group, item), so per-query ids may repeat across queries.
    prior_std: sd of the Gaussian prior on each score (larger = weaker).
    Stops when the largest gradient entry is below `tol`.
    """
    sparse = require_module("scipy.sparse", "Score recovery", RANKING_EXTRA)
    linalg = require_module("scipy.sparse.linalg", "Score recovery", RANKING_EXTRA)
    if model not in MODELS:
        raise UserError(f"Unknown score model '{model}'.", f"Use one of: {', '.join(MODELS)}.")
    if not prior_std > 0:
        raise UserError(f"prior_std must be positive (got {prior_std}).")
    a, b, group_of, item_of, n = _index_items(item_a, item_b, groups, n_items)
    p = np.asarray(p, dtype=np.float64)
    if p.shape != a.shape:
        raise UserError(f"p must have one entry per comparison (got {p.shape}, comparisons {a.shape}).")
    if p.size and not (np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1):
        raise UserError("Preference probabilities p must lie in [0, 1].", "Check the judge output for NaN or out-of-range values.")
    w = np.ones_like(p) if weight is None else np.asarray(weight, dtype=np.float64)
    if w.shape != p.shape or (w.size and not (np.isfinite(w).all() and w.min() >= 0)):
        raise UserError("weight must be finite, non-negative, one per comparison.")
    precision = 1.0 / prior_std**2
    m = len(a)

    # Incidence matrix: row k has +1 at a_k and -1 at b_k, so B @ s = the score differences.
    # Built straight in CSR form (two entries per row); B.T is its CSC view, no copy.
    B = sparse.csr_matrix((np.tile([1.0, -1.0], m), np.column_stack([a, b]).ravel(), np.arange(0, 2 * m + 1, 2)), shape=(m, n))
    Bt = B.T

    def objective(s):
        nll, psi, curv = _link(model, B @ s, p)
        return float(w @ nll) + 0.5 * precision * float(s @ s), psi, curv

    s = np.zeros(n)
    f, psi, curv = objective(s)
    iterations, converged, gmax = 0, False, np.inf
    for iterations in range(1, max_iter + 1):
        grad = -(Bt @ (w * psi)) + precision * s
        gmax = float(np.abs(grad).max(initial=0.0))
        if gmax < tol:
            converged = True
            break
        c = w * curv
        diag = np.bincount(a, c, n) + np.bincount(b, c, n) + precision
        hess = linalg.LinearOperator((n, n), matvec=lambda x, c=c: Bt @ (c * (B @ x)) + precision * x, dtype=np.float64)
        jacobi = linalg.LinearOperator((n, n), matvec=lambda x, d=diag: x / d, dtype=np.float64)
        # Inexact Newton: a loose solve far from the optimum, tighter as the gradient shrinks.
        step, _ = linalg.cg(hess, -grad, rtol=min(0.5, np.sqrt(gmax)), maxiter=200, M=jacobi)
        # Backtracking keeps every step downhill; convexity makes the full step the rule.
        slope = float(grad @ step)
        t = 1.0
        while True:
            f_new, psi_new, curv_new = objective(s + t * step)
            if f_new <= f + 1e-4 * t * slope or t < 1e-8:
                break
            t *= 0.5
        s, f, psi, curv = s + t * step, f_new, psi_new, curv_new
    std = _laplace_std(sparse, a, b, w * curv, precision, n)
    return RecoveredScores(s, std, group_of, item_of, iterations, converged, gmax, {"model": model, "prior_std": prior_std, "n_comparisons": m})


def _laplace_std(sparse, a, b, c, precision, n) -> np.ndarray:
    """sqrt(diag(H^-1)), exact per connected component up to EXACT_STD_MAX_ITEMS items."""
    diag = np.bincount(a, c, n) + np.bincount(b, c, n) + precision
    std = 1.0 / np.sqrt(diag)  # exact for isolated items; the fallback for huge components
    if len(a) == 0:
        return std
    csgraph = require_module("scipy.sparse.csgraph", "Score recovery", RANKING_EXTRA)
    adjacency = sparse.csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, label = csgraph.connected_components(adjacency, directed=False)
    size = np.bincount(label)
    # Local position of each item inside its component (items sorted by component).
    order = np.argsort(label, kind="stable")
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    local = np.empty(n, dtype=np.int64)
    local[order] = np.arange(n) - start[label[order]]
    edge_comp = label[a]
    for k in np.unique(size):
        if k < 2 or k > EXACT_STD_MAX_ITEMS:
            continue
        comps = np.flatnonzero(size == k)
        slot = np.full(len(size), -1)
        slot[comps] = np.arange(len(comps))
        # Stack every component of this size into (count, k, k) Hessian blocks, invert at once.
        blocks = np.zeros((len(comps), k, k))
        blocks[:, np.arange(k), np.arange(k)] = precision
        sel = np.flatnonzero(slot[edge_comp] >= 0)
        bs, la, lb, cs = slot[edge_comp[sel]], local[a[sel]], local[b[sel]], c[sel]
        np.add.at(blocks, (bs, la, la), cs)
        np.add.at(blocks, (bs, lb, lb), cs)
        np.add.at(blocks, (bs, la, lb), -cs)
        np.add.at(blocks, (bs, lb, la), -cs)
        inv_diag = np.diagonal(np.linalg.inv(blocks), axis1=1, axis2=2)
        members = np.flatnonzero(slot[label] >= 0)
        std[members] = np.sqrt(inv_diag[slot[label[members]], local[members]])
    return std
