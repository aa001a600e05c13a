"""`synthwright personas`: sampling, and the with/without-personas diversity comparison."""

import json

from tests.conftest import REPO, run_cli
from tests.support.openai_stub import StubServer


def test_personas_sample_is_seeded():
    first, again, other = run_cli("personas", "sample", "--n", "3", "--seed", "1"), run_cli("personas", "sample", "--n", "3", "--seed", "1"), run_cli("personas", "sample", "--n", "3", "--seed", "2")
    assert first.returncode == 0 and first.stdout == again.stdout != other.stdout
    assert [line.split("  ", 1)[1][:8] for line in first.stdout.splitlines()] == ["You are "] * 3


def test_personas_compare_spends_the_same_budget_on_both_arms(tmp_path):
    with StubServer() as server:
        result = run_cli(
            "personas", "compare", "-m", f"openai:stub@{server.base_url}", "-t", str(REPO / "examples/question.j2"),
            "-i", str(REPO / "examples/topics.jsonl"), "--samples", "2", "--run-dir", str(tmp_path / "cmp"),
        )
        answered = server.stats()["total_answered"]
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "cmp" / "report.json").read_text())
    assert report["plain"]["rows"] == report["personas"]["rows"] == 16
    assert answered == 32
    assert "mean pairwise distance" in result.stdout
