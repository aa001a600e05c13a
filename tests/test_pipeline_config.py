"""Pipeline YAML that is wrong: each mistake is one UserError naming the file, the line and
what is wrong, in Python and on the command line. And the Python API builds the same
config as the YAML it mirrors.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from synthwright.core.step import StepContext
from synthwright.errors import UserError
from synthwright.pipeline import Pipeline
from synthwright.pipeline.config import load_pipeline
from synthwright.pipeline.plan import plan_pipeline
from tests.conftest import run_cli

GOOD = """\
name: demo
seed: 5
steps:
  - name: src
    uses: load
    with:
      path: rows.jsonl
  - name: gen
    uses: generate
    batch_size: 4
    with:
      model: llamacpp:smollm2-135m
      template: ask.j2
      samples: 2
      max_tokens: 16
  - name: keep
    uses: filter
    input: gen
    with:
      column: generation
      min_words: 2
"""

# (id, YAML text, the line the error must name, fragments the message must contain)
CASES = [
    (
        "yaml-syntax",
        """\
        name: demo
        steps:
          - name: src
            uses: load: oops
            with: {path: rows.jsonl}
        """,
        4, ["not valid YAML"],
    ),
    (
        "unknown-step-type",
        """\
        name: demo
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
          - name: gen
            uses: generat
            with: {model: m, prompt: hi}
        """,
        7, ["Unknown step type 'generat'", "generate"],
    ),
    (
        "unknown-option",
        """\
        name: demo
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
          - name: gen
            uses: generate
            with:
              model: llamacpp:smollm2-135m
              prompt: "Hi {{ text }}"
              max_token: 5
        """,
        11, ["max_token", "Extra inputs are not permitted"],
    ),
    (
        "missing-required-option",
        """\
        name: demo
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
          - name: gen
            uses: generate
            with:
              prompt: "Hi {{ text }}"
              samples: 2
        """,
        8, ["model", "Field required"],
    ),
    (
        "wrong-type",
        """\
        name: demo
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
          - name: gen
            uses: generate
            with:
              model: llamacpp:smollm2-135m
              prompt: "Hi {{ text }}"
              samples: many
        """,
        11, ["samples", "valid integer"],
    ),
    (
        "duplicate-step-names",
        """\
        name: demo
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
          - name: keep
            uses: filter
            with: {column: text}
          - name: keep
            uses: filter
            with: {column: text, min_words: 2}
        """,
        9, ["two steps are named 'keep'"],
    ),
    (
        "input-names-a-later-step",
        """\
        name: demo
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
          - name: first
            uses: filter
            input: second
            with: {column: text}
          - name: second
            uses: filter
            with: {column: text}
        """,
        8, ["'first' reads 'second'", "not an earlier step"],
    ),
    (
        "input-names-an-unknown-step",
        """\
        name: demo
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
          - name: first
            uses: filter
            with: {column: text}
            input: nowhere
        """,
        9, ["'first' reads 'nowhere'"],
    ),
    (
        "empty-steps",
        """\
        name: demo
        seed: 1
        steps: []
        """,
        3, ["steps", "at least 1 item"],
    ),
    (
        "pipeline-name-with-slash",
        """\
        seed: 1
        name: runs/demo
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
        """,
        2, ["name", "a pipeline name is letters"],
    ),
    (
        "model-option-typo",
        """\
        name: demo
        models:
          - id: teacher
            spec: llamacpp:smollm2-135m
            options:
              n_ctx: 2048
              n_ctxx: 4096
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
        """,
        7, ["models.0.options.n_ctxx", "Extra inputs are not permitted"],
    ),
    (
        "model-option-of-another-backend",
        """\
        name: demo
        models:
          - id: teacher
            spec: llamacpp:smollm2-135m
            options: {api_key_env: MY_KEY}
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
        """,
        5, ["api_key_env", "Extra inputs are not permitted"],
    ),
    (
        "model-unknown-backend",
        """\
        name: demo
        models:
          - id: teacher
            spec: vllm:qwen
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
        """,
        4, ["Unknown model backend 'vllm'", "openai"],
    ),
    (
        "model-bad-price",
        """\
        name: demo
        models:
          - id: writer
            spec: openai:gpt-4o-mini
            options: {price: cheap}
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
        """,
        5, ["price", "INPUT/OUTPUT"],
    ),
    (
        "duplicate-model-ids",
        """\
        name: demo
        models:
          - {id: teacher, spec: llamacpp:smollm2-135m}
          - {id: teacher, spec: llamacpp:qwen2.5-coder-0.5b}
        steps:
          - name: src
            uses: load
            with: {path: rows.jsonl}
        """,
        4, ["two models have the id 'teacher'"],
    ),
]


def write(tmp_path: Path, text: str, name: str = "pipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize("text, line, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_yaml_names_file_line_and_problem(tmp_path, text, line, fragments):
    path = write(tmp_path, text, "my-pipeline.yaml")
    with pytest.raises(UserError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert info.value.problem.startswith(f"{path}:{line}: "), message
    for fragment in fragments:
        assert fragment in message


def test_missing_pipeline_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_pipeline(tmp_path / "nope.yaml")


def test_a_file_that_is_not_a_mapping(tmp_path):
    with pytest.raises(UserError) as info:
        load_pipeline(write(tmp_path, "- just\n- a list\n"))
    assert "must be a mapping" in info.value.problem


def test_good_yaml_loads(tmp_path):
    config = load_pipeline(write(tmp_path, GOOD))
    assert [s.name for s in config.steps] == ["src", "gen", "keep"]
    assert config.seed == 5
    assert config.input_of(1) == "src" and config.input_of(2) == "gen"
    assert config.steps[1].options().samples == 2


@pytest.mark.parametrize("case", ["unknown-option", "duplicate-step-names"])
def test_cli_reports_config_errors_without_a_traceback(tmp_path, case):
    _, text, line, fragments = next(c for c in CASES if c[0] == case)
    path = write(tmp_path, text)
    result = run_cli("run", str(path), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    assert "error:" in result.stderr
    assert f"{path}:{line}:" in result.stderr
    assert all(fragment in result.stderr for fragment in fragments)
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "run").exists()  # nothing was started


def test_python_api_builds_the_same_config_as_yaml(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"text": "hello"}\n', encoding="utf-8")
    (tmp_path / "ask.j2").write_text("Tell me about {{ text }}.", encoding="utf-8")
    from_yaml = load_pipeline(write(tmp_path, GOOD))

    pipeline = Pipeline("demo", seed=5)
    pipeline.step("src", "load", path="rows.jsonl")
    pipeline.step("gen", "generate", batch_size=4, model="llamacpp:smollm2-135m", template="ask.j2", samples=2, max_tokens=16)
    pipeline.step("keep", "filter", input="gen", column="generation", min_words=2)
    from_python = pipeline.config()

    assert from_python == from_yaml
    context = StepContext(workdir=tmp_path)
    assert [p.fingerprint for p in plan_pipeline(from_python, context)] == [p.fingerprint for p in plan_pipeline(from_yaml, context)]

    changed = Pipeline("demo", seed=5)
    changed.step("src", "load", path="rows.jsonl")
    changed.step("gen", "generate", batch_size=4, model="llamacpp:smollm2-135m", template="ask.j2", samples=3, max_tokens=16)
    changed.step("keep", "filter", input="gen", column="generation", min_words=2)
    assert plan_pipeline(changed.config(), context)[1].fingerprint != plan_pipeline(from_yaml, context)[1].fingerprint


def test_python_api_errors_are_user_errors(tmp_path):
    pipeline = Pipeline("demo").step("src", "load", path="rows.jsonl").step("gen", "generate", model="m", prompt="hi", max_token=3)
    with pytest.raises(UserError) as info:
        pipeline.config()
    assert "Pipeline('demo')" in info.value.problem
    assert "max_token" in info.value.problem
    with pytest.raises(UserError, match="a pipeline name"):
        Pipeline("a/b").step("src", "load", path="rows.jsonl").config()
