"""Peak memory of a 1,000,000-row generate -> filter -> export pipeline on an instant server.

    .venv/bin/python benchmarks/pipeline_memory.py [--rows 1000000] [--batch-size 4096] [--executor local]

The OpenAI-compatible stub (a separate process, 0 ms delay) answers every request at once.
`synthwright run` (its own process, request cache on, in a fresh file) runs:

    load rows.jsonl (N rows) -> generate (one request per row) -> filter (min_words) -> export JSONL

The run's peak RSS is its `ru_maxrss` (the largest the process ever was); RSS is also sampled
every second from /proc, to show it stays flat while rows stream through. The server counts
the requests, and the exported file's lines are counted. Target (issue 10): peak < 1.5 GB.
Always exits 0: it prints PASS/MISS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from client_overhead import MODEL, StubServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_BYTES = 1.5e9


def write_pipeline(folder: Path, base_url: str, rows: int, batch_size: int) -> Path:
    with open(folder / "rows.jsonl", "w", encoding="utf-8") as handle:
        for i in range(rows):
            handle.write(json.dumps({"topic": f"topic number {i}"}) + "\n")
    config = {
        "name": "memory", "seed": 0,
        "steps": [
            {"name": "rows", "uses": "load", "with": {"path": "rows.jsonl"}},
            {"name": "gen", "uses": "generate", "batch_size": batch_size, "with": {
                "model": f"openai:{MODEL}@{base_url}", "prompt": "Write one line about {{ topic }}.", "temperature": 0.0, "max_tokens": 16}},
            {"name": "keep", "uses": "filter", "with": {"column": "generation", "min_words": 3}},
            {"name": "out", "uses": "export", "with": {"path": "final.jsonl", "format": "jsonl"}},
        ],
    }
    path = folder / "pipeline.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=4096, help="rows per generate batch (the unit of resume)")
    parser.add_argument("--executor", default="local", choices=("local", "ray"))
    args = parser.parse_args()

    print(f"{args.rows:,} rows, generate batch {args.batch_size}, executor {args.executor}; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with StubServer(0.0) as server, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pipeline = write_pipeline(folder, server.base_url, args.rows, args.batch_size)
        before = server.answered()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        command = [sys.executable, "-m", "synthwright.cli.main", "run", str(pipeline), "--run-dir", str(folder / "run"),
                   "--cache", str(folder / "cache.sqlite"), "--executor", args.executor]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        samples: list[tuple[float, int]] = []

        def sample() -> None:
            while process.poll() is None:
                samples.append((time.perf_counter() - started, rss_bytes(process.pid)))
                time.sleep(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, _ = process.communicate()
        wall = time.perf_counter() - started
        sampler.join()
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest waited-for child: the run
        answered = server.answered() - before
        exported = sum(1 for _ in open(folder / "run" / "final.jsonl", encoding="utf-8")) if process.returncode == 0 else 0
        cache_mb = (folder / "cache.sqlite").stat().st_size / 1e6 if (folder / "cache.sqlite").exists() else 0

    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(stdout.strip().splitlines()[-1] if stdout.strip() else f"run failed with exit code {process.returncode}")
    step = max(1, len(samples) // 10)
    print("RSS while running (s, MB): " + ", ".join(f"{t:.0f}s {b / 1e6:.0f}" for t, b in samples[::step]))
    print()
    print("| rows | wall s | rows/s | requests answered at server | rows exported | peak RSS | target |")
    print("|--:|--:|--:|--:|--:|--:|---|")
    verdict = "PASS" if peak < TARGET_BYTES and process.returncode == 0 else "MISS"
    print(f"| {args.rows:,} | {wall:.0f} | {args.rows / wall:,.0f} | {answered:,} | {exported:,} | {peak / 1e9:.2f} GB | {verdict} (< 1.5 GB) |")
    print(f"request cache file at the end: {cache_mb:.0f} MB")


if __name__ == "__main__":
    main()
