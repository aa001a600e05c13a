"""Does a pipeline remember a provider's rate limit from one batch to the next?

    .venv/bin/python benchmarks/limiter_batches.py [--batches 20] [--batch-size 64] [--max-in-flight 8]

A `generate` step runs in batches against the OpenAI-compatible stub (tests/support/openai_stub.py),
which answers 429 to any request that arrives while `--max-in-flight` others are being handled,
as a provider with a concurrency limit does. The engine starts at 64 requests in flight; its
adaptive limiter halves on a burst of 429s and creeps back up on successes. The script prints
the 429s the server sent during each batch: when the limiter's learnt limit survives from one
batch to the next, only the first batch should see a burst. A benchmark, not a test: it exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthwright.core.step import StepContext  # noqa: E402
from synthwright.pipeline.executor import LocalExecutor, RunObserver  # noqa: E402
from synthwright.pipeline.pipeline import Pipeline, run_pipeline  # noqa: E402
from tests.support.openai_stub import OVER_CAPACITY, FaultPlan, StubServer  # noqa: E402


class Rejections(RunObserver):
    """The 429s the stub sent while each batch of the `generate` step ran."""

    def __init__(self, server: StubServer):
        self.server = server
        self.per_batch: list[int] = []
        self._seen = 0

    def batch_finished(self, planned, result) -> None:
        if planned.step.name != "questions":
            return
        total = self.server.faults[OVER_CAPACITY]
        self.per_batch.append(total - self._seen)
        self._seen = total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-in-flight", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds the stub takes per answer")
    args = parser.parse_args()
    plan = FaultPlan(max_in_flight=args.max_in_flight, retry_after_s=0.05)
    with tempfile.TemporaryDirectory() as tmp, StubServer(plan=plan, delay_s=args.delay) as server:
        rows = Path(tmp) / "topics.jsonl"
        rows.write_text("".join(json.dumps({"topic": f"topic {i}"}) + "\n" for i in range(args.batches * args.batch_size)))
        pipeline = Pipeline("limiter", seed=1)
        pipeline.step("topics", "load", path=str(rows))
        pipeline.step("questions", "generate", model=f"openai:stub-model@{server.base_url}",
                      prompt="Ask a question about {{ topic }}.", max_tokens=8, batch_size=args.batch_size)
        observer = Rejections(server)
        run_pipeline(pipeline.config(), Path(tmp) / "run", executor=LocalExecutor(observer),
                     context=StepContext(run_seed=1, cache_file=Path(tmp) / "cache.sqlite"))
    later = observer.per_batch[1:]
    print(f"429s per batch ({args.batches} batches of {args.batch_size}, server takes {args.max_in_flight} at once):")
    print("  " + " ".join(str(n) for n in observer.per_batch))
    print(f"first batch: {observer.per_batch[0]}; later batches: mean {sum(later) / max(1, len(later)):.1f}, max {max(later, default=0)}")


if __name__ == "__main__":
    main()
