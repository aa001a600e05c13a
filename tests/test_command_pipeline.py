"""Every command is a pipeline (issue 23, item 3): a command and the same YAML steps share
one request cache and make the same rows, `_meta.id` included; a command's options are its
step's Options model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest
import typer
import yaml
from pydantic import Field
from typer.testing import CliRunner

from synthwright.cli.options import Flag, validated, with_step_options
from synthwright.core.step import StepOptions
from synthwright.errors import UserError
from tests.conftest import run_cli
from tests.support.openai_stub import StubServer


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def job(tmp_path) -> dict[str, Path]:
    (tmp_path / "t.j2").write_text("Ask one question about {{ topic }}.", encoding="utf-8")
    topics = ["owls", "rivers", "glass", "bread", "tides"]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"topic": t}) + "\n" for t in topics), encoding="utf-8")
    return {"dir": tmp_path, "cache": tmp_path / "cache.sqlite", "rows": len(topics)}


def yaml_pipeline(job: dict, model: str) -> Path:
    """The YAML a user writes for `generate -i in.jsonl -t t.j2 -n 2 --temperature 0.9 --seed 7`."""
    path = job["dir"] / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "questions", "seed": 7, "steps": [
        {"name": "input", "uses": "load", "with": {"path": "in.jsonl"}},
        {"name": "generate", "uses": "generate", "with": {"model": model, "template": "t.j2", "samples": 2, "temperature": 0.9}},
    ]}), encoding="utf-8")
    return path


def generate_command(job: dict, model: str, *extra: str) -> list[str]:
    d = job["dir"]
    return ["generate", "-m", model, "-t", str(d / "t.j2"), "-i", str(d / "in.jsonl"), "-o", str(d / "out.jsonl"),
            "-n", "2", "--temperature", "0.9", "--seed", "7", "--cache", str(job["cache"]), *extra]


def test_yaml_step_and_command_share_the_cache_and_make_the_same_rows(job):
    n = 2 * job["rows"]
    with StubServer() as srv:
        model = f"openai:stub-model@{srv.base_url}"
        run = run_cli("run", str(yaml_pipeline(job, model)), "--run-dir", str(job["dir"] / "run"), "--cache", str(job["cache"]), timeout=120)
        assert run.returncode == 0, run.stderr
        assert srv.stats()["total_received"] == n

        command = run_cli(*generate_command(job, model), timeout=120)
        assert command.returncode == 0, command.stderr
        assert srv.stats()["total_received"] == n  # nothing new was sent
    assert f"0 requests sent, {n} cache hits" in command.stdout

    exported = run_cli("export", str(job["dir"] / "run"), "--step", "generate", "-o", str(job["dir"] / "run.jsonl"))
    assert exported.returncode == 0, exported.stderr
    from_yaml, from_command = read_jsonl(job["dir"] / "run.jsonl"), read_jsonl(job["dir"] / "out.jsonl")
    assert len(from_command) == n
    assert from_command == from_yaml  # texts, columns and the whole `_meta`, ids included
    assert len({row["_meta"]["id"] for row in from_command}) == n


def test_show_pipeline_prints_what_the_command_runs(job):
    result = run_cli(*generate_command(job, "openai:stub-model@http://127.0.0.1:9/v1", "--show-pipeline"), timeout=60)
    assert result.returncode == 0, result.stderr
    pipeline = yaml.safe_load(result.stdout)
    assert [s["uses"] for s in pipeline["steps"]] == ["load", "generate"]
    assert pipeline["seed"] == 7
    # Only what was chosen: the defaults stay the step's.
    assert pipeline["steps"][1]["with"] == {"model": "openai:stub-model@http://127.0.0.1:9/v1", "template": str(job["dir"] / "t.j2"),
                                            "samples": 2, "temperature": 0.9}
    assert not (job["dir"] / "out.jsonl").exists()


# -- the bridge: typer options from an Options model ------------------------------------------------
class ToyOptions(StepOptions):
    column: str = Field(description="The column to read")
    mode: Literal["fast", "careful"] = "fast"
    times: int = Field(1, ge=1, description="How often")
    ratio: float = Field(0.5, gt=0.0, lt=1.0)
    tags: list[str] = Field([], description="Tags (repeatable)")
    loud: bool | None = Field(None, description="Say more")
    quiet: bool = False


def toy_app(seen: dict) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @with_step_options(ToyOptions, flags={"column": Flag("--column", "-c")})
    def toy(name: str = typer.Option("x", "--name"), step_options: dict = None) -> None:
        seen.update(name=name, options=validated(ToyOptions, step_options))

    return app


def test_options_come_from_the_model_with_its_types_defaults_and_help():
    seen: dict = {}
    runner = CliRunner()
    result = runner.invoke(toy_app(seen), ["-c", "text", "--mode", "careful", "--tags", "a", "--tags", "b", "--no-loud", "--quiet"])
    assert result.exit_code == 0, result.output
    assert seen["name"] == "x"
    assert seen["options"] == ToyOptions(column="text", mode="careful", tags=["a", "b"], loud=False, quiet=True)

    help_text = " ".join(runner.invoke(toy_app({}), ["--help"], env={"COLUMNS": "200"}).output.split())
    for fragment in ("The column to read", "How often", "Tags (repeatable)", "--loud", "--no-loud", "fast", "careful"):
        assert fragment in help_text

    wrong_choice = runner.invoke(toy_app({}), ["-c", "t", "--mode", "slow"])
    assert wrong_choice.exit_code == 2 and "slow" in wrong_choice.output
    below_range = runner.invoke(toy_app({}), ["-c", "t", "--times", "0"])  # ge=1 is typer's min too
    assert below_range.exit_code == 2


def test_a_value_pydantic_refuses_is_a_user_error_naming_the_flag():
    result = CliRunner().invoke(toy_app({}), ["-c", "t", "--ratio", "1.5"])
    assert isinstance(result.exception, UserError)
    assert result.exception.problem.startswith("--ratio: ")
    assert "less than 1" in result.exception.problem


def test_dedup_command_and_its_yaml_keep_the_same_rows(tmp_path):
    texts = ["a cat sat", "a dog ran", "a cat sat", "birds fly", "a dog ran"]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    command = run_cli("dedup", str(tmp_path / "rows.jsonl"), str(tmp_path / "kept.jsonl"), "--method", "exact", "--id-key", "id",
                      "--dropped", str(tmp_path / "dropped.jsonl"), timeout=120)
    assert command.returncode == 0, command.stderr
    shown = run_cli("dedup", str(tmp_path / "rows.jsonl"), str(tmp_path / "unused.jsonl"), "--method", "exact", "--show-pipeline")
    (tmp_path / "p.yaml").write_text(shown.stdout, encoding="utf-8")
    run = run_cli("run", str(tmp_path / "p.yaml"), "--run-dir", str(tmp_path / "run"), timeout=120)
    assert run.returncode == 0, run.stderr
    exported = run_cli("export", str(tmp_path / "run"), "--step", "dedup", "-o", str(tmp_path / "run.jsonl"))
    assert exported.returncode == 0, exported.stderr

    kept = read_jsonl(tmp_path / "kept.jsonl")
    assert [r["id"] for r in kept] == ["r0", "r1", "r3"]
    assert kept == read_jsonl(tmp_path / "run.jsonl")  # `_meta` included
    dropped = read_jsonl(tmp_path / "dropped.jsonl")
    assert {d["id"]: d["_dropped"]["duplicate_of"] for d in dropped} == {"r2": "r0", "r4": "r1"}
    assert "5 rows in, 3 kept" in command.stdout
