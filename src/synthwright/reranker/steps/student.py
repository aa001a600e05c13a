"""`train_student`: train the student reranker on the recovered (or binary, or real) labels."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field, model_validator

from synthwright.core.lineage import Row
from synthwright.core.step import StepOptions, StepStats, added_option, register_step
from synthwright.errors import UserError
from synthwright.reranker.corpus import corpus_texts, open_corpus
from synthwright.reranker.student import QueryLabels
from synthwright.reranker.steps.base import PassThroughStage, ReadsCorpus


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
    min_source_rank: int = added_option(1, ge=1, description="label_source recovered or binary: train only on queries whose source the first stage ranked at this rank or lower (2: the queries it gets wrong; no dev label is read)")
    limit: int | None = added_option(None, ge=1, description="label_source recovered or binary: train on at most this many synthetic queries, a seeded draw (a point of the learning curve)")
    with_real: bool = added_option(False, description="label_source recovered or binary: also train on real_queries with real_qrels (synthetic + real together)")
    validation_queries: str | None = Field(None, description="Real queries (BEIR queries.jsonl) for the real-validation loss curve; never the evaluation queries")
    validation_qrels: str | None = None
    validation_limit: int = Field(50, ge=1)
    base_weight: float = Field(0.0, ge=0.0, lt=1.0, description="kind bi: the base model's share of the saved weights (WiSE-FT interpolation; 0 keeps the student as trained)")

    @model_validator(mode="after")
    def _base_weight_needs_a_bi_encoder(self) -> "StudentOptions":
        if self.base_weight and self.kind != "bi":
            raise ValueError("base_weight works with kind: bi only (a cross-encoder's scoring head has no base to go back to)")
        return self

    @model_validator(mode="after")
    def _synthetic_subsets_need_synthetic_labels(self) -> "StudentOptions":
        if self.label_source == "real" and (self.limit is not None or self.min_source_rank > 1):
            raise ValueError("limit and min_source_rank choose among the synthetic queries; with label_source: real use real_limit")
        if self.with_real and self.label_source == "real":
            raise ValueError("with_real adds real pairs to synthetic ones; label_source: real already trains on the real pairs alone")
        if (self.with_real or self.label_source == "real") and not (self.real_queries and self.real_qrels):
            what = "with_real" if self.with_real else "label_source: real"
            raise ValueError(f"{what} needs real_queries and real_qrels (the real training queries and their qrels, never the evaluation ones)")
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


def hard_queries(rows: list[Row], min_source_rank: int) -> list[Row]:
    """The rows whose source the first stage put at `min_source_rank` or lower (not found
    counts as lower): the queries it gets wrong, where the student has something to learn.
    The rank comes from the round trip of the candidates step; no evaluation label is read."""
    if min_source_rank <= 1:
        return rows
    return [row for row in rows if row.get("source_rank") is None or row["source_rank"] >= min_source_rank]


def nested_subset(rows: list[Row], limit: int | None, rng: random.Random) -> list[Row]:
    """All rows, or the first `limit` of a shuffle by `rng`, kept in their order. With the same
    seed a smaller limit gives a subset of a larger one, so the points of a learning curve are
    nested subsets of one run's data and cost no teacher time."""
    if limit is None or limit >= len(rows):
        return rows
    order = list(range(len(rows)))
    rng.shuffle(order)
    chosen = set(order[:limit])
    return [row for i, row in enumerate(rows) if i in chosen]


@register_step("train_student")
class TrainStudentStage(ReadsCorpus, PassThroughStage):
    Options = StudentOptions
    description = "Train the student reranker (MiniLM cross-encoder or bi-encoder) on the labels; rows pass through."

    version = 2  # 2: a bi-encoder learns from in-batch negatives, with a query's label-chosen negatives in one row

    def write_output(self, rows: list[Row], stats: StepStats) -> None:
        from synthwright.reranker.student import train_student

        o = self.options
        texts = corpus_texts(open_corpus(self._spec()))
        validation = self._validation(texts) if o.validation_queries else None
        trained = train_student(self._groups(rows), texts, self.context.output_path(o.output), o.settings(self.context.run_seed), validation)
        stats.seconds += trained.seconds

    def _groups(self, rows: list[Row]) -> list[QueryLabels]:
        """What the student learns from: the synthetic queries' labels, the real pairs, or both."""
        o = self.options
        if o.label_source == "real":
            return self._real_groups(rows)
        groups = [QueryLabels(row["query"], row_labels(row, o.label_source)) for row in self._drawn(rows)]
        return groups + self._real_groups(rows) if o.with_real else groups

    def _real_groups(self, rows: list[Row]) -> list[QueryLabels]:
        """The real training queries with their real labels, negatives from the run's first stage."""
        from synthwright.reranker.evaluation import real_label_groups

        o = self.options
        # Negatives from the first stage the synthetic student's came from, when one was chosen.
        first_stage = rows[0].get("first_stage", "hybrid") if rows else "hybrid"
        return real_label_groups(self.context.resolve(o.real_queries), self.context.resolve(o.real_qrels), self._spec(),
                                 limit=o.real_limit, seed=self.context.run_seed, first_stage=first_stage)

    def _drawn(self, rows: list[Row]) -> list[Row]:
        hard = hard_queries(rows, self.options.min_source_rank)
        if rows and not hard:
            raise UserError(f"Step '{self.name}': no query has its source at rank {self.options.min_source_rank} or lower in the first stage, "
                            "so min_source_rank leaves nothing to train on.", "Lower min_source_rank (1 keeps every query).")
        # Seeded by the run only (not the step's name): a learning curve's points are nested.
        return nested_subset(hard, self.options.limit, self.context.rng("train_student", "limit"))

    def _validation(self, texts):
        from synthwright.reranker.evaluation import real_label_groups

        o = self.options
        if not o.validation_qrels:
            raise UserError("validation_queries needs validation_qrels too.")
        return real_label_groups(self.context.resolve(o.validation_queries), self.context.resolve(o.validation_qrels),
                                 self._spec(), limit=o.validation_limit, seed=self.context.run_seed)
