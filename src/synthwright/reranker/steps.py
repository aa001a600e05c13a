"""Pipeline steps of the synthetic reranker (see examples/reranker.yaml):

documents (corpus) -> queries (doc_queries) -> candidates -> judged (pair_judge)
-> labels (recover_labels) -> student (train_student) -> evaluation (evaluate_reranker)

Row steps (doc_queries, candidates, pair_judge) work batch by batch and resume; the stages
need every row at once (reliability weights and score recovery are global; training reads
all labels). One row = one synthetic query with its source document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from synthwright.core.lineage import Row, derive_id, with_meta
from synthwright.core.step import (
    BatchResult,
    RowStep,
    SourceStep,
    Stage,
    StepOptions,
    register_step,
)
from synthwright.errors import UserError
from synthwright.recipes.generate_step import GenerateOptions, GenerateStep
from synthwright.reranker.corpus import corpus_fingerprint, corpus_texts, open_corpus
from synthwright.reranker.teacher import LIKELIHOOD_FINGERPRINT, TeacherMethod, likelihood_model, likelihood_unsupported
from synthwright.reranker.queries import (
    DEFAULT_DOC_CHARS,
    DOC_QUERY_PROMPT,
    SENTENCE_FOCUS_COLUMNS,
    SENTENCE_INSTRUCTIONS,
    JUDGE_INSTRUCTIONS,
    REWRITE_PROMPT,
    STYLE_INSTRUCTIONS,
    draw_without_replacement,
    focus_sentences,
    judge_query,
    truncate_document,
)

DEFAULT_TEACHER = "llamacpp:qwen2.5-coder-1.5b"
Style = Literal["claim", "question", "keyword"]


# -- documents ------------------------------------------------------------------------------------
class CorpusOptions(StepOptions):
    corpus: str = Field(description="JSONL of {_id, title, text}, a BEIR folder, or pydoc:topics")
    sample: int | None = Field(None, ge=1, description="Documents to draw (seeded); all when unset")
    styles: list[Style] = Field(["question"], min_length=1, description="Query styles: one row per document and style")
    doc_chars: int = Field(DEFAULT_DOC_CHARS, ge=100, description="Characters of each document the teacher reads")
    min_chars: int = Field(80, ge=0, description="Skip documents shorter than this")
    focus: Literal["document", "sentence"] = Field("document", description="What the teacher reads: the document (its first doc_chars), or its title and one sentence (a query about one finding, like a citing paper's claim)")
    sentences_per_doc: int = Field(1, ge=1, description="focus: sentence: sentences drawn per document (seeded), one row each; fewer where a document has fewer")

    @model_validator(mode="after")
    def _sentences_need_sentence_focus(self) -> "CorpusOptions":
        if self.sentences_per_doc > 1 and self.focus != "sentence":
            raise ValueError("sentences_per_doc draws sentences for focus: sentence; with focus: document it would do nothing")
        return self


class ReadsCorpus:
    """A step whose `corpus` option names a corpus: a scheme such as pydoc:topics, or a path
    (relative paths are relative to the pipeline file)."""

    def _spec(self) -> str:
        spec = self.options.corpus
        return spec if ":" in spec and not spec.startswith(("/", ".")) and len(spec.split(":")[0]) > 1 else str(self.context.resolve(spec))


@register_step("corpus")
class CorpusStep(ReadsCorpus, SourceStep):
    Options = CorpusOptions
    description = "Sample documents from a corpus; one row per (document, query style) for doc_queries."

    def fingerprint_extra(self) -> dict[str, Any]:
        return corpus_fingerprint(self._spec())

    def read(self) -> Iterator[Row]:
        corpus = open_corpus(self._spec())
        ids = [doc_id for doc_id, doc in corpus.items() if len(doc.get("text") or "") >= self.options.min_chars]
        if self.options.sample and self.options.sample < len(ids):
            ids = sorted(self.context.rng(self.name, "sample").sample(ids, self.options.sample))
        for doc_id in ids:
            doc = corpus[doc_id]
            title = doc["title"] if doc.get("title") and doc["title"] != doc_id else ""
            text = f"{title}. {doc['text']}" if title else doc["text"]
            if self.options.focus == "document":
                for style in self.options.styles:
                    meta = {"id": derive_id(self.name, doc_id, style), "step": self.name, "source": "corpus", "doc_id": doc_id}
                    yield {"doc_id": doc_id, "document": truncate_document(text, self.options.doc_chars), "title": title,
                           "style": style, "instruction": STYLE_INSTRUCTIONS[style], "_meta": meta}
                continue
            # One draw per document: every style is asked about the same sentences.
            for number, sentence in enumerate(self._sentences(doc_id, doc["text"] or "", titled=bool(title))):
                for style in self.options.styles:
                    meta = {"id": derive_id(self.name, doc_id, style, number), "step": self.name, "source": "corpus", "doc_id": doc_id}
                    # `document` is the whole text: the query rules check a copy against every sentence.
                    yield {"doc_id": doc_id, "document": text, "title": title, "sentence": sentence, "style": style,
                           "instruction": SENTENCE_INSTRUCTIONS[style], "_meta": meta}

    def _sentences(self, doc_id: str, text: str, *, titled: bool) -> list[str]:
        """Seeded per document. A document that does not split into sentences (code, a list)
        gives its opening instead; a "sentence" where the split failed is cut like a document."""
        pool = focus_sentences(text, titled=titled) or ([text] if text.strip() else [])
        drawn = draw_without_replacement(pool, self.options.sentences_per_doc, self.context.rng(self.name, "sentences", doc_id))
        return [truncate_document(sentence, self.options.doc_chars) for sentence in drawn]


# -- queries --------------------------------------------------------------------------------------
class TeacherQueryOptions(GenerateOptions):
    """`generate` options shared by the steps where the teacher writes a query."""

    model: str = DEFAULT_TEACHER
    temperature: float = Field(0.7, ge=0.0)
    max_tokens: int = Field(48, ge=1)
    output_column: str = "query"


class DocQueriesOptions(TeacherQueryOptions):
    prompt: str | None = DOC_QUERY_PROMPT
    logprobs: bool = True
    min_logprob: float | None = Field(None, description="Drop queries whose mean token log-probability is below this (InPars)")


@register_step("doc_queries")
class DocQueriesStep(GenerateStep):
    """`generate` with the document-to-query prompt, then the query rules of reranker.queries."""

    Options = DocQueriesOptions
    description = "Ask the teacher for a query each document answers (InPars style); clean it and drop bad ones by reason."

    def required_columns(self) -> tuple[str, ...]:
        # Only rows written under sentence focus have these; the prompt falls back without them.
        return tuple(column for column in super().required_columns() if column not in SENTENCE_FOCUS_COLUMNS)

    def _child(self, result, row, sample_index, response):
        child = super()._child(result, row, sample_index, response)
        if child is None:
            return None
        column = self.options.output_column
        verdict = judge_query(child[column], row["document"], row.get("style", "question"),
                              logprob=child.get(f"{column}_logprob"), min_logprob=self.options.min_logprob)
        child = {**child, f"{column}_raw": child[column], column: verdict.query, "query_id": child["_meta"]["id"]}
        child = with_meta(child, recipe="doc_queries", source_doc=row["doc_id"], query_style=row.get("style"))
        if verdict.reason is not None:
            result.drop(child, verdict.reason)
            return None
        return child


class RewriteQueriesOptions(TeacherQueryOptions):
    prompt: str | None = REWRITE_PROMPT
    keep_original: bool = Field(True, description="Keep each original query too (both train the student: the same document for both wordings)")


@register_step("rewrite_queries")
class RewriteQueriesStep(GenerateStep):
    """The teacher rewrites each query in other words (a harder query for the same document);
    the result passes the same query rules, and a rewrite that drops them is counted by reason."""

    Options = RewriteQueriesOptions
    description = "Rewrite each generated query in everyday words (harder for lexical and dense matching); same query rules."

    def required_columns(self) -> tuple[str, ...]:
        return tuple(sorted({*super().required_columns(), "query", "document"}))

    def process(self, rows: list[Row]) -> BatchResult:
        result = super().process(rows)
        # A failed rewrite is recorded as the rewrite that failed, not as its original (which is kept).
        result.failed = [({**row, "query_original": row["query"]}, f"rewrite: {reason}") for row, reason in result.failed]
        if self.options.keep_original:  # each original, then its rewrites
            rewrites: dict[str, list[Row]] = {}
            for child in result.kept:
                rewrites.setdefault(child["_meta"]["parents"][0], []).append(child)
            result.kept = [out for row in rows for out in (row, *rewrites.get(row["_meta"]["id"], ()))]
            result.stats.rows_out += len(rows)
        return result

    def _child(self, result, row, sample_index, response):
        child = super()._child(result, row, sample_index, response)
        if child is None:
            return None
        verdict = judge_query(child["query"], row["document"], row.get("style", "question"))
        child = {**child, "query_raw": child["query"], "query": verdict.query, "query_original": row["query"],
                 "query_id": child["_meta"]["id"]}
        child.pop("query_logprob", None)  # the original's, not this text's
        child = with_meta(child, recipe="rewrite_queries", source_doc=row["doc_id"], query_style=row.get("style"))
        if verdict.reason is None and verdict.query.lower() == row["query"].lower():
            verdict = type(verdict)(verdict.query, "unchanged")
        if verdict.reason is not None:
            result.drop(child, verdict.reason)
            return None
        return child


# -- candidates -----------------------------------------------------------------------------------
_RETRIEVERS: dict = {}


def shared_retriever(spec: str, method: str = "hybrid"):
    """One retriever per (corpus, method) per process: the index is the expensive part."""
    key = (spec, method)
    if key not in _RETRIEVERS:
        from synthwright.ranking.retrieval import Retriever

        _RETRIEVERS[key] = Retriever(open_corpus(spec), method)
    return _RETRIEVERS[key]


class CandidatesOptions(StepOptions):
    corpus: str
    k: int = Field(10, ge=1, description="Candidates kept per query (ranked by hybrid retrieval)")
    roundtrip_k: int | None = Field(20, ge=1, description="Drop a query whose source document is not in the top roundtrip_k (null: keep all)")
    query_column: str = "query"


@register_step("candidates")
class CandidatesStep(ReadsCorpus, RowStep):
    Options = CandidatesOptions
    description = "Hybrid retrieval (BM25 + MiniLM, RRF) per query: candidates, component scores, and the round-trip check."
    input_columns = ("doc_id",)
    default_batch_size = 256

    def required_columns(self) -> tuple[str, ...]:
        return ("doc_id", self.options.query_column)

    def output_columns(self) -> tuple[str, ...]:
        return ("candidates", "source_rank", "bm25", "dense")

    def fingerprint_extra(self) -> dict[str, Any]:
        return corpus_fingerprint(self._spec())

    def process(self, rows: list[Row]) -> BatchResult:
        o = self.options
        retriever = shared_retriever(self._spec())
        depth = max(o.k, o.roundtrip_k or 0, 100)
        queries = [row[o.query_column] for row in rows]
        lexical, semantic = retriever.bm25.search(queries, depth), retriever.dense.search(queries, depth)
        from synthwright.ranking.retrieval import reciprocal_rank_fusion

        result = BatchResult.for_input(len(rows))
        for row, lex, sem in zip(rows, lexical, semantic):
            fused = [doc for doc, _ in reciprocal_rank_fusion((lex, sem), depth)]
            rank = fused.index(row["doc_id"]) + 1 if row["doc_id"] in fused else None
            if o.roundtrip_k and (rank is None or rank > o.roundtrip_k):
                result.drop({**row, "source_rank": rank}, "not_round_trip")
                continue
            candidates = [doc for doc in fused if doc != row["doc_id"]][: o.k]
            bm25, dense = dict(lex), dict(sem)
            nodes = [row["doc_id"], *candidates]
            result.keep({**row, "candidates": candidates, "source_rank": rank,
                         "bm25": [bm25.get(d, 0.0) for d in nodes], "dense": [dense.get(d, 0.0) for d in nodes]})
        return result


# -- pairwise judgments ---------------------------------------------------------------------------
def likelihood_fingerprint(judges: list[str]) -> dict[str, Any]:
    """The likelihood prompt, for steps with a `likelihood:` member only (pairwise runs keep theirs)."""
    return {"likelihood": LIKELIHOOD_FINGERPRINT} if any(likelihood_model(spec) for spec in judges) else {}


def checked_judges(judges: list[str]) -> list[str]:
    """A `likelihood:MODEL` member needs a model that gives the prompt's log-probabilities."""
    for spec in judges:
        model = likelihood_model(spec)
        problem = likelihood_unsupported(model) if model is not None else None
        if problem:
            raise ValueError(f"judge '{spec}': {problem}: use likelihood:llamacpp:MODEL, or '{model}' as a pairwise member")
    return judges


class PairJudgeOptions(StepOptions):
    corpus: str
    judges: list[str] = Field(["bm25", "embedding", DEFAULT_TEACHER], min_length=1,
                              description="Members: bm25, embedding (MiniLM cosine), LLM model specs (pairwise, both orders) "
                                          "and likelihood:MODEL (query likelihood, llamacpp: models)")
    pairs_per_query: int = Field(16, ge=1, description="Comparison graph size per query (cheap members judge all)")
    llm_pairs_per_query: float = Field(2.0, ge=0.0, description="LLM judgments per query on average (each asked in both orders)")
    anchor_share: float = Field(0.2, ge=0.0, le=1.0, description="Share of the LLM budget spent on anchor pairs (source vs a bottom candidate) to measure its reliability")
    max_chars: int = Field(450, ge=50, description="Document characters an LLM judge reads (cost is prompt length)")
    instruction: str | None = Field(None, description="Pairwise question for the LLM (default fits the query style)")
    n_random: int = Field(2, ge=0)

    @field_validator("judges")
    @classmethod
    def _judges(cls, judges: list[str]) -> list[str]:
        return checked_judges(judges)




@register_step("pair_judge")
class PairJudgeStep(ReadsCorpus, RowStep):
    Options = PairJudgeOptions
    description = "Select a connected comparison graph per query on a budget; judge it with an ensemble (cheap members everywhere, the LLM where they disagree)."
    input_columns = ("query_id", "query", "doc_id", "candidates", "bm25", "dense")
    default_batch_size = 64

    def __init__(self, name, options: PairJudgeOptions, context):
        super().__init__(name, options, context)
        self.llm_specs = [spec for spec in options.judges if spec not in ("bm25", "embedding")]
        self._embedding = None

    def output_columns(self) -> tuple[str, ...]:
        return ("comparisons",)

    def fingerprint_extra(self) -> dict[str, Any]:
        # "budget": batches judged when the LLM budget was rounded, not drawn, are redone.
        return {**corpus_fingerprint(self._spec()), "instructions": JUDGE_INSTRUCTIONS, "budget": "stochastic rounding",
                **likelihood_fingerprint(self.options.judges)}

    def process(self, rows: list[Row]) -> BatchResult:
        from synthwright.reranker.judging import judge_batch

        result = BatchResult.for_input(len(rows))
        judged, usage = judge_batch(rows, self.options, self.context, self.name, self.llm_specs, corpus_texts(open_corpus(self._spec())))
        for row in judged:
            result.keep(row)
        for spec_usage in usage:
            result.stats.add_usage(spec_usage)
        return result


# -- labels ---------------------------------------------------------------------------------------
class RecoverOptions(StepOptions):
    model: Literal["thurstone", "bradley_terry"] = "thurstone"
    prior_std: float = Field(3.0, gt=0)
    weights: dict[str, float] | Literal["reliability", "equal"] = Field("reliability", description="Member weights: measured on anchor pairs, equal, or given")
    drop: list[str] = Field([], description="Members to leave out (ablation)")
    calibration: str | None = Field(None, description="weights: reliability from this calibrate_judges report (inside the run folder) instead of anchor pairs")
    report: str | None = "labels_report.json"


@register_step("recover_labels")
class RecoverLabelsStage(Stage):
    Options = RecoverOptions
    description = "Weigh ensemble members by measured reliability, combine, fit Thurstone per query; adds labels {doc_id: label in [0,1]}."

    def fingerprint_extra(self) -> dict[str, Any]:
        return {"combination": "sign-accuracy weights, unit-scale logits"}  # labels made the older way are redone

    def run(self, rows: Iterable[Row]) -> BatchResult:
        from synthwright.reranker.labels import estimate_reliability, recover_labels

        rows = list(rows)
        result = BatchResult.for_input(len(rows))
        members = sorted({m for row in rows for c in row.get("comparisons") or () for m, p in (c.get("by") or {}).items() if p is not None} - set(self.options.drop))
        reliability = estimate_reliability(rows, members)
        calibrated = self._calibrated_weights(members)
        if self.options.weights == "reliability":
            weights = {m: calibrated.get(m, r.weight) for m, r in reliability.items()}
        elif self.options.weights == "equal":
            weights = {m: 1.0 for m in members}
        else:
            weights = {m: w for m, w in self.options.weights.items() if m in members}
        if members and not any(weights.get(m, 0.0) > 0 for m in members):
            accuracies = ", ".join(f"{m} {r.accuracy}" for m, r in reliability.items())
            raise UserError(f"Every ensemble member has weight 0 (accuracy at or below chance: {accuracies}), so no label can be recovered.",
                            "Give weights explicitly (`weights: {member: w}` or `equal`), or check the judges and the calibration sample.")
        scales = {m: r.scale for m, r in reliability.items()}
        recovered = {q.query_id: q for q in recover_labels(rows, weights, model=self.options.model, prior_std=self.options.prior_std, scales=scales)}
        for row in rows:
            entry = recovered.get(row["query_id"])
            if entry is None:
                result.drop(row, "no_comparisons")
                continue
            # A list of records, not a {doc_id: label} map: Parquet would make every doc id a column.
            labels = [{"doc_id": doc, "label": entry.labels[doc], "score": entry.scores[doc], "std": entry.std[doc]} for doc in entry.labels]
            result.keep({**row, "labels": labels})
        if self.options.report:
            report = {"members": {m: r.to_dict() for m, r in reliability.items()}, "weights": weights, "scales": scales,
                      "weights_from": ("calibration sample" if calibrated else "anchor pairs") if self.options.weights == "reliability"
                      else self.options.weights if isinstance(self.options.weights, str) else "given",
                      "queries": len(recovered), "comparisons": sum(len(r.get("comparisons") or ()) for r in rows)}
            path = self.context.output_path(self.options.report)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=2), encoding="utf-8")
        return result


    def _calibrated_weights(self, members: list[str]) -> dict[str, float]:
        """Member weights measured on the human calibration sample, when one is named."""
        if not self.options.calibration:
            return {}
        path = self.context.output_path(self.options.calibration)
        if not path.is_file():
            raise UserError(f"The calibration report '{path}' does not exist.",
                            "Run a calibrate_judges step before this one (its `output` is the file to name here).")
        try:
            measured = json.loads(path.read_text(encoding="utf-8"))["members"]
            weights = {m: float(measured[m]["weight"]) for m in members if m in measured}
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"The calibration report '{path}' is not one calibrate_judges wrote ({exc}).",
                            "Rerun the calibrate_judges step, or point `calibration` at its output.") from None
        missing = [m for m in members if m not in weights]
        if missing:
            raise UserError(f"The calibration sample has no figures for {', '.join(missing)}.",
                            "Give calibrate_judges the same judges as pair_judge, or drop those members (`drop:`).")
        return weights


# -- calibration ----------------------------------------------------------------------------------
class CalibrateOptions(StepOptions):
    corpus: str
    queries: str = Field(description="Real training queries (BEIR queries.jsonl): never the evaluation queries")
    qrels: str = Field(description="Their qrels (BEIR TSV)")
    limit: int = Field(50, ge=1, le=50, description="Queries in the sample (seeded); the method allows at most 50")
    judges: list[str] = Field(["bm25", "embedding", DEFAULT_TEACHER], min_length=1, description="The ensemble members, as in pair_judge")
    style: Style = Field("question", description="Query style of the real queries (picks the LLM's question)")
    max_chars: int = Field(450, ge=50)
    output: str = "calibration.json"

    @field_validator("judges")
    @classmethod
    def _judges(cls, judges: list[str]) -> list[str]:
        return checked_judges(judges)


@register_step("calibrate_judges")
class CalibrateJudgesStage(ReadsCorpus, Stage):
    Options = CalibrateOptions
    description = "Judge a small human-labelled sample (<= 50 real queries with qrels) with every member: accuracy and weight on real labels; rows pass through."

    def fingerprint_extra(self) -> dict[str, Any]:
        return {**corpus_fingerprint(self._spec()), "instructions": JUDGE_INSTRUCTIONS, **likelihood_fingerprint(self.options.judges)}

    def run(self, rows: Iterable[Row]) -> BatchResult:
        from synthwright.reranker.calibration import CalibrationOptions, calibrate_members, calibration_rows
        from synthwright.reranker.evaluation import judged_queries, sample_queries
        from synthwright.reranker.judging import judge_batch

        o = self.options
        rows = list(rows)
        result = BatchResult.for_input(len(rows))
        texts = corpus_texts(open_corpus(self._spec()))
        queries, qrels = judged_queries(self.context.resolve(o.queries), self.context.resolve(o.qrels))
        qrels = {qid: {doc: grade for doc, grade in judged.items() if doc in texts} for qid, judged in qrels.items()}
        sample = sample_queries(queries, o.limit, self.context.run_seed)
        calibration = calibration_rows(sample, qrels, shared_retriever(self._spec()), style=o.style, seed=self.context.run_seed)
        if not calibration:
            raise UserError(f"None of the {len(sample)} calibration queries has a relevant document in the corpus.",
                            "Check that the qrels belong to this corpus (their corpus-ids must be its _ids).")
        llm_specs = [spec for spec in o.judges if spec not in ("bm25", "embedding")]
        judged, usage = judge_batch(calibration, CalibrationOptions(o.judges, o.max_chars), self.context, self.name, llm_specs, texts)
        members = sorted({m for row in judged for c in row["comparisons"] for m in c["by"]})
        report = {**calibrate_members(judged, members), "rows": judged}
        path = self.context.output_path(o.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2), encoding="utf-8")
        for spec_usage in usage:
            result.stats.add_usage(spec_usage)
        for row in rows:
            result.keep(row)
        return result


# -- student --------------------------------------------------------------------------------------
class StudentOptions(StepOptions):
    corpus: str
    kind: Literal["cross", "bi"] = "cross"
    output: str = Field("student", description="Folder for the model and its curves (inside the run folder)")
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(3e-5, gt=0)
    max_length: int = Field(256, ge=32)
    negatives: int = Field(2, ge=1, description="kind bi: hard negatives per query (the best-labelled candidates below 0.3)")
    label_source: Literal["recovered", "binary", "real"] = Field("recovered", description="recovered: Thurstone labels; binary: source = 1, candidates = 0 (the InPars baseline); real: real_queries with real_qrels (the comparison)")
    real_queries: str | None = Field(None, description="label_source real: BEIR queries.jsonl of real training queries (never the evaluation queries)")
    real_qrels: str | None = None
    real_limit: int | None = Field(None, ge=1, description="label_source real: use at most this many real queries")
    validation_queries: str | None = Field(None, description="Real queries (BEIR queries.jsonl) for the real-validation loss curve; never the evaluation queries")
    validation_qrels: str | None = None
    validation_limit: int = Field(50, ge=1)
    base_weight: float = Field(0.0, ge=0.0, lt=1.0, description="kind bi: the base model's share of the saved weights (WiSE-FT interpolation; 0 keeps the student as trained)")

    @model_validator(mode="after")
    def _base_weight_needs_a_bi_encoder(self) -> "StudentOptions":
        if self.base_weight and self.kind != "bi":
            raise ValueError("base_weight works with kind: bi only (a cross-encoder's scoring head has no base to go back to)")
        return self

    def settings(self, seed: int):
        """The student's TrainSettings (the sweep script of examples/ rebuilds a run's student from them)."""
        from synthwright.reranker.student import TrainSettings

        return TrainSettings(kind=self.kind, epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                             max_length=self.max_length, negatives=self.negatives, seed=seed, base_weight=self.base_weight)


def row_labels(row: Row, label_source: Literal["recovered", "binary"] = "recovered") -> dict[str, float]:
    """A dataset row's graded documents: the recovered labels, or binary ones (source 1, candidates 0)."""
    if label_source == "binary":
        return {row["doc_id"]: 1.0, **{d: 0.0 for d in row["candidates"]}}
    return {item["doc_id"]: item["label"] for item in row["labels"]}


@register_step("train_student")
class TrainStudentStage(ReadsCorpus, Stage):
    Options = StudentOptions
    description = "Train the student reranker (MiniLM cross-encoder or bi-encoder) on the labels; rows pass through."

    def run(self, rows: Iterable[Row]) -> BatchResult:
        from synthwright.reranker.student import QueryLabels, train_student

        o = self.options
        rows = list(rows)
        result = BatchResult.for_input(len(rows))
        texts = corpus_texts(open_corpus(self._spec()))
        if o.label_source == "real":
            from synthwright.reranker.evaluation import real_label_groups

            if not (o.real_queries and o.real_qrels):
                raise UserError("label_source: real needs real_queries and real_qrels.", "Give the real training queries and their qrels.")
            groups = real_label_groups(self.context.resolve(o.real_queries), self.context.resolve(o.real_qrels), self._spec(),
                                       limit=o.real_limit, seed=self.context.run_seed)
        else:
            groups = [QueryLabels(row["query"], row_labels(row, o.label_source)) for row in rows]
        validation = self._validation(texts) if o.validation_queries else None
        trained = train_student(groups, texts, self.context.output_path(o.output), o.settings(self.context.run_seed), validation)
        for row in rows:
            result.keep(row)
        result.stats.seconds += trained.seconds
        return result

    def fingerprint_extra(self) -> dict[str, Any]:
        return {"bi_loss": "in-batch negatives, a query's label-chosen negatives in one row"}  # older students are redone

    def _validation(self, texts):
        from synthwright.reranker.evaluation import real_label_groups

        o = self.options
        if not o.validation_qrels:
            raise UserError("validation_queries needs validation_qrels too.")
        return real_label_groups(self.context.resolve(o.validation_queries), self.context.resolve(o.validation_qrels),
                                 self._spec(), limit=o.validation_limit, seed=self.context.run_seed)


# -- evaluation -----------------------------------------------------------------------------------
class EvaluateOptions(StepOptions):
    corpus: str
    queries: str = Field(description="Real evaluation queries: BEIR queries.jsonl (only those the qrels judge are used)")
    qrels: str = Field(description="BEIR qrels TSV of the evaluation queries")
    students: dict[str, str] = Field({"student": "student/model"}, description="Name -> student model folder (relative: inside the run folder); give the step that trains them as `input`, so a retrained student re-runs the evaluation")
    depth: int = Field(30, ge=1, description="How many first-stage documents the student reranks")
    resamples: int = Field(2000, ge=100)
    control: bool = Field(True, description="Also put the untrained base model (MiniLM) in the student's place in BM25 + student: the student's own gain is its gain over this control")
    output: str = "evaluation.json"
    teacher: str | None = Field(None, description="Also rerank with this LLM used directly, pointwise (the quality ceiling at its cost)")
    teacher_queries: int = Field(30, ge=1, description="Evaluation queries (seeded sample) the teacher reranks: one LLM call per document")
    teacher_depth: int = Field(10, ge=1, description="Hybrid documents per query the teacher rescores")
    teacher_style: Style = Field("question", description="Query style of the evaluation queries: picks the teacher's yes/no question")
    teacher_max_chars: int = Field(450, ge=50, description="Document characters the teacher reads")
    teacher_method: TeacherMethod = Field("likelihood", description="How the teacher scores a document: likelihood = log P(query | document) (llamacpp: models), yes_no = P(Yes) to 'does it answer the query?'")

    @model_validator(mode="after")
    def _likelihood_needs_prompt_logprobs(self) -> "EvaluateOptions":
        problem = likelihood_unsupported(self.teacher) if self.teacher and self.teacher_method == "likelihood" else None
        if problem:
            raise ValueError(f"teacher_method likelihood: {problem}: use a llamacpp: teacher, or teacher_method: yes_no "
                             "(--teacher-rerank-method yes_no)")
        return self


@register_step("evaluate_reranker")
class EvaluateRerankerStage(ReadsCorpus, Stage):
    Options = EvaluateOptions
    description = "Evaluate BM25, dense, hybrid and each student on real queries (nDCG@10, MRR@10, Recall@100, paired bootstrap); rows pass through."

    def fingerprint_extra(self) -> dict[str, Any]:
        # Not the student folders' mtimes: fingerprints are planned before the student trains,
        # so a stamp would always be one run behind. The training step as `input` tracks it.
        o = self.options
        likelihood = o.teacher is not None and o.teacher_method == "likelihood"
        return {**corpus_fingerprint(self._spec()), "systems": "with BM25 + student and the control",
                **({"likelihood": LIKELIHOOD_FINGERPRINT} if likelihood else {})}

    def run(self, rows: Iterable[Row]) -> BatchResult:
        from synthwright.reranker.evaluation import evaluate_students, judged_queries
        from synthwright.reranker.teacher import TeacherRerank
        from synthwright.embed.local import minilm_path
        from synthwright.reranker.student import StudentReranker

        o = self.options
        rows = list(rows)
        result = BatchResult.for_input(len(rows))
        queries, qrels = judged_queries(self.context.resolve(o.queries), self.context.resolve(o.qrels))
        students = {name: StudentReranker(self.context.output_path(path)) for name, path in o.students.items()}
        control = ("MiniLM", StudentReranker(minilm_path())) if o.control and students else None
        teacher = TeacherRerank(o.teacher, o.teacher_queries, o.teacher_depth, o.teacher_style, o.teacher_max_chars,
                                context=self.context, step_name=self.name, method=o.teacher_method) if o.teacher else None
        evaluation = evaluate_students(self._spec(), queries, qrels, students, depth=o.depth, resamples=o.resamples,
                                       seed=self.context.run_seed, teacher=teacher, control=control)
        path = self.context.output_path(o.output)
        path.write_text(json.dumps(evaluation.to_dict(), indent=2), encoding="utf-8")
        for usage in evaluation.llm_usage:
            result.stats.add_usage(usage)
        for row in rows:
            result.keep(row)
        return result


# -- report ---------------------------------------------------------------------------------------
class ReportOptions(StepOptions):
    output: str = "report.html"
    title: str = "Synthetic reranker"


@register_step("reranker_report")
class RerankerReportStage(Stage):
    Options = ReportOptions
    description = "One HTML report: data stats, judge reliability and bias, score distributions, loss curves, evaluation table."

    def run(self, rows: Iterable[Row]) -> BatchResult:
        from synthwright.reranker.report import write_report

        rows = list(rows)
        result = BatchResult.for_input(len(rows))
        write_report(self.context.run_dir, rows, self.context.output_path(self.options.output), title=self.options.title)
        for row in rows:
            result.keep(row)
        return result
