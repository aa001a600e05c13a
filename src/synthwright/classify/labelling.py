"""Who says which class a text belongs to: the teacher by label likelihood, and two cheap
members beside it.

- `teacher`: the probability of each label name as the teacher's answer after the text
  (log P(label | prompt, text), softmax over the labels). With llama.cpp the prompt is
  evaluated once and each label only adds its own few tokens (the evaluated prefix is
  kept), so scoring four labels costs about one prompt. A server that cannot score given
  text falls back to next-token probabilities of the label names (`choices`).
  Optionally calibrated: a small model prefers some label names whatever the text says (the
  1.5B teacher answers "negative" for SST-2 far more often than it should), so its
  probabilities can be divided by a prior and renormalised. `batch` takes the prior from the
  texts being labelled themselves, the mean probability per label (Zhou et al. 2023, "Batch
  calibration"; no labels read); `content_free` from what it answers for "N/A", "[MASK]" and
  an empty text (Zhao et al. 2021, "Calibrate before use"; three more prompts). On SST-2 dev
  the content-free prior overcorrects (docs/results.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from synthwright.classify.task import TaskSpec
from synthwright.llm.records import LLMRequest, LLMResponse, Message, SamplingParams

MEMBERS = ("teacher", "embedding", "crossfit")
Calibration = Literal["none", "batch", "content_free"]

# The text comes first and the question after it. Measured on 40 real AG News train articles
# with the 1.5B teacher (docs/results.md): question and class list first, text last 0.525;
# text first, then the classes with their descriptions 0.725 (0.75 with the names alone).
LABEL_PROMPT = """{text}

Which of these classes does this {register} belong to?
{classes}
Answer with the class name only."""


def label_prompt(task: TaskSpec, text: str) -> str:
    """The classification question, asked after the text (a small model reads the labels it
    must choose from better right before it answers)."""
    classes = "\n".join(f"- {label.name}" + (f": {label.description}" if label.description else "") for label in task.labels)
    return LABEL_PROMPT.format(register=task.text_register, classes=classes, text=text)


def label_requests(task: TaskSpec, texts: Sequence[str], *, by_likelihood: bool) -> list[LLMRequest]:
    """By likelihood: one request per (text, label), a text's labels one after another (so
    llama.cpp reuses the evaluated prompt). Otherwise one `choices` request per text."""
    params = SamplingParams(temperature=0.0, max_tokens=1)
    requests = []
    for text in texts:
        messages = (Message(role="user", content=label_prompt(task, text)),)
        if by_likelihood:
            requests += [LLMRequest(messages=messages, params=params, continuation=name) for name in task.names]
        else:
            requests.append(LLMRequest(messages=messages, params=params, choices=tuple(task.names)))
    return requests


def label_probabilities(task: TaskSpec, responses: Sequence[LLMResponse], *, by_likelihood: bool) -> tuple[np.ndarray, list[str | None]]:
    """(n, labels) probabilities from the responses of `label_requests`, and per text the
    reason it has none (its row is then NaN): a failed request, a missing score, or an
    answer that names no label."""
    from synthwright.judges.llm import choice_failure

    k = len(task.names)
    groups = [responses[i: i + k] for i in range(0, len(responses), k)] if by_likelihood else [[r] for r in responses]
    probs = np.full((len(groups), k), np.nan)
    errors: list[str | None] = []
    for row, group in enumerate(groups):
        if by_likelihood:
            failed = next((r.error or "unknown error" for r in group if not r.ok), None)
            if failed is None and any(r.continuation_logprob is None for r in group):
                failed = "no_label_likelihood: the backend returned no score"
        else:
            failed = choice_failure(group[0])
        errors.append(failed)
        if failed:
            continue
        if by_likelihood:
            logps = np.array([r.continuation_logprob for r in group], dtype=np.float64)
            weights = np.exp(logps - logps.max())
        else:
            weights = np.array([group[0].choice_probs.get(name, 0.0) for name in task.names], dtype=np.float64)
        probs[row] = weights / weights.sum()
    return probs, errors


# Inputs that say nothing: what the teacher answers for them is its prior over the label names.
CONTENT_FREE = ("N/A", "[MASK]", "")


def calibrate(probs: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Divide each row by the content-free `prior` and renormalise (NaN rows stay NaN)."""
    adjusted = probs / np.maximum(prior, 1e-12)
    return adjusted / adjusted.sum(axis=1, keepdims=True)


@dataclass
class TeacherLabels:
    """The teacher's label probabilities for some texts, and what they cost."""

    probs: np.ndarray  # (texts, labels); NaN rows where `errors` says why
    errors: list[str | None]
    usage: Any
    seconds: float  # the requests' own time, whether sent now or answered from the cache
    method: str
    content_free: np.ndarray | None = None  # mean probabilities for the content-free inputs, when asked

    def calibrated(self, how: Calibration) -> np.ndarray:
        """The probabilities with a prior divided out: none, the texts' own mean (batch) or the
        content-free answers."""
        if how == "none":
            return self.probs
        if how == "batch":
            return calibrate(self.probs, np.nanmean(self.probs, axis=0))
        if self.content_free is None:
            raise ValueError("no content-free prior was measured (ask with content_free=True)")
        return calibrate(self.probs, self.content_free)


def teacher_label_probabilities(context, model: str, step_name: str, task: TaskSpec, texts: Sequence[str], description: str,
                                *, content_free: bool = False) -> TeacherLabels:
    """Ask `model` for every text's label probabilities: by likelihood where the backend can
    score given text, else by label-name probabilities. With `content_free`, also ask for the
    content-free inputs and keep their mean (for `TeacherLabels.calibrated`)."""
    from synthwright.judges.llm import run_requests
    from synthwright.llm.usage import UsageTotals

    backend = context.backend(model)
    by_likelihood = backend.scores_continuations
    asked = list(texts) + (list(CONTENT_FREE) if content_free else [])
    requests = label_requests(task, asked, by_likelihood=by_likelihood)
    usage = UsageTotals()
    responses = run_requests(context, model, step_name, requests, context.request_progress(description), usage)
    probs, errors = label_probabilities(task, responses, by_likelihood=by_likelihood)
    prior = None
    if content_free:
        free, free_errors = probs[len(texts):], errors[len(texts):]
        probs, errors = probs[:len(texts)], errors[:len(texts)]
        failed = next((e for e in free_errors if e), None)
        if failed:  # without the prior no row can be calibrated: say so rather than calibrate by less
            errors = [e or f"content-free prior failed: {failed}" for e in errors]
            probs = np.full_like(probs, np.nan)
        else:
            prior = free.mean(axis=0)
    method = "label likelihood" if by_likelihood else "label-name probabilities"
    return TeacherLabels(probs, errors, usage, request_seconds(context, backend.identity, requests, responses), method, prior)


def request_seconds(context, identity: str, requests: Sequence[LLMRequest], responses: Sequence[LLMResponse]) -> float:
    """What answering `requests` took: each sent response's latency, and for an answer from the
    cache the latency the call log recorded when it was really sent."""
    seconds = sum(r.latency_s for r in responses if r.ok and not r.cached)
    cached_keys = [q.cache_key(identity) for q, r in zip(requests, responses) if r.ok and r.cached]
    cache = context.cache()
    if cached_keys and cache is not None:
        seconds += sum(cache.first_latencies(cached_keys).values())
    return float(seconds)


def description_probabilities(vectors: np.ndarray, label_vectors: np.ndarray, temperature: float = 0.05) -> np.ndarray:
    """Softmax over cosine similarities to each label's description (rows normalised)."""
    logits = (vectors @ label_vectors.T) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def label_texts(task: TaskSpec) -> list[str]:
    """What the embedding member compares a text to: each label's name and description."""
    return [f"{label.name}: {label.description}" if label.description else label.name for label in task.labels]


def crossfit_probabilities(vectors: np.ndarray, labels: Sequence[int], n_labels: int, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold probabilities from a logistic regression on the other folds."""
    from synthwright.errors import require_module

    require_module("sklearn", "The cross-fitted label-check member", "'synthwright[validate]'")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels)
    probs = np.full((len(y), n_labels), 1.0 / n_labels)
    folds = min(folds, int(np.bincount(y, minlength=n_labels)[np.unique(y)].min()))
    if folds < 2 or len(np.unique(y)) < 2:
        return probs  # too few rows to cross-fit: this member abstains (uniform)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(vectors, y):
        model = LogisticRegression(max_iter=2000, C=2.0).fit(vectors[train], y[train])
        probs[np.ix_(test, model.classes_)] = model.predict_proba(vectors[test])
    return probs


def ensemble(members: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted mean of member probabilities; a member with no score for a row (NaN) is left
    out of that row's mean, and a row no member scored stays NaN."""
    stacked = np.stack([members[name] for name in members])
    w = np.array([weights.get(name, 1.0) for name in members], dtype=np.float64)[:, None, None]
    present = ~np.isnan(stacked)
    total = np.where(present, stacked * w, 0.0).sum(axis=0)
    mass = np.where(present, w, 0.0).sum(axis=0)
    return np.where(mass > 0, total / np.where(mass > 0, mass, 1.0), np.nan)
