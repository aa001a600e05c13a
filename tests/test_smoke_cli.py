"""The issue's own check: 8 rows on the tiny model, then the same command is all cache hits."""

import json

from tests.conftest import REPO, run_cli


def test_generate_eight_rows_then_all_cache_hits(tmp_path):
    out = tmp_path / "questions.jsonl"
    args = ["generate", "-m", "llamacpp:smollm2-135m", "-t", str(REPO / "examples/question.j2"),
            "-i", str(REPO / "examples/topics.jsonl"), "-o", str(out), "--max-tokens", "24"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8
    assert all(row["generation"].strip() for row in rows)
    assert [row["topic"] for row in rows][:2] == ["Python list comprehensions", "SQL joins"]
    assert "8 requests sent, 0 cache hits" in first.stdout

    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    assert "0 requests sent, 8 cache hits" in second.stdout
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows
