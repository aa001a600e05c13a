"""Embedded throughput: synthwright's llamacpp backend against llama-cpp-python called directly.

    .venv/bin/python benchmarks/embedded_throughput.py [--model qwen2.5-coder-1.5b] [--prompts 6] [--max-tokens 64]

Both sides get the same distinct chat prompts, the same max_tokens, temperature 0 and a
fixed seed, on the same GGUF file with the same n_ctx and threads. Each model is loaded once
(and warmed up) outside the timed region; passes alternate direct, synthwright, direct,
synthwright so drift on a shared machine hits both alike. synthwright runs through
LLMEngine with a fresh cache file per pass, so no answer is a cache hit.

Reported: generated (completion) tokens per second of wall time, which includes prompt
evaluation, as a user would see it. Because both sides do exactly the same llama.cpp work
(greedy, same tokens), the time spent inside llama_decode is also measured: wall time minus
decode time is what each side adds around the model, a figure that CPU contention from other
processes barely moves. Always exits 0: a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import llama_cpp
from llama_cpp import _internals

from synthwright.llm.cache import RequestCache
from synthwright.llm.engine import EngineOptions, LLMEngine
from synthwright.llm.offline_models import ensure_model_file
from synthwright.llm.records import LLMRequest, Message, SamplingParams
from synthwright.llm.spec import load_backend

N_CTX = 4096
SEED = 1234
TARGET = 0.9

# Distinct, short questions: different prompts so nothing but the chat template's
# preamble can be reused from the previous request's evaluated tokens.
TOPICS = [
    "reverse a linked list in Python",
    "read a CSV file with pandas and drop empty rows",
    "the difference between a list and a tuple in Python",
    "write a SQL query that counts orders per customer",
    "merge two sorted arrays in O(n)",
    "use functools.lru_cache on a recursive function",
    "parse ISO 8601 dates with the datetime module",
    "write a bash loop over all .txt files in a folder",
    "check whether a string is a palindrome",
    "group a pandas DataFrame by two columns and sum",
    "make an HTTP GET request with the requests library",
    "explain what a Python generator is",
]


def prompts(n: int) -> list[str]:
    return [f"In a few sentences with code, explain how to {TOPICS[i % len(TOPICS)]}. (#{i})" for i in range(n)]


class DecodeClock:
    """Seconds spent inside llama.cpp's decode (both paths reach it through LlamaContext.decode).

    Wraps a private method of llama-cpp-python 0.3.x; benchmark code only, never the product.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        original = _internals.LlamaContext.decode
        clock = self

        def timed(ctx, batch):
            started = time.perf_counter()
            try:
                return original(ctx, batch)
            finally:
                clock.seconds += time.perf_counter() - started

        _internals.LlamaContext.decode = timed


def _direct_calls(llm: llama_cpp.Llama, texts: list[str], max_tokens: int) -> tuple[int, list[str]]:
    tokens, answers = 0, []
    for text in texts:
        out = llm.create_chat_completion(
            messages=[{"role": "user", "content": text}], max_tokens=max_tokens, temperature=0.0, seed=SEED
        )
        tokens += out["usage"]["completion_tokens"]
        answers.append(out["choices"][0]["message"]["content"])
    return tokens, answers


def run_direct(llm: llama_cpp.Llama, texts: list[str], max_tokens: int, main_thread: bool) -> tuple[float, int, list[str]]:
    started = time.perf_counter()
    if main_thread:
        tokens, answers = _direct_calls(llm, texts, max_tokens)
    else:
        # By default the same threading as synthwright's backend (asyncio.to_thread under
        # asyncio.run), so the only difference left is synthwright's own work.
        tokens, answers = asyncio.run(asyncio.to_thread(_direct_calls, llm, texts, max_tokens))
    return time.perf_counter() - started, tokens, answers


def run_synthwright(backend, texts: list[str], max_tokens: int) -> tuple[float, int, list[str]]:
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, seed=SEED)
    requests = [LLMRequest(messages=(Message(role="user", content=t),), params=params) for t in texts]
    answers: list[str] = [""] * len(requests)

    def on_result(index, request, response) -> None:
        if not response.ok:
            print(f"  WARNING synthwright request {index} failed: {response.error}")
        answers[index] = response.text

    with tempfile.TemporaryDirectory() as tmp:
        # A fresh cache per pass: everything is really generated, and the cache's own
        # cost (lookup, store, call log) is part of what is measured.
        cache = RequestCache(Path(tmp) / "cache.sqlite")
        engine = LLMEngine(backend, cache, EngineOptions(step="bench"))
        started = time.perf_counter()
        usage = engine.run(requests, on_result)
        elapsed = time.perf_counter() - started
        cache.close()
    return elapsed, usage.completion_tokens, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="an offline model name")
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="n_threads for both sides")
    parser.add_argument("--rounds", type=int, default=2, help="(direct, synthwright) pairs")
    parser.add_argument("--direct-main-thread", action="store_true",
                        help="call llama-cpp-python from the main thread instead of a worker thread")
    args = parser.parse_args()

    path = ensure_model_file(args.model)
    print(f"model {args.model} ({path.name}), {args.prompts} prompts x max {args.max_tokens} tokens, "
          f"n_threads={args.threads}, n_ctx={N_CTX}, {os.cpu_count()} CPUs; llama-cpp-python {llama_cpp.__version__}")

    # Load both outside the clock. Same file, context size and threads.
    t0 = time.perf_counter()
    direct = llama_cpp.Llama(model_path=str(path), n_ctx=N_CTX, n_threads=args.threads, logits_all=False, verbose=False)
    print(f"direct load: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    backend = load_backend(f"llamacpp:{args.model}", n_ctx=N_CTX, n_threads=args.threads)
    backend.llama()
    backend.chat_formatter()
    print(f"synthwright load: {time.perf_counter() - t0:.1f} s")

    # Warm-up on a prompt not in the timed set: pages in the weights and builds lazy state.
    warm = ["Say hello in one short sentence."]
    run_direct(direct, warm, 8, args.direct_main_thread)
    run_synthwright(backend, warm, 8)

    texts = prompts(args.prompts)
    clock = DecodeClock()
    # Other processes on a shared machine skew llama.cpp badly (its threads wait on each other).
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    # name -> [(wall seconds, completion tokens, seconds inside decode)] per round
    samples: dict[str, list[tuple[float, int, float]]] = {"direct": [], "synthwright": []}
    answers: dict[str, list[str]] = {}
    for rnd in range(args.rounds):
        for name, run in (("direct", lambda: run_direct(direct, texts, args.max_tokens, args.direct_main_thread)),
                          ("synthwright", lambda: run_synthwright(backend, texts, args.max_tokens))):
            clock.seconds = 0.0
            elapsed, tokens, answers[name] = run()
            samples[name].append((elapsed, tokens, clock.seconds))
            print(f"  round {rnd + 1} {name:<12} {tokens:4d} tokens in {elapsed:6.1f} s = {tokens / elapsed:6.2f} tok/s"
                  f"  (decode {clock.seconds:6.1f} s, other {elapsed - clock.seconds:5.2f} s)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")

    def total(name: str, i: int) -> float:
        return sum(s[i] for s in samples[name])

    # Totals over all rounds, and the ratio within each adjacent (direct, synthwright)
    # pair: a burst of load from another process skews one pair, not the whole result.
    rate = {name: total(name, 1) / total(name, 0) for name in samples}
    ratio = rate["synthwright"] / rate["direct"]
    pair_ratios = [(s[1] / s[0]) / (d[1] / d[0]) for d, s in zip(samples["direct"], samples["synthwright"])]
    n_requests = args.rounds * len(texts)
    other_ms = {name: (total(name, 0) - total(name, 2)) / n_requests * 1000 for name in samples}
    # The ratio with contention taken out: both sides given the same (mean) decode time,
    # each keeps its own time outside decode.
    decode = (total("direct", 2) + total("synthwright", 2)) / 2
    steady = (decode + total("direct", 0) - total("direct", 2)) / (decode + total("synthwright", 0) - total("synthwright", 2))
    same = sum(a == b for a, b in zip(answers["direct"], answers["synthwright"]))

    print()
    print(f"{'path':<13}{'tokens':>8}{'seconds':>9}{'tok/s':>8}{'decode s':>10}{'other ms/request':>18}")
    for name in samples:
        print(f"{name:<13}{total(name, 1):>8}{total(name, 0):>9.1f}{rate[name]:>8.2f}{total(name, 2):>10.1f}{other_ms[name]:>18.1f}")
    print(f"ratio synthwright/direct (totals): {ratio:.2f}x  {'PASS' if ratio >= TARGET else 'MISS'} (>= {TARGET}x)")
    print(f"ratio per round: {', '.join(f'{r:.2f}x' for r in pair_ratios)}; median {statistics.median(pair_ratios):.2f}x")
    print(f"ratio with equal decode time (time outside llama_decode only): {steady:.3f}x")
    print(f"identical answers (greedy, same seed): {same}/{len(texts)}")


if __name__ == "__main__":
    main()
