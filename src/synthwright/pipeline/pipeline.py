"""Running a pipeline: the Python API and what `synthwright run` calls.

```python
from synthwright.pipeline import Pipeline

p = Pipeline("questions", seed=13)
p.step("topics", "load", path="examples/topics.jsonl")
p.step("questions", "generate", model="llamacpp:smollm2-135m", template="examples/question.j2")
p.step("clean", "filter", column="generation", min_words=3)
result = p.run()            # runs/questions, resumable
```
The names are the YAML names: `p.step(name, uses, input=None, batch_size=None, **with)`.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from synthwright import __version__
from synthwright.core.step import StepContext
from synthwright.errors import UserError
from synthwright.pipeline.config import PipelineConfig, load_pipeline, validate_pipeline
from synthwright.pipeline.executor import Executor, LocalExecutor, RunObserver, StepOutcome
from synthwright.pipeline.plan import default_run_dir, plan_pipeline
from synthwright.pipeline.rundir import RunDirectory

RECORDED_PACKAGES = ("pyarrow", "pydantic", "llama-cpp-python", "aiohttp", "jinja2", "datasets", "sentence-transformers")


@dataclass
class RunResult:
    run_dir: Path
    outcomes: list[StepOutcome]

    @property
    def requests_sent(self) -> int:
        """Requests this run sent (not those of earlier runs whose batches it kept)."""
        return sum(o.fresh.requests_sent for o in self.outcomes)


class Pipeline:
    def __init__(self, name: str, seed: int = 0):
        self.name = name
        self.seed = seed
        self._models: list[dict[str, Any]] = []
        self._steps: list[dict[str, Any]] = []

    def model(self, id: str, spec: str, **options: Any) -> "Pipeline":
        """A model steps can name by `id` (the YAML's `models:` entry); options are the backend's."""
        self._models.append({"id": id, "spec": spec, "options": options})
        return self

    def step(self, name: str, uses: str, input: str | None = None, batch_size: int | None = None, **options: Any) -> "Pipeline":
        entry: dict[str, Any] = {"name": name, "uses": uses, "with": options}
        if input is not None:
            entry["input"] = input
        if batch_size is not None:
            entry["batch_size"] = batch_size
        self._steps.append(entry)
        return self

    def config(self) -> PipelineConfig:
        data = {"name": self.name, "seed": self.seed, "models": self._models, "steps": self._steps}
        return validate_pipeline(data, source=f"Pipeline({self.name!r})")

    def run(self, run_dir: str | Path | None = None, **kwargs: Any) -> RunResult:
        return run_pipeline(self.config(), run_dir, workdir=Path.cwd(), **kwargs)


def run_pipeline(
    config: PipelineConfig,
    run_dir: str | Path | None = None,
    *,
    workdir: Path = Path("."),
    executor: Executor | None = None,
    observer: RunObserver | None = None,
    context: StepContext | None = None,
) -> RunResult:
    rundir = RunDirectory(run_dir or default_run_dir(config))
    context = context or StepContext(run_seed=config.seed, workdir=workdir)
    context.run_dir = rundir.path
    context.models = config.model_defs()
    executor = executor or LocalExecutor(observer)
    if context.progress_factory is None:
        context.progress_factory = executor.observer.request_progress
    rundir.lock()
    try:
        manifest = _begin_manifest(rundir, config)
        plan = plan_pipeline(config, context)
        try:
            outcomes = executor.run(plan, rundir)
        except BaseException as exc:
            _end_manifest(rundir, manifest, f"stopped: {exc.__class__.__name__}")
            raise
        _end_manifest(rundir, manifest, "done", models=_models_used(context))
        return RunResult(rundir.path, outcomes)
    finally:
        context.close()
        rundir.unlock()


def run_pipeline_file(path: str | Path, run_dir: str | Path | None = None, **kwargs: Any) -> RunResult:
    path = Path(path)
    config = load_pipeline(path)
    return run_pipeline(config, run_dir, workdir=path.resolve().parent, **kwargs)


def _begin_manifest(rundir: RunDirectory, config: PipelineConfig) -> dict[str, Any]:
    manifest = rundir.read_manifest()
    if manifest is not None and manifest.get("name") != config.name:
        raise UserError(
            f"{rundir.path} holds a run of pipeline '{manifest.get('name')}', not '{config.name}'.",
            "Give this pipeline its own --run-dir.",
        )
    manifest = manifest or {"name": config.name, "history": []}
    manifest.update(
        config=config.model_dump(mode="json", by_alias=True), seed=config.seed,
        synthwright=__version__, python=platform.python_version(), packages=_package_versions(),
    )
    manifest["history"].append({"started": time.time(), "status": "running"})
    rundir.write_manifest(manifest)
    return manifest


def _end_manifest(rundir: RunDirectory, manifest: dict[str, Any], status: str, models: dict | None = None) -> None:
    manifest["history"][-1].update(finished=time.time(), status=status)
    if models:
        manifest["models"] = {**manifest.get("models", {}), **models}
    rundir.write_manifest(manifest)


def _package_versions() -> dict[str, str]:
    found = {}
    for name in RECORDED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _models_used(context: StepContext) -> dict[str, str]:
    return {spec: backend.identity for spec, backend in context._backends.items()}
