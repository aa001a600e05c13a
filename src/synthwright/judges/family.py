"""Which model family a judge or generator belongs to, so circular judging can be named.

Synthetic data judged by the model that wrote it (or a sibling of it) is circular: the judge
shares the generator's blind spots and likes its style. Families are read from the offline
model registry where possible, otherwise guessed from the model's name.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import PurePath

from synthwright.llm.offline_models import OFFLINE_MODELS

# Name fragments -> family. Order matters: the first match wins ("codellama" is llama,
# "mixtral" is mistral, "o1"/"o3" are OpenAI's).
_FAMILY_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"qwen|qwq", "qwen"),
    (r"llama|vicuna|alpaca", "llama"),
    (r"mistral|mixtral|codestral|ministral", "mistral"),
    (r"gpt|chatgpt|\bo[134](-|$)|davinci|openai", "gpt"),
    (r"claude|anthropic", "claude"),
    (r"gemma", "gemma"),
    (r"gemini", "gemini"),
    (r"\bphi[-_]?\d|phi3|phi4", "phi"),
    (r"smollm", "smollm"),
    (r"deepseek", "deepseek"),
    (r"command-r|cohere|\baya\b", "cohere"),
    (r"falcon", "falcon"),
    (r"olmo", "olmo"),
    (r"granite", "granite"),
    (r"\byi-", "yi"),
    (r"internlm", "internlm"),
    (r"glm", "glm"),
)


def model_family(spec: str | None) -> str | None:
    """The family of a model spec ("llamacpp:qwen2.5-coder-1.5b" -> "qwen"), None if unknown."""
    if not spec:
        return None
    backend, sep, target = spec.partition(":")
    target = target if sep else spec
    if target in OFFLINE_MODELS:
        return OFFLINE_MODELS[target].family
    # A path names its model in the file name; "name@url" in the part before the URL.
    name = PurePath(target.split("@", 1)[0]).name.lower()
    for pattern, family in _FAMILY_PATTERNS:
        if re.search(pattern, name):
            return family
    return None


class CircularJudgeWarning(UserWarning):
    """A judge shares its model family with the model that generated the data."""


@dataclass(frozen=True)
class Circularity:
    judge: str
    judge_model: str
    generator: str
    family: str
    same_model: bool

    def message(self) -> str:
        what = "IS the generator" if self.same_model else f"shares the model family '{self.family}' with the generator"
        return (
            f"judge '{self.judge}' ({self.judge_model}) {what} ({self.generator}): synthetic data judged by its own "
            "model family is circular. Add a judge of another family or a non-LLM member (e.g. --judge embedding), "
            "and calibrate against human labels."
        )

    def to_dict(self) -> dict:
        return {**self.__dict__, "message": self.message()}


def _same_model(a: str, b: str) -> bool:
    strip = lambda s: s.split(":", 1)[-1].split("@", 1)[0]  # noqa: E731
    return strip(a) == strip(b)


def check_circularity(judges: dict[str, str | None], generators: list[str]) -> list[Circularity]:
    """Every (judge, generator) pair of one family. `judges` maps judge name -> model spec
    (None for non-LLM judges, which are never circular)."""
    found = []
    for name, judge_model in judges.items():
        family = model_family(judge_model)
        if family is None:
            continue
        for generator in generators:
            if model_family(generator) == family:
                found.append(Circularity(name, judge_model, generator, family, _same_model(judge_model, generator)))
    return found


def warn_circularity(found: list[Circularity]) -> None:
    """Say it loudly: a Python warning reaches stderr in scripts, pipelines and tests alike."""
    for item in found:
        warnings.warn(item.message(), CircularJudgeWarning, stacklevel=3)
