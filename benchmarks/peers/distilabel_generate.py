"""distilabel's side of benchmarks/generation_throughput.py: N chat requests at concurrency C.

Runs in its own virtual environment (made by the benchmark), never imports synthwright.
A distilabel pipeline as its docs show it: LoadDataFromDicts -> TextGeneration(OpenAILLM),
with `input_batch_size` = C, so C requests are in flight per batch. Prints one JSON line.
"""

import argparse
import json
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

    from distilabel.models import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import TextGeneration

    imported = time.time()
    rows = [{"instruction": f"request {i}"} for i in range(args.requests)]
    with tempfile.TemporaryDirectory() as cache_dir:
        with Pipeline(name="bench", cache_dir=cache_dir) as pipeline:
            load = LoadDataFromDicts(data=rows, batch_size=args.concurrency)
            generate = TextGeneration(
                llm=OpenAILLM(
                    model="stub-model", base_url=args.base_url, api_key="none", max_retries=0,
                    generation_kwargs={"max_new_tokens": args.max_tokens, "temperature": 0.0},
                ),
                input_batch_size=args.concurrency,
            )
            load >> generate
        started = time.time()
        distiset = pipeline.run(use_cache=False)
        finished = time.time()
    generated = [row for row in distiset["default"]["train"] if row.get("generation")]
    print(json.dumps({"ok": len(generated), "imported_at": imported, "run_started_at": started, "finished_at": finished}))


if __name__ == "__main__":
    sys.exit(main())
