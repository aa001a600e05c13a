"""Any OpenAI-compatible `/embeddings` endpoint (OpenAI, vLLM, llama.cpp server, Ollama, TEI...).

Spec: `openai:MODEL@BASE_URL`, or `openai:MODEL` with the base URL from $OPENAI_BASE_URL.
The key comes from $OPENAI_API_KEY (`api_key_env=` to change it); servers on this machine
may go without one. Uses the standard library's HTTP client: embedding is a batch job,
one request in flight is enough, and it keeps this embedder free of extra dependencies.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

import numpy as np

from synthwright.embed.base import Embedder, register_embedder
from synthwright.errors import UserError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in {"localhost", "::1"} or host.startswith("127.")


@register_embedder("openai")
class OpenAIEmbedder(Embedder):
    default_batch_size = 256

    def __init__(
        self, target: str, *, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 120.0, max_attempts: int = 6,
        dimensions: int | None = None, **options: Any,
    ):
        model, _, base_url = target.partition("@")
        if not model:
            raise UserError(f"The embedder spec 'openai:{target}' names no model.", "Write it as openai:MODEL@http://HOST:PORT/v1.")
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if urlparse(self.base_url).scheme not in ("http", "https"):
            raise UserError(f"The base URL '{self.base_url}' is not an http(s) URL.", "Write it like openai:MODEL@http://127.0.0.1:8080/v1.")
        key = os.environ.get(api_key_env)
        if not key and not _is_loopback(self.base_url):
            raise UserError(f"No API key for {self.base_url}.", f"Set the environment variable {api_key_env} to your key.")
        super().__init__(target, **options)  # opens the cache: only once the spec is known to be usable
        self._headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key or 'none'}"}
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.dimensions = dimensions
        self._dim: int | None = dimensions

    @property
    def identity(self) -> str:
        # The URL stays out: the same model behind another server gives the same vectors.
        return f"openai:{self.model}" + (f"/d{self.dimensions}" if self.dimensions else "")

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._encode(["dimension probe"])
        return self._dim  # type: ignore[return-value]

    def _encode(self, texts: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.dimensions:
            body["dimensions"] = self.dimensions
        reply = self._post("/embeddings", body)
        try:
            items = sorted(reply["data"], key=lambda item: item["index"])
            vectors = np.asarray([item["embedding"] for item in items], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{self.base_url}/embeddings answered without a usable 'data' list ({exc}).", "Check that the server serves embeddings for this model.") from None
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise UserError(f"{self.base_url}/embeddings returned {len(vectors)} vectors for {len(texts)} texts.")
        self._dim = vectors.shape[1]
        return vectors

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode("utf-8")
        for attempt in range(1, self.max_attempts + 1):
            request = urllib.request.Request(self.base_url + path, data=data, headers=self._headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                if exc.code not in RETRY_STATUSES or attempt == self.max_attempts:
                    raise UserError(f"{self.base_url}{path} answered HTTP {exc.code}: {detail}", "Check the model name, key and server.") from None
                wait = _retry_after(exc.headers.get("Retry-After"), attempt)
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
                if attempt == self.max_attempts:
                    raise UserError(f"Cannot get embeddings from {self.base_url}{path}: {exc}.", "Check that the server is running and reachable.") from None
                wait = _retry_after(None, attempt)
            time.sleep(wait)
        raise AssertionError("unreachable")


def _retry_after(header: str | None, attempt: int) -> float:
    """The server's Retry-After when it gives one (capped), else exponential backoff."""
    try:
        if header is not None:
            return min(float(header), 60.0)
    except ValueError:
        pass
    return min(0.25 * 2 ** (attempt - 1), 20.0)
