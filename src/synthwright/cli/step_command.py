"""What a command that runs one step (or a few) shares: its flags build a small pipeline,
which runs through the same planner and executor as `synthwright run`. So a command and the
same YAML steps make the same requests (cache keys, seeds) and the same rows, `_meta.id`
included; `--show-pipeline` prints the YAML.

The run folder is a temporary one unless the command is given `--run-dir`: a command's
output is its file, and its resume is the request cache (a rerun is all cache hits).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from synthwright.cli.console import out
from synthwright.core.step import StepContext, StepStats
from synthwright.pipeline.config import PipelineConfig, validate_pipeline
from synthwright.pipeline.rundir import RunDirectory

RUN_DIR_HELP = "Keep the run folder here (inspect it with `synthwright inspect`); default: a temporary one."
SHOW_PIPELINE_HELP = "Print the pipeline this command runs (for `synthwright run`) and stop."


@dataclass
class CommandRun:
    run: RunDirectory
    stats: StepStats  # of the last step, this run only


def command_pipeline(name: str, steps: list[dict[str, Any]], *, seed: int, models: list[dict] | None = None) -> dict[str, Any]:
    """A pipeline as YAML would spell it."""
    return {"name": name, "seed": seed, **({"models": models} if models else {}), "steps": steps}


def show_pipeline(data: dict[str, Any]) -> None:
    out.print(yaml.safe_dump(data, sort_keys=False), markup=False, highlight=False, end="")


def prepared(data: dict[str, Any], context: StepContext, *, check_models: tuple[str, ...] = ()) -> PipelineConfig:
    """The validated pipeline, its models set on `context`; `check_models` (ids or specs) are
    loaded now, so a bad spec or a missing key stops the command before any work."""
    config = validate_pipeline(data, source=f"synthwright {data['name']}")
    context.run_seed = config.seed
    context.models = config.model_defs()
    for model in check_models:
        context.backend(model)
    return config


@contextlib.contextmanager
def run_command(config: PipelineConfig, context: StepContext, run_dir: Path | None = None) -> Iterator[CommandRun]:
    """Run `config` (a temporary run folder unless `run_dir`); the run folder lives while the
    caller reads its rows."""
    from synthwright.cli.pipeline import ProgressObserver
    from synthwright.pipeline.pipeline import run_pipeline

    with contextlib.ExitStack() as stack:
        folder = run_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"synthwright-{config.name}-")))
        observer = ProgressObserver()
        try:
            result = run_pipeline(config, folder, workdir=context.workdir, observer=observer, context=context)
        finally:
            observer.close()
        yield CommandRun(RunDirectory(result.run_dir), result.outcomes[-1].fresh)
