"""The classifier students, both from the offline all-MiniLM-L6-v2 weights, on CPU.

- `lr`: MiniLM sentence vectors (the embedding cache makes a second pass free) and a
  scikit-learn logistic regression: trains in seconds, a strong floor.
- `finetune`: MiniLM itself fine-tuned with a classification head (transformers'
  `AutoModelForSequenceClassification` and `Trainer`): minutes on two cores. A linear probe
  on frozen MiniLM caps near 0.78 on SST-2 even with real labels; fine-tuning is what gets
  near the teacher there.

A saved student is a folder with `student.json` (kind, labels, settings) and its weights;
`load_student(folder)` gives back something with `predict_proba(texts)`.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from synthwright.errors import UserError, require_module

StudentKind = Literal["lr", "finetune"]
STUDENT_KINDS = ("lr", "finetune")
CLASSIFY_EXTRA = "'synthwright[reranker,validate]'"


@dataclass(frozen=True)
class ClassifierSettings:
    kind: StudentKind = "lr"
    epochs: float = 3.0
    batch_size: int = 16
    learning_rate: float = 5e-5
    max_length: int = 128
    label_smoothing: float = 0.0
    regularisation: float = 1.0  # lr: inverse strength C
    description_prior: float = 0.0  # weight of the label-description prior (0 = none)
    seed: int = 0


def settings_key(settings: ClassifierSettings) -> dict[str, Any]:
    """The settings a trained student is known by. A setting added later is left out while at
    its default, so students trained before it existed are not trained again for nothing."""
    added_later = {"description_prior": 0.0}
    return {k: v for k, v in asdict(settings).items() if k not in added_later or v != added_later[k]}


def minilm_vectors(texts: Sequence[str], cache: bool = True) -> np.ndarray:
    from synthwright.embed import load_embedder

    return load_embedder("minilm", cache=cache).embed(list(texts))


def times_description_prior(probs: np.ndarray, vectors: np.ndarray, label_vectors: np.ndarray | None, weight: float) -> np.ndarray:
    """`probs` times MiniLM's nearness of each text to each label description raised to
    `weight`, renormalised (a product of experts); `probs` unchanged without a prior."""
    from synthwright.classify.labelling import description_probabilities

    if weight <= 0 or label_vectors is None:
        return probs
    log_probs = np.log(probs + 1e-9) + weight * np.log(description_probabilities(vectors, label_vectors) + 1e-9)
    log_probs -= log_probs.max(axis=1, keepdims=True)
    joint = np.exp(log_probs)
    return joint / joint.sum(axis=1, keepdims=True)


def description_vectors(settings: ClassifierSettings, label_descriptions: Sequence[str] | None) -> np.ndarray | None:
    """The label descriptions' MiniLM vectors when the settings ask for the prior."""
    if settings.description_prior <= 0:
        return None
    if not label_descriptions:
        raise UserError("The description prior needs the labels' descriptions.", "Train through the train_classifier step, which passes the task's labels.")
    return minilm_vectors(label_descriptions)


class LogisticStudent:
    """Logistic regression on MiniLM vectors, optionally times a prior from the task itself.

    The prior is MiniLM zero-shot: how near a text lies to each label's description. The
    synthetic texts teach the regression the teacher's idea of each class, the descriptions
    the user's; multiplying the two (a product of experts, `prior_weight` the prior's exponent)
    corrects part of the shift between synthetic and real texts at no extra cost per
    prediction, since both read the same vector. On AG News (docs/results.md) it adds about
    +0.02 over either alone.
    """

    kind = "lr"

    def __init__(self, labels: Sequence[str], model=None, label_vectors: np.ndarray | None = None, prior_weight: float = 0.0):
        self.labels = list(labels)
        self.model, self.label_vectors, self.prior_weight = model, label_vectors, prior_weight

    def fit(self, texts: Sequence[str], labels: Sequence[int], weights: Sequence[float] | None, settings: ClassifierSettings,
            label_descriptions: Sequence[str] | None = None) -> "LogisticStudent":
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=settings.regularisation, max_iter=3000, random_state=settings.seed)
        self.model.fit(minilm_vectors(texts), np.asarray(labels), sample_weight=None if weights is None else np.asarray(weights))
        self.prior_weight = settings.description_prior
        self.label_vectors = description_vectors(settings, label_descriptions)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        probs = np.zeros((len(texts), len(self.labels)))
        # Uncached: a prediction's cost is then what it would cost on new texts.
        vectors = minilm_vectors(texts, cache=False)
        probs[:, self.model.classes_] = self.model.predict_proba(vectors)
        return times_description_prior(probs, vectors, self.label_vectors, self.prior_weight)

    def save(self, folder: Path) -> None:
        with open(folder / "model.pkl", "wb") as handle:
            pickle.dump({"model": self.model, "label_vectors": self.label_vectors, "prior_weight": self.prior_weight}, handle)

    @classmethod
    def load(cls, folder: Path, labels: Sequence[str]) -> "LogisticStudent":
        with open(folder / "model.pkl", "rb") as handle:
            saved = pickle.load(handle)
        if not isinstance(saved, dict):  # saved before the prior existed: the regression alone
            saved = {"model": saved}
        return cls(labels, saved["model"], saved.get("label_vectors"), saved.get("prior_weight", 0.0))


class FineTunedStudent:
    kind = "finetune"

    def __init__(self, labels: Sequence[str], model=None, tokenizer=None, max_length: int = 128,
                 label_vectors: np.ndarray | None = None, prior_weight: float = 0.0):
        self.labels = list(labels)
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length
        self.label_vectors, self.prior_weight = label_vectors, prior_weight

    def fit(self, texts: Sequence[str], labels: Sequence[int], weights: Sequence[float] | None, settings: ClassifierSettings,
            workdir: Path, label_descriptions: Sequence[str] | None = None) -> "FineTunedStudent":
        from datasets import Dataset
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments, set_seed

        from synthwright.embed.local import minilm_path

        set_seed(settings.seed)
        base = str(minilm_path())
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=len(self.labels), id2label=dict(enumerate(self.labels)), label2id={n: i for i, n in enumerate(self.labels)})
        self.max_length = settings.max_length
        columns: dict[str, Any] = {"text": list(texts), "labels": [int(v) for v in labels]}
        if weights is not None:
            columns["weight"] = [float(w) for w in weights]
        data = Dataset.from_dict(columns).map(
            lambda batch: self.tokenizer(batch["text"], truncation=True, max_length=self.max_length), batched=True, remove_columns=["text"])
        args = TrainingArguments(  # warmup_steps below 1 is a share of all steps
            output_dir=str(workdir / "checkpoints"), num_train_epochs=settings.epochs, per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.learning_rate, warmup_steps=0.1, weight_decay=0.01, label_smoothing_factor=settings.label_smoothing,
            seed=settings.seed, save_strategy="no", logging_steps=20, report_to=[], use_cpu=True, disable_tqdm=True,
            remove_unused_columns=weights is None,
        )
        trainer_class = weighted_trainer() if weights is not None else Trainer
        trainer = trainer_class(model=self.model, args=args, train_dataset=data, processing_class=self.tokenizer)
        trainer.train()
        self.curve = [(entry["epoch"], entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
        self.prior_weight = settings.description_prior
        self.label_vectors = description_vectors(settings, label_descriptions)
        return self

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import torch

        self.model.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(list(texts[start: start + batch_size]), truncation=True, max_length=self.max_length,
                                       padding=True, return_tensors="pt")
                out.append(torch.softmax(self.model(**batch).logits, dim=-1).numpy())
        probs = np.concatenate(out) if out else np.zeros((0, len(self.labels)))
        if self.prior_weight <= 0 or self.label_vectors is None or not len(texts):
            return probs
        # The prior reads the untouched MiniLM's vectors: a second, cheaper encoder pass.
        return times_description_prior(probs, minilm_vectors(texts, cache=False), self.label_vectors, self.prior_weight)

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(folder / "model")
        self.tokenizer.save_pretrained(folder / "model")
        if self.label_vectors is not None:
            np.savez(folder / "prior.npz", label_vectors=self.label_vectors, weight=self.prior_weight)

    @classmethod
    def load(cls, folder: Path, labels: Sequence[str], max_length: int) -> "FineTunedStudent":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        prior = np.load(folder / "prior.npz") if (folder / "prior.npz").is_file() else None
        return cls(labels, AutoModelForSequenceClassification.from_pretrained(folder / "model"),
                   AutoTokenizer.from_pretrained(folder / "model"), max_length,
                   None if prior is None else prior["label_vectors"], 0.0 if prior is None else float(prior["weight"]))


def weighted_trainer():
    """A Trainer whose loss weighs each example (built on first use: transformers is heavy)."""
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        """Cross-entropy with a weight per example (SunGen-style reweighting of noisy rows)."""

        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            import torch

            weights = inputs.pop("weight")
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            losses = torch.nn.functional.cross_entropy(outputs.logits, labels, reduction="none",
                                                       label_smoothing=self.args.label_smoothing_factor)
            loss = (losses * weights).sum() / weights.sum().clamp_min(1e-8)
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer


def require_students(kind: str) -> None:
    require_module("sklearn", "The classifier student", CLASSIFY_EXTRA)
    require_module("sentence_transformers", "The classifier student", CLASSIFY_EXTRA)
    if kind == "finetune":
        require_module("transformers", "The fine-tuned classifier student", CLASSIFY_EXTRA)
        require_module("datasets", "The fine-tuned classifier student", CLASSIFY_EXTRA)
        require_module("accelerate", "The fine-tuned classifier student", CLASSIFY_EXTRA)


def train_classifier(texts: Sequence[str], labels: Sequence[str], label_names: Sequence[str], settings: ClassifierSettings,
                     folder: Path, weights: Sequence[float] | None = None, key: str | None = None,
                     label_descriptions: Sequence[str] | None = None) -> dict[str, Any]:
    """Train a student on (text, label name) rows and save it in `folder`; returns its card
    (`key`, what the caller says it was trained on, is recorded in it)."""
    require_students(settings.kind)
    index = {name: i for i, name in enumerate(label_names)}
    y = [index[label] for label in labels]
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if settings.kind == "lr":
        student = LogisticStudent(label_names).fit(texts, y, weights, settings, label_descriptions)
        curve: list = []
    else:
        student = FineTunedStudent(label_names).fit(texts, y, weights, settings, folder, label_descriptions)
        curve = student.curve
    student.save(folder)
    card = {"kind": settings.kind, "labels": list(label_names), "settings": asdict(settings), "examples": len(texts),
            "seconds": round(time.perf_counter() - started, 1), "curve": curve, "weighted": weights is not None, "key": key}
    (folder / "student.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return card


def load_student(folder: str | Path):
    """A saved student (LogisticStudent or FineTunedStudent) with `predict_proba(texts)`."""
    folder = Path(folder)
    card_path = folder / "student.json"
    if not card_path.is_file():
        raise UserError(f"'{folder}' holds no trained classifier (no student.json).", "Point at the folder a train_classifier step wrote.")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    if card["kind"] == "lr":
        return LogisticStudent.load(folder, card["labels"])
    return FineTunedStudent.load(folder, card["labels"], card["settings"].get("max_length", 128))
