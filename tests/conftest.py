"""Shared fixtures: real models, a real llama.cpp OpenAI-compatible server, a faulty stub.

Models are assembled once into the normal models folder (as `make test` prepares them);
each test gets its own request cache, so tests never see each other's answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from synthwright.llm.offline_models import ensure_model_file

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Every test gets a fresh request cache file (models stay shared)."""
    path = tmp_path / "requests.sqlite"
    monkeypatch.setenv("SYNTHWRIGHT_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def smollm_path() -> Path:
    return ensure_model_file("smollm2-135m")


@pytest.fixture(scope="session")
def llama_server(smollm_path):
    """llama-cpp-python's own OpenAI-compatible server on 127.0.0.1, serving the tiny model.

    Yields the base URL (http://127.0.0.1:PORT/v1). The served model name is "smollm".
    """
    port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{port}.log", "wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "llama_cpp.server", "--model", str(smollm_path), "--model_alias", "smollm",
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"llama_cpp.server did not start within 120 s; see {log.name}")
        time.sleep(0.3)
    yield base_url
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `synthwright ARGS` as a user would, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "synthwright.cli.main", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=REPO,
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the repository as ../shared/data)")
    return SHARED_DATA
