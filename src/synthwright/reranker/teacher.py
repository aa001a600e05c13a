"""The teacher used directly as a pointwise reranker: the quality ceiling the method hopes the
teacher sets, at its cost (one LLM call per document).

Two ways to ask it:
- `likelihood` (the default): how likely the teacher finds the query as what it would write
  after reading the document, log P(query | document), summed over the query's tokens (UPR,
  Sachan et al., 2022). The query is the same for all its documents, so the sum ranks them as
  the mean would.
- `yes_no`: 1 + 4 P(Yes) to "does the document answer the query?".

On 30 SciFact dev queries (examples/scifact-full.yaml, the hybrid top 10, qwen2.5-coder-1.5b,
450 characters of each abstract; docs/results.md) likelihood reranks at 0.601 nDCG@10 (1.5 s a
document), yes/no at 0.473, hybrid 0.639. A small chat model says No to nearly everything, so
its P(Yes) ranks badly, while how well a document predicts the query's words does not depend
on its answering style. Likelihood needs the prompt's log-probabilities, which only the
in-process llama.cpp backend gives.

The same scores make an ensemble member (`likelihood:MODEL`, judges/members.py, reranker/judging.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from synthwright.errors import UserError

TeacherMethod = Literal["likelihood", "yes_no"]
TEACHER_METHODS: tuple[str, ...] = get_args(TeacherMethod)
LIKELIHOOD_PROMPT = "Passage: {document}\n\n{instruction}"  # the user turn; the query is scored as the reply

# What the teacher is asked to write from the document; the evaluation query is scored as its answer.
LIKELIHOOD_INSTRUCTIONS = {
    "claim": "Write a scientific claim that this passage supports or refutes.",
    "question": "Write a question that this passage answers.",
    "keyword": "Write a search query that this passage answers.",
    "code": "Write a web search query for code that does what this code does.",
}
# What decides a likelihood score besides the model, query and document: part of the
# fingerprint of every step that asks for one, so an edited prompt reruns them.
LIKELIHOOD_FINGERPRINT = {"prompt": LIKELIHOOD_PROMPT, "instructions": LIKELIHOOD_INSTRUCTIONS}


@dataclass
class TeacherRerank:
    """How to run the teacher as a pointwise reranker."""

    model: str
    queries: int = 30  # a seeded sample of the evaluation queries
    depth: int = 10  # hybrid documents it rescores per query
    style: str = "question"  # what the queries are: picks the instruction or the yes/no question
    max_chars: int = 450  # document characters it reads: prompt length is the cost
    context: Any = None  # the StepContext (request cache, run seed)
    step_name: str = "evaluation"
    method: TeacherMethod = "likelihood"

    def __post_init__(self):
        if self.method not in TEACHER_METHODS:
            raise UserError(f"Unknown teacher reranking method '{self.method}'.", f"Use one of: {', '.join(TEACHER_METHODS)}.")
        problem = likelihood_unsupported(self.model) if self.method == "likelihood" else None
        if problem:
            raise UserError(problem[0].upper() + problem[1:] + ".", "Use a llamacpp: model, or the yes/no method (teacher_method: yes_no, or --teacher-rerank-method yes_no).")

    @property
    def label(self) -> str:
        return "query likelihood" if self.method == "likelihood" else "P(yes)"


def teacher_rerank(setup: TeacherRerank, queries: Mapping[str, str], first_stage: Mapping[str, list], texts: Mapping[str, str]):
    """(reranked runs of the sampled queries, usage, failed documents). Documents past `depth`
    keep their first-stage order below the rescored ones."""
    tops = {qid: [doc for doc, _ in first_stage[qid][: setup.depth]] for qid in queries}
    pairs = [(queries[qid], texts[doc]) for qid, top in tops.items() for doc in top]
    progress = setup.context.request_progress("teacher as a reranker") if setup.context is not None else None
    if setup.method == "likelihood":
        scores, usage = query_likelihoods(setup.model, [(query, document, setup.style) for query, document in pairs],
                                          max_chars=setup.max_chars, context=setup.context, step_name=setup.step_name, progress=progress)
    else:
        scores, usage = _yes_no_scores(setup, pairs, progress)
    failed = sum(score is None for score in scores)
    floor = min((s for s in scores if s is not None), default=0.0) - 1.0  # a failed document goes below every scored one
    scored = iter(floor if s is None else s for s in scores)
    runs = {}
    for qid, top in tops.items():
        # Stable: equal scores keep the first stage's order. The tail keeps its order below.
        head = sorted(((doc, next(scored)) for doc in top), key=lambda item: -item[1])
        bottom = head[-1][1] if head else 0.0
        runs[qid] = head + [(doc, bottom - i) for i, (doc, _) in enumerate(first_stage[qid][setup.depth:], 1)]
    return runs, usage, failed


def query_likelihoods(model: str, items: Sequence[tuple[str, str, str]], *, max_chars: int | None, context=None,
                      step_name: str = "judge", progress=None):
    """(log P(query | document) per (query, document, query style) item, None where the request
    failed; usage). The style picks what the model is asked to write from the document."""
    from synthwright.core.step import StepContext
    from synthwright.judges.llm import run_requests
    from synthwright.llm.usage import UsageTotals

    # A blank query has no tokens to score: it gets no score (counted as failed), not an error.
    scorable = [i for i, (query, _, _) in enumerate(items) if query.strip()]
    requests = [_likelihood_request(*items[i], max_chars=max_chars) for i in scorable]
    usage = UsageTotals()
    responses = run_requests(context or StepContext(), model, step_name, requests, progress, usage)
    scores: list[float | None] = [None] * len(items)
    for i, response in zip(scorable, responses):
        scores[i] = response.continuation_logprob if response.ok else None
    return scores, usage


def _likelihood_request(query: str, document: str, style: str, *, max_chars: int | None):
    from synthwright.judges.prompts import truncate
    from synthwright.llm.records import LLMRequest, Message

    instruction = LIKELIHOOD_INSTRUCTIONS.get(style, LIKELIHOOD_INSTRUCTIONS["question"])
    prompt = LIKELIHOOD_PROMPT.format(document=truncate(document, max_chars), instruction=instruction)
    return LLMRequest(messages=(Message(role="user", content=prompt),), continuation=query)


def likelihood_unsupported(model: str) -> str | None:
    """Why `model` cannot score query likelihood (its backend gives no prompt log-probabilities),
    or None when it can. Option validators and TeacherRerank word their fix around it."""
    from synthwright.llm.spec import scores_continuations

    if scores_continuations(model):
        return None
    return f"query likelihood needs the prompt's log-probabilities, which '{model}' does not return"


def _yes_no_scores(setup: TeacherRerank, pairs: list[tuple[str, str]], progress):
    """1 + 4 P(Yes) per pair (None where the request failed)."""
    from synthwright.judges.base import PointItem, PointResult
    from synthwright.judges.pointwise import RubricJudge
    from synthwright.judges.rubric import Criterion, Rubric
    from synthwright.reranker.queries import JUDGE_CONTEXT_LABELS, POINTWISE_QUESTIONS

    rubric = Rubric(name="relevance", text_label="Document", context_label=JUDGE_CONTEXT_LABELS.get(setup.style, "Query"),
                    criteria=(Criterion(name="relevant", question=POINTWISE_QUESTIONS.get(setup.style, POINTWISE_QUESTIONS["question"]),
                                        binary=True, needs_context=True),))
    judge = RubricJudge(setup.model, rubric, max_chars=setup.max_chars, context=setup.context, step_name=setup.step_name)
    verdicts = judge.score([PointItem(text=document, context=query) for query, document in pairs], progress)
    return [v.score if isinstance(v, PointResult) else None for v in verdicts], judge.usage

