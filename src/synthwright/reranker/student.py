"""The student: a small reranker trained on (query, document, label) examples, on CPU.

Two kinds, both from the offline all-MiniLM-L6-v2 weights, trained with sentence-transformers'
trainers (so checkpoints, logging and loss curves are the library's, not ours):

- `cross`: a cross-encoder (MiniLM with a fresh one-logit head) reading query and document
  together, trained with binary cross-entropy on soft labels in [0, 1];
- `bi`: the bi-encoder itself fine-tuned on (query, positive, hard negatives) rows with
  in-batch negatives (MultipleNegativesRankingLoss, how all-MiniLM-L6-v2 was trained). The
  labels choose the triples: the best-labelled document is the positive, and negatives are
  the best-labelled documents *below* `negative_max`, so a candidate the judges rated as good
  as the source (a likely false negative) is never trained as a negative.
  Measured on SciFact: GPL's MarginMSE on these [0, 1] label margins wrecked the normalised
  MiniLM (reranking nDCG@10 0.592 -> 0.533, and 0.549 even with real labels): a target cosine
  margin near 1 is far outside what a cosine model should produce.

Labels come from `labels_to_examples`: continuous scores per (query, document) recovered
from pairwise judgments, or real qrels for the "what real labels give" comparison.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from synthwright.errors import UserError, require_module

StudentKind = Literal["cross", "bi"]
STUDENT_EXTRA = "'synthwright[reranker]'"


@dataclass(frozen=True)
class QueryLabels:
    """One query's graded documents: {doc_id: label in [0, 1]} (1 = relevant)."""

    query: str
    labels: Mapping[str, float]


@dataclass
class TrainSettings:
    kind: StudentKind = "cross"
    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    max_length: int = 256
    negatives: int = 2  # bi-encoder: hard negatives per query, besides the batch's other documents
    seed: int = 0
    threads: int | None = None  # torch threads; None keeps torch's default
    # WiSE-FT (Wortsman et al., 2022): the saved bi-encoder is (1 - base_weight) x the fine-tuned
    # weights + base_weight x the base model's. Synthetic claims pull the student towards the
    # lexical matching BM25 already does; interpolating keeps what the base model knew
    # (SciFact, docs/results.md: 0.7 turned a -0.014 student into a tie with hybrid).
    base_weight: float = 0.0


@dataclass
class TrainedStudent:
    path: Path
    kind: StudentKind
    examples: int
    seconds: float
    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # name -> [(epoch, loss)], before any interpolation
    base_weight: float = 0.0  # the base model's share of the saved weights

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "examples": self.examples, "seconds": self.seconds, "curves": self.curves,
                "base_weight": self.base_weight}


def _require_training():
    require_module("torch", "Training the student reranker", STUDENT_EXTRA)
    require_module("sentence_transformers", "Training the student reranker", STUDENT_EXTRA)
    require_module("accelerate", "Training the student reranker", STUDENT_EXTRA)


def pointwise_examples(groups: Sequence[QueryLabels], texts: Mapping[str, str]) -> list[dict[str, Any]]:
    """(query, document, label) rows for the cross-encoder."""
    rows = []
    for group in groups:
        for doc_id, label in group.labels.items():
            if doc_id in texts:
                rows.append({"query": group.query, "document": texts[doc_id], "label": float(label)})
    return rows


def contrast_examples(groups: Sequence[QueryLabels], texts: Mapping[str, str], *, negatives: int = 2,
                      negative_max: float = 0.3) -> list[dict[str, Any]]:
    """One row per query for the bi-encoder: its best-labelled document and `negatives` hard
    negatives (the highest labels at or below `negative_max`), columns query, positive,
    negative_1 ... negative_k; equal labels keep the order given (the retrieval rank). All of a query's negatives sit in one row, so one softmax sees
    them together with the batch's other documents, and the query and positive are encoded
    once. A query with fewer hard negatives repeats its hardest one (which then counts twice
    in that softmax, a small push; a random document instead could be an unseen positive);
    one with none is skipped."""
    rows = []
    for group in groups:
        # Stable on ties: equal labels (binary or real ones) keep the given order, the retrieval rank.
        ranked = sorted(((label, doc) for doc, label in group.labels.items() if doc in texts), key=lambda item: -item[0])
        if len(ranked) < 2:
            continue
        best_label, best = ranked[0]
        hard = [doc for label, doc in ranked[1:] if label <= negative_max and label < best_label][:negatives]
        if not hard:
            continue
        hard += [hard[0]] * (negatives - len(hard))
        rows.append({"query": group.query, "positive": texts[best], **{f"negative_{i}": texts[doc] for i, doc in enumerate(hard, 1)}})
    return rows


def _curves(log_history: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    curves: dict[str, list[tuple[float, float]]] = {"train": [], "validation": []}
    for entry in log_history:
        if "loss" in entry:
            curves["train"].append((float(entry.get("epoch", 0.0)), float(entry["loss"])))
        if "eval_loss" in entry:
            curves["validation"].append((float(entry.get("epoch", 0.0)), float(entry["eval_loss"])))
    return curves


def _arguments(module, settings: TrainSettings, out_dir: Path, n_rows: int, has_validation: bool):
    steps_per_epoch = max(1, math.ceil(n_rows / settings.batch_size))
    every = max(1, steps_per_epoch // 8)  # about 8 points per epoch on the curves
    return module(
        output_dir=str(out_dir / "checkpoints"), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size, per_device_eval_batch_size=settings.batch_size * 2,
        learning_rate=settings.learning_rate, warmup_steps=settings.warmup_ratio, seed=settings.seed,
        logging_steps=every, eval_strategy="steps" if has_validation else "no", eval_steps=every if has_validation else None,
        save_strategy="no", report_to="none", use_cpu=True, dataloader_num_workers=0,
    )


def train_student(
    groups: Sequence[QueryLabels],
    texts: Mapping[str, str],
    out_dir: str | Path,
    settings: TrainSettings | None = None,
    validation: Sequence[QueryLabels] | None = None,
    base_model: str | None = None,
) -> TrainedStudent:
    """Train a student on labelled groups; saves it to out_dir/model and returns the curves.
    `validation` (real queries with real labels, never the evaluation queries) gives the
    real-validation loss curve next to the training one."""
    _require_training()
    import time

    settings = settings or TrainSettings()
    _check_base_weight(settings)

    import torch

    from synthwright.embed.local import minilm_path

    if settings.threads:
        torch.set_num_threads(settings.threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = base_model or str(minilm_path())
    make_rows = pointwise_examples if settings.kind == "cross" else partial(contrast_examples, negatives=settings.negatives)
    rows = make_rows(groups, texts)
    if not rows:
        raise UserError("The student has no training examples.", "Check that the labels name documents in the corpus, and that queries have more than one graded document.")
    validation_rows = make_rows(validation, texts) if validation else []
    started = time.perf_counter()
    if settings.kind == "cross":
        trainer, model = _cross_trainer(base, settings, out_dir, rows, validation_rows)
    else:
        trainer, model = _bi_trainer(base, settings, out_dir, rows, validation_rows)
    trainer.train()
    if settings.base_weight:
        interpolate_with_base(model, base, settings.base_weight)
    model.save_pretrained(str(out_dir / "model")) if hasattr(model, "save_pretrained") else model.save(str(out_dir / "model"))
    result = TrainedStudent(out_dir / "model", settings.kind, len(rows), time.perf_counter() - started, _curves(trainer.state.log_history),
                             settings.base_weight)
    (out_dir / "training.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    return result


def _check_base_weight(settings: TrainSettings) -> None:
    if not 0.0 <= settings.base_weight < 1.0:
        raise UserError(f"base_weight must be at least 0 and below 1, not {settings.base_weight}.",
                        "It is the base model's share of the saved weights: 0 keeps the fine-tuned student as trained.")
    if settings.base_weight and settings.kind != "bi":
        raise UserError("base_weight works with kind: bi only.",
                        "A cross-encoder's scoring head is new, so there is no base to go back to; use kind: bi or leave base_weight at 0.")


def interpolate_with_base(model, base: str | Path, base_weight: float) -> None:
    """Move a fine-tuned SentenceTransformer's weights `base_weight` of the way back to the base
    model's, in place (WiSE-FT). Integer buffers (position ids) are left as they are."""
    import torch
    from sentence_transformers import SentenceTransformer

    base_state = SentenceTransformer(str(base), local_files_only=True, device="cpu").state_dict()
    state = model.state_dict()
    missing = [name for name in state if name not in base_state or base_state[name].shape != state[name].shape]
    if missing:
        raise UserError(f"The base model {base} does not match the student ({len(missing)} weights differ, e.g. {missing[0]}).",
                        "Interpolate only with the model the student was fine-tuned from.")
    with torch.no_grad():
        merged = {name: torch.lerp(value, base_state[name].to(value.dtype), base_weight) if value.is_floating_point() else value
                  for name, value in state.items()}
    model.load_state_dict(merged)


def _cross_trainer(base: str, settings: TrainSettings, out_dir: Path, rows, validation_rows):
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
        losses,
    )

    model = CrossEncoder(base, num_labels=1, max_length=settings.max_length, local_files_only=True)
    loss = losses.BinaryCrossEntropyLoss(model)
    args = _arguments(CrossEncoderTrainingArguments, settings, out_dir, len(rows), bool(validation_rows))
    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(validation_rows) if validation_rows else None, loss=loss,
    )
    return trainer, model


def _bi_trainer(base: str, settings: TrainSettings, out_dir: Path, rows, validation_rows):
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )

    model = SentenceTransformer(base, local_files_only=True)
    model.max_seq_length = settings.max_length
    loss = losses.MultipleNegativesRankingLoss(model)
    args = _arguments(SentenceTransformerTrainingArguments, settings, out_dir, len(rows), bool(validation_rows))
    # Two rows of one query in a batch would make its positive another row's in-batch negative.
    from sentence_transformers.training_args import BatchSamplers

    args.batch_sampler = BatchSamplers.NO_DUPLICATES
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(validation_rows) if validation_rows else None, loss=loss,
    )
    return trainer, model


class StudentReranker:
    """A trained student: scores (query, document) pairs; higher = more relevant."""

    def __init__(self, path: str | Path, kind: StudentKind | None = None, *, max_length: int = 256, batch_size: int = 32):
        _require_training()
        path = Path(path)
        if not path.is_dir():
            raise UserError(f"No student model at '{path}'.", "Train one first (synthwright reranker), or give the folder it wrote.")
        path = model_folder(path)
        self.path = path
        self.kind = kind or saved_kind(path)
        self.batch_size = batch_size
        if self.kind == "cross":
            from sentence_transformers.cross_encoder import CrossEncoder

            self.model = CrossEncoder(str(path), max_length=max_length, local_files_only=True)
        else:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(str(path), local_files_only=True)
            self.model.max_seq_length = max_length

    def score_many(self, queries: Sequence[str], documents: Sequence[Sequence[str]]) -> list[list[float]]:
        """Scores for several queries at once. A bi-encoder embeds each distinct document
        once, however many queries retrieved it (SciFact top 100: 15,000 pairs, ~5,000 documents)."""
        if self.kind == "cross":
            return [self.score(q, docs) for q, docs in zip(queries, documents)]
        unique = list(dict.fromkeys(d for docs in documents for d in docs))
        doc_vectors = self.model.encode(unique, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True)
        row = {text: i for i, text in enumerate(unique)}
        query_vectors = self.model.encode(list(queries), batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True)
        return [[float(qv @ doc_vectors[row[d]]) for d in docs] for qv, docs in zip(query_vectors, documents)]

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        if not documents:
            return []
        if self.kind == "cross":
            return [float(s) for s in self.model.predict([(query, d) for d in documents], batch_size=self.batch_size, show_progress_bar=False)]
        vectors = self.model.encode([query, *documents], batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True)
        return [float(vectors[0] @ v) for v in vectors[1:]]


def model_folder(path: Path) -> Path:
    """The folder holding the saved model: `path` itself, or the `model/` a training step writes
    beside its checkpoints (so both `student` and `student/model` name the student)."""
    if not path.is_dir():
        raise UserError(f"No student model at '{path}'.", "Train one first (synthwright reranker), or give the folder it wrote.")
    if (path / "config.json").is_file():
        return path
    if (path / "model" / "config.json").is_file():
        return path / "model"
    raise UserError(f"'{path}' is a folder but holds no saved model (no config.json in it or in its model/ subfolder).",
                    "Give the student folder the training step wrote (e.g. runs/NAME/student or runs/NAME/student/model).")


def saved_kind(path: Path) -> StudentKind:
    """A cross-encoder saves a sequence-classification config; a bi-encoder a pooling module."""
    modules = path / "modules.json"
    has_pooling = (path / "1_Pooling").is_dir() or (modules.is_file() and "Pooling" in modules.read_text())
    return "bi" if has_pooling else "cross"
