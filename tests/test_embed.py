"""Embedders (real offline MiniLM; a real HTTP server speaking the OpenAI /embeddings wire
format), the content-hash cache, and the vector indexes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest

from synthwright.embed import AutoIndex, EmbeddingCache, ExactIndex, IVFIndex, load_embedder
from synthwright.embed.base import parse_embedder_spec
from synthwright.embed.local import minilm_path
from synthwright.errors import MissingDependency, UserError


@pytest.fixture(scope="module")
def minilm():
    return load_embedder("minilm", cache=None)


def clustered(n: int, dim: int = 64, clusters: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_minilm_vectors_are_normalised_and_meaningful(minilm):
    vectors = minilm.embed(["How do I reverse a list in Python?", "What is the way to reverse a Python list?", "Give me three tips for better sleep."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > 0.9
    assert vectors[0] @ vectors[2] < 0.4


def test_cache_embeds_each_text_once(tmp_path):
    path = tmp_path / "emb.sqlite"
    texts = ["alpha beta", "gamma delta", "alpha beta", "epsilon"]
    first = load_embedder("minilm", cache=path)
    a = first.embed(texts)
    assert (first.stats.encoded, first.stats.duplicates_in_call, first.stats.cache_hits) == (3, 1, 0)
    assert np.array_equal(a[0], a[2])
    second = load_embedder("minilm", cache=path)  # a new process would see the same file
    b = second.embed(texts)
    assert (second.stats.encoded, second.stats.cache_hits) == (0, 3)
    assert np.allclose(a, b)
    assert EmbeddingCache(path).count() == 3


def test_cache_keys_separate_models(tmp_path, minilm):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    vector = minilm.embed(["hello"])
    cache.put_many("model-a", [b"k" * 16], vector)
    assert set(cache.get_many("model-a", [b"k" * 16])) == {b"k" * 16}
    assert cache.get_many("model-b", [b"k" * 16]) == {}


def test_default_cache_lives_under_home_and_is_overridable(tmp_path, monkeypatch):
    from synthwright.embed.cache import default_cache_path

    monkeypatch.setenv("SYNTHWRIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SYNTHWRIGHT_EMBED_CACHE", raising=False)
    assert default_cache_path() == tmp_path / "home" / "embeddings" / "cache.sqlite"
    monkeypatch.setenv("SYNTHWRIGHT_EMBED_CACHE", str(tmp_path / "x.sqlite"))
    assert default_cache_path() == tmp_path / "x.sqlite"


def test_specs_parse_and_fail_clearly(tmp_path):
    assert parse_embedder_spec("minilm") == ("minilm", "")
    assert parse_embedder_spec("st:/models/x") == ("st", "/models/x")
    assert parse_embedder_spec("/models/x") == ("st", "/models/x")
    assert parse_embedder_spec("openai:text-embedding-3-small@http://127.0.0.1:8000/v1") == ("openai", "text-embedding-3-small@http://127.0.0.1:8000/v1")
    with pytest.raises(UserError, match="Unknown embedder 'nope'"):
        load_embedder("nope")
    with pytest.raises(UserError, match="does not exist"):
        load_embedder(f"st:{tmp_path / 'missing'}")
    with pytest.raises(UserError, match="No API key"):
        load_embedder("openai:m@https://api.example.com/v1", api_key_env="SYNTHWRIGHT_TEST_NO_SUCH_KEY")


def test_st_path_gives_the_same_vectors_as_minilm(minilm):
    st = load_embedder(f"st:{minilm_path()}", cache=None)
    assert st.identity != minilm.identity
    assert np.allclose(st.embed(["same text"]), minilm.embed(["same text"]), atol=1e-6)


class EmbeddingsServer(BaseHTTPRequestHandler):
    """Speaks the OpenAI /v1/embeddings wire format, backed by MiniLM; fails on purpose the
    first time (503), and returns items out of order (clients must sort by index)."""

    embedder = None
    requests: ClassVar[list[dict]] = []
    fail_next = 1

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if type(self).fail_next:
            type(self).fail_next -= 1
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        vectors = self.embedder.embed(body["input"]) * 3.0  # not normalised: the client must normalise
        data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)][::-1]
        payload = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_openai_compatible_endpoint(minilm, monkeypatch):
    EmbeddingsServer.embedder, EmbeddingsServer.requests, EmbeddingsServer.fail_next = minilm, [], 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), EmbeddingsServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("SYNTHWRIGHT_TEST_KEY", "sk-test")
        embedder = load_embedder(f"openai:mini@http://127.0.0.1:{server.server_port}/v1", cache=None, batch_size=2, api_key_env="SYNTHWRIGHT_TEST_KEY")
        texts = ["one small text", "another text", "a third", "and a fourth"]
        vectors = embedder.embed(texts)
    finally:
        server.shutdown()
    assert np.allclose(vectors, minilm.embed(texts), atol=1e-5)
    sent = EmbeddingsServer.requests
    assert len(sent) == 3  # one 503 retried, then two batches of two
    assert all(r["path"] == "/v1/embeddings" and r["auth"] == "Bearer sk-test" and r["body"]["model"] == "mini" for r in sent)
    assert [r["body"]["input"] for r in sent[1:]] == [texts[:2], texts[2:]]
    assert embedder.identity == "openai:mini"


def test_exact_index_matches_brute_force():
    x = clustered(600)
    index = ExactIndex(64, capacity=4)
    index.add(x[:300])
    index.add(x[300:500])
    distances, slots = index.search(x[500:], k=3)
    sims = x[500:] @ x[:500].T
    assert np.array_equal(slots, np.argsort(-sims, axis=1)[:, :3])
    assert np.allclose(distances, 1 - np.sort(sims, axis=1)[:, ::-1][:, :3], atol=1e-5)
    empty_d, empty_s = ExactIndex(64).search(x[:2])
    assert np.all(empty_s == -1) and np.all(np.isinf(empty_d))


@pytest.mark.parametrize(("rows", "nlist"), [(4000, 64), (12000, 4096)])  # one flat list of centroids; two-level cells
def test_ivf_agrees_with_exact_on_thousands_of_vectors(rows, nlist):
    x = clustered(rows, seed=1, clusters=rows // 100)
    rng = np.random.default_rng(2)
    queries = x[rng.choice(rows, 500, replace=False)] + 0.02 * rng.standard_normal((500, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact, ivf = ExactIndex(64), IVFIndex(64, nlist=nlist, nprobe=8)
    ivf.train(x)
    assert abs(ivf.nlist - nlist) <= nlist // 50
    for index in (exact, ivf):
        index.add(x)
    (exact_d, exact_s), (ivf_d, ivf_s) = exact.search(queries), ivf.search(queries)
    assert np.mean(exact_s[:, 0] == ivf_s[:, 0]) >= 0.99
    assert np.allclose(exact_d[exact_s == ivf_s], ivf_d[exact_s == ivf_s], atol=2e-3)  # float16 storage


def test_auto_index_switches_to_ivf_and_keeps_slots():
    x = clustered(3000, seed=3)
    index = AutoIndex(64, ann_threshold=500, nprobe=16, growth=2)
    for start in range(0, 3000, 250):
        index.add(x[start : start + 250])
    assert not index.exact and index.rebuilds >= 2 and len(index) == 3000
    _, slots = index.search(x[::7])
    assert np.mean(slots[:, 0] == np.arange(0, 3000, 7)) >= 0.99  # each vector finds itself, under its slot


def test_missing_faiss_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    with pytest.raises(MissingDependency, match=r"pip install 'synthwright\[embed\]'"):
        AutoIndex(8)
    assert AutoIndex(8, ann_threshold=None).exact  # exact-only needs no faiss


def test_core_import_stays_light():
    code = (
        "import sys, synthwright, synthwright.cli.main, synthwright.filters, synthwright.filters.text_rules; "
        "print(sorted(m for m in ('numpy', 'torch', 'faiss', 'matplotlib', 'sentence_transformers', 'datasketch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
