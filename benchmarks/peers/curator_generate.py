"""bespokelabs-curator's side of benchmarks/generation_throughput.py: N chat requests at concurrency C.

Runs in its own virtual environment (made by the benchmark), never imports synthwright.
A `curator.LLM` on the OpenAI backend pointed at the stub, with explicit limits far above
what the stub can serve (its defaults throttle a local server) and C concurrent requests.
Prints one JSON line.
"""

import argparse
import json
import os
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()

    cache_dir = tempfile.mkdtemp(prefix="curator-bench-")  # fresh: no answer comes from its cache
    os.environ.update(CURATOR_CACHE_DIR=cache_dir, TELEMETRY_ENABLED="false", CURATOR_DISABLE_RICH_DISPLAY="1")
    # curator counts tokens with tiktoken, which downloads its tables; this machine is offline,
    # and litellm (a curator dependency) ships the same tables, so point tiktoken at those.
    import importlib.util

    litellm_dir = os.path.dirname(importlib.util.find_spec("litellm").origin)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", os.path.join(litellm_dir, "litellm_core_utils", "tokenizers"))
    from bespokelabs import curator

    imported = time.time()

    class Generate(curator.LLM):
        def prompt(self, row):
            return [{"role": "user", "content": row["instruction"]}]

        def parse(self, row, response):
            return {"instruction": row["instruction"], "generation": response}

    llm = Generate(
        model_name="stub-model", backend="openai",
        generation_params={"max_tokens": args.max_tokens, "temperature": 0.0},
        backend_params={
            "base_url": args.base_url, "api_key": "none", "max_retries": 0, "request_timeout": 120,
            "max_concurrent_requests": args.concurrency,
            "max_requests_per_minute": 100_000_000, "max_tokens_per_minute": 100_000_000_000,
        },
    )
    rows = [{"instruction": f"request {i}"} for i in range(args.requests)]
    started = time.time()
    result = llm(rows)
    finished = time.time()
    dataset = getattr(result, "dataset", result)
    generated = [row for row in dataset if row.get("generation")]
    print(json.dumps({"ok": len(generated), "imported_at": imported, "run_started_at": started, "finished_at": finished}))


if __name__ == "__main__":
    sys.exit(main())
