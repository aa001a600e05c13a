"""Bad input through the real CLI: one clear `error:` line (and maybe a `fix:` line), exit 2,
never a traceback. Plus `--dry-run`, which must not send anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthwright.llm.records import LLMRequest, Message
from tests.conftest import run_cli
from tests.support.openai_stub import StubServer

LOCAL = "openai:stub-model@http://127.0.0.1:9/v1"  # nothing listens there; errors come first


def assert_one_clear_error(result, *fragments: str) -> str:
    """Exit 2, stderr is `error: ...` plus at most a `  fix: ...` line, naming every fragment."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    if len(lines) == 2:
        assert lines[1].startswith("  fix: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    template = tmp_path / "t.j2"
    template.write_text("Tell me about {{ topic }}.", encoding="utf-8")
    good = tmp_path / "in.jsonl"
    good.write_text('{"topic": "owls"}\n{"topic": "rivers"}\n', encoding="utf-8")
    return {"template": template, "input": good, "output": tmp_path / "out.jsonl", "dir": tmp_path}


def generate(files, *extra: str, model: str = LOCAL, input: Path | None = None, template: Path | None = None,
             output: Path | None = None, env: dict | None = None):
    return run_cli(
        "generate", "-m", model, "-t", str(template or files["template"]), "-i", str(input or files["input"]),
        "-o", str(output or files["output"]), *extra, env=env, timeout=60,
    )


# -- bad input files ---------------------------------------------------------------------------
def test_missing_input_file(files):
    missing = files["dir"] / "nope.jsonl"
    result = generate(files, input=missing)
    assert_one_clear_error(result, str(missing), "does not exist")
    assert not files["output"].exists()


def test_empty_input_file(files):
    empty = files["dir"] / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    assert_one_clear_error(generate(files, input=empty), str(empty), "no rows")


def test_non_utf8_input(files):
    bad = files["dir"] / "latin1.jsonl"
    bad.write_bytes('{"topic": "ok"}\n'.encode() + '{"topic": "café"}\n'.encode("latin-1"))
    line = assert_one_clear_error(generate(files, input=bad), f"{bad}:2", "UTF-8")
    assert "byte" in line


def test_invalid_json_line(files):
    bad = files["dir"] / "broken.jsonl"
    bad.write_text('{"topic": "ok"}\n{"topic": "oops",\n{"topic": "fine"}\n', encoding="utf-8")
    assert_one_clear_error(generate(files, input=bad), f"{bad}:2", "not valid JSON")


# -- bad templates ---------------------------------------------------------------------------------
def test_template_uses_a_missing_column(files):
    template = files["dir"] / "needs_subject.j2"
    template.write_text("Explain {{ subject }} to {{ topic }}.", encoding="utf-8")
    line = assert_one_clear_error(generate(files, template=template), "subject", "topic")
    assert "column" in line


def test_missing_template_file(files):
    missing = files["dir"] / "nope.j2"
    assert_one_clear_error(generate(files, template=missing), str(missing), "does not exist")


def test_template_syntax_error(files):
    template = files["dir"] / "broken.j2"
    template.write_text("Tell me about {{ topic }.", encoding="utf-8")
    assert_one_clear_error(generate(files, template=template), str(template), "syntax error")


# -- bad model specs -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, fragments",
    [
        ("foo:bar", ("Unknown model backend 'foo'",)),
        ("llamacpp:no-such-model", ("Unknown llama.cpp model 'no-such-model'",)),
        ("llamacpp:/no/such/model.gguf", ("/no/such/model.gguf", "does not exist")),
    ],
)
def test_unknown_model_spec(files, spec, fragments):
    assert_one_clear_error(generate(files, model=spec), *fragments)


def test_openai_remote_url_without_key(files, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = generate(files, model="openai:gpt-4o-mini@https://api.example.com/v1")
    assert_one_clear_error(result, "No API key", "https://api.example.com/v1")
    assert "OPENAI_API_KEY" in result.stderr  # the fix names the variable to set


# -- bad output or options ---------------------------------------------------------------------------
def test_unknown_output_extension(files):
    with StubServer() as srv:
        result = generate(files, model=f"openai:stub-model@{srv.base_url}", output=files["dir"] / "out.txt")
        received = srv.stats()["total_received"]
    assert_one_clear_error(result, "out.txt", ".txt")
    assert received == 0  # found out before anything was sent
    assert not (files["dir"] / "out.txt").exists()


# -- dry run ---------------------------------------------------------------------------------------
def test_dry_run_sends_nothing_and_estimates(files):
    rows = [{"topic": "owls"}, {"topic": "rivers"}, {"topic": "the history of the printing press"}]
    files["input"].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with StubServer() as srv:
        result = generate(files, "--dry-run", "-n", "2", "--max-tokens", "50", "--price", "1/2",
                          model=f"openai:stub-model@{srv.base_url}")
        stats = srv.stats()
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert stats["total_received"] == 0
    assert not files["output"].exists()
    # The request as the model would see it.
    assert "user: Tell me about owls." in result.stdout
    assert "dry run: nothing was sent" in result.stdout
    # The backend's estimate: len(text) // 4 tokens per request, 2 samples per row.
    requests = [LLMRequest(messages=(Message(role="user", content=f"Tell me about {r['topic']}."),)) for r in rows]
    prompt_tokens = 2 * sum(max(1, len(f"user: {r.messages[0].content}") // 4) for r in requests)
    completion = 6 * 50
    cost = (prompt_tokens * 1 + completion * 2) / 1e6
    assert f"6 requests (0 already cached, would be free), {prompt_tokens:,} prompt tokens" in result.stdout
    assert f"at most {completion:,} completion tokens" in result.stdout
    assert f"estimated cost at most ${cost:.4f}" in result.stdout


def test_dry_run_counts_cached_requests(files):
    with StubServer() as srv:
        model = f"openai:stub-model@{srv.base_url}"
        first = generate(files, model=model)
        assert first.returncode == 0, first.stderr
        received = srv.stats()["total_received"]
        dry = generate(files, "--dry-run", model=model)
        assert srv.stats()["total_received"] == received == 2
    assert dry.returncode == 0, dry.stderr
    assert "2 requests (2 already cached, would be free)" in dry.stdout
    assert "estimated cost" not in dry.stdout  # no --price, no cost


# -- the bad-input table: each exits 2 with an `error:` and a `fix:` line, before any work --------
def _run_folder(t: dict) -> Path:
    """A finished run of a two-step pipeline (no model), to damage."""
    folder = t["dir"] / "pipe"
    folder.mkdir()
    (folder / "topics.jsonl").write_text('{"topic": "owls"}\n{"topic": "rivers"}\n', encoding="utf-8")
    (folder / "p.yaml").write_text(
        "name: tiny\nsteps:\n  - {name: topics, uses: load, with: {path: topics.jsonl}}\n"
        "  - {name: short, uses: filter, with: {column: topic, max_words: 3}}\n", encoding="utf-8")
    run = t["dir"] / "run"
    made = run_cli("run", str(folder / "p.yaml"), "--run-dir", str(run), timeout=120)
    assert made.returncode == 0, made.stderr
    return run


def _truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    return path


def _pipeline_with_bad_regex(t: dict) -> list[str]:
    path = t["dir"] / "bad_regex.yaml"
    path.write_text(
        "name: bad-regex\nsteps:\n  - {name: topics, uses: load, with: {path: in.jsonl}}\n"
        "  - {name: clean, uses: filter, with: {column: topic, must_match: '([a-z'}}\n", encoding="utf-8")
    return ["run", str(path), "--run-dir", str(t["dir"] / "never")]


def _a_file(t: dict) -> Path:
    path = t["dir"] / "plain-file"
    path.write_text("not a folder", encoding="utf-8")
    return path


def _a_folder(t: dict, name: str) -> Path:
    path = t["dir"] / name
    path.mkdir()
    return path


def _generate_args(t: dict, *extra: str, model: str = LOCAL, input=None, template=None, output=None) -> list[str]:
    return ["generate", "-m", model, "-t", str(template or t["template"]), "-i", str(input or t["input"]),
            "-o", str(output or t["output"]), *extra]


# name -> (arguments and environment built in the test's folder, fragments the error line names)
BAD_INPUTS = {
    "timeout-zero": (lambda t: (_generate_args(t, "--timeout", "0"), {}), ("--timeout", "more than 0")),
    "timeout-negative": (lambda t: (_generate_args(t, "--timeout", "-1"), {}), ("--timeout", "more than 0")),
    "output-is-a-folder": (lambda t: (_generate_args(t, output=_a_folder(t, "out.jsonl")), {}), ("out.jsonl", "is a folder")),
    "input-is-a-folder": (lambda t: (_generate_args(t, input=_a_folder(t, "rows.jsonl")), {}), ("rows.jsonl", "is a folder")),
    "template-is-a-folder": (lambda t: (_generate_args(t, template=t["dir"]), {}), ("is a folder", "Template file")),
    "key-in-base-url": (lambda t: (_generate_args(t, model="openai:m@http://user:sekret-key@127.0.0.1:9/v1"), {}),
                        ("user name or key",)),
    "dedup-onto-its-input": (lambda t: (["dedup", str(t["input"]), str(t["input"]), "--method", "exact"], {}),
                             ("is the input file",)),
    "judge-without-the-text-column": (lambda t: (["judge", str(t["input"]), "--judge", "embedding", "--text", "nosuch"], {}),
                                      ("nosuch", "topic")),
    "usage-negative-hours": (lambda t: (["usage", "--hours", "-5"], {}), ("--hours",)),
    "models-dir-is-a-file": (lambda t: (["models"], {"SYNTHWRIGHT_MODELS_DIR": str(_a_file(t))}),
                             ("SYNTHWRIGHT_MODELS_DIR", "is a file")),
    "home-is-a-file": (lambda t: (["usage"], {"SYNTHWRIGHT_HOME": str(_a_file(t)), "SYNTHWRIGHT_CACHE": ""}),
                       ("SYNTHWRIGHT_HOME", "is a file")),
    "invalid-must-match-regex": (lambda t: (_pipeline_with_bad_regex(t), {}), ("must_match", "regular expression")),
    "inspect-a-file": (lambda t: (["inspect", str(t["input"])], {}), ("is a file",)),
    "inspect-truncated-manifest": (lambda t: (["inspect", str(_damaged_manifest(t))], {}),
                                   ("manifest.json", "damaged")),
    "export-truncated-manifest": (lambda t: (["export", str(_damaged_manifest(t)), "--step", "short"], {}),
                                  ("manifest.json", "damaged")),
    "export-truncated-shard": (lambda t: (["export", str(_damaged_shard(t)), "--step", "short"], {}),
                               ("part-00000.parquet", "damaged")),
}


def _damaged_manifest(t: dict) -> Path:
    run = _run_folder(t)
    _truncate(run / "manifest.json")
    return run


def _damaged_shard(t: dict) -> Path:
    run = _run_folder(t)
    _truncate(run / "steps" / "short" / "out" / "part-00000.parquet")
    return run


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_refused_with_error_and_fix(files, case):
    build, fragments = BAD_INPUTS[case]
    before = files["input"].read_bytes()
    args, env = build(files)
    result = run_cli(*args, env=env, timeout=120)
    assert_one_clear_error(result, *fragments)
    assert "\n  fix: " in result.stderr, result.stderr
    assert "sekret-key" not in result.stderr  # a key in a URL is never repeated back
    assert files["input"].read_bytes() == before  # the input is never touched
