"""Bad input to `synthwright validate`: one `error:` line (and a `fix:` line), exit 2, no
traceback, and no report folder, before any embedding or other work starts."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.test_cli_errors import assert_one_clear_error


@pytest.fixture
def real(tmp_path):
    path = tmp_path / "real.jsonl"
    path.write_text("".join(json.dumps({"text": f"a real request number {i}"}) + "\n" for i in range(5)), encoding="utf-8")
    return path


def validate(tmp_path, synthetic, real, *flags):
    return run_cli("validate", str(synthetic), "--real", str(real), "--out", str(tmp_path / "report"), "--no-syntax", *flags, timeout=120)


def test_a_missing_synthetic_file(tmp_path, real):
    result = validate(tmp_path, tmp_path / "nope.jsonl", real)
    assert_one_clear_error(result, "nope.jsonl", "does not exist")
    assert not (tmp_path / "report").exists()


def test_an_unknown_projection(tmp_path, real):
    result = validate(tmp_path, real, real, "--projection", "pca3d")
    assert_one_clear_error(result, "Unknown projection 'pca3d'")


def test_a_line_that_is_not_json_names_the_file_and_line(tmp_path, real):
    synthetic = tmp_path / "synthetic.jsonl"
    synthetic.write_text('{"text": "fine"}\n{"text": "broken"\n', encoding="utf-8")
    result = validate(tmp_path, synthetic, real)
    assert_one_clear_error(result, f"{synthetic}:2", "not valid JSON")


def test_rows_without_a_text_column(tmp_path, real):
    synthetic = tmp_path / "synthetic.jsonl"
    synthetic.write_text('{"id": 1}\n{"id": 2}\n', encoding="utf-8")
    result = validate(tmp_path, synthetic, real)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.startswith("error: ")
