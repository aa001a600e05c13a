"""A pipeline resolved into steps with fingerprints, ready for an executor.

A step's fingerprint hashes its type, its options, what else decides its output (a
template's text, the sha256 of an input file) and the fingerprint of the step it reads. Change
one step's config and its fingerprint and every downstream fingerprint change; upstream
ones do not, so only that step and what follows it run again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from synthwright.core.step import Step, StepContext, step_class
from synthwright.pipeline.config import PipelineConfig


@dataclass
class PlannedStep:
    step: Step
    input: str | None
    fingerprint: str
    batch_size: int | None


def plan_pipeline(config: PipelineConfig, context: StepContext) -> list[PlannedStep]:
    planned: dict[str, PlannedStep] = {}
    for index, step_config in enumerate(config.steps):
        cls = step_class(step_config.uses)
        step = cls(step_config.name, step_config.options(), context)
        input_name = config.input_of(index)
        upstream = planned[input_name].fingerprint if input_name else None
        payload = {
            "type": step_config.uses,
            "options": step.options.fingerprinted(),
            "extra": step.fingerprint_extra(),
            "input": upstream,
            "batch_size": step_config.batch_size,
            "seed": config.seed,
        }
        if step.version:
            payload["version"] = step.version
        models = config.models_named_in(payload["options"])
        if models:  # only then: runs from before the `models:` section keep their fingerprints
            payload["models"] = models
        fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
        planned[step_config.name] = PlannedStep(step, input_name, fingerprint, step_config.batch_size)
    return list(planned.values())


def default_run_dir(config: PipelineConfig) -> Path:
    """runs/NAME: the same pipeline always resumes the same folder."""
    return Path("runs") / config.name
