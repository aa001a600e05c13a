"""The example scripts name only what they define or import.

They are documented commands (docs/results.md) that run for tens of minutes before reaching
their later functions, so a missing import would surface only deep into a run; the test suite
does not run them end to end. This reads each script's module-level names and every name it
loads, and fails on a name bound nowhere (a typo, or an import a change forgot).
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


def bound_names(tree: ast.Module) -> set[str]:
    names = set(dir(builtins)) | {"__file__", "__name__", "__doc__"}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.name)
def test_example_uses_no_unbound_name(script):
    tree = ast.parse(script.read_text(encoding="utf-8"))
    bound = bound_names(tree)
    loaded = {(node.id, node.lineno) for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    unbound = sorted((line, name) for name, line in loaded if name not in bound)
    assert not unbound, f"{script.name}: names bound nowhere: {unbound}"


def test_the_check_finds_a_missing_import():
    tree = ast.parse("import json\n\ndef f(path):\n    return json.loads(content_digest(path))\n")
    assert "content_digest" not in bound_names(tree) and "json" in bound_names(tree)


EXAMPLE_YAML = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))
TASKS = [path for path in EXAMPLE_YAML if path.name.endswith(".task.yaml")]  # classify task specs
PIPELINES = [path for path in EXAMPLE_YAML if path not in TASKS and not path.name.endswith(".tmp.yaml")]


@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda path: path.name)
def test_example_pipeline_validates(pipeline):
    """Each example pipeline's steps and options are valid as written (no model is loaded, no
    data read): a renamed option or an invalid member fails here, not hours into a run."""
    from synthwright.pipeline.config import load_pipeline

    config = load_pipeline(pipeline)
    assert config.steps, pipeline.name


@pytest.mark.parametrize("task", TASKS, ids=lambda path: path.name)
def test_example_task_validates(task):
    """Each classify task spec parses, and its style sample path is relative to the file."""
    from synthwright.classify.task import load_task

    spec = load_task(str(task), Path("/nonexistent"))
    assert len(spec.names) >= 2
    if spec.style_examples:
        assert Path(spec.style_examples).is_absolute() and str(task.parent) in spec.style_examples
