"""Generation throughput at saturation: synthwright's executors against the tools people pick instead.

    .venv/bin/python benchmarks/generation_throughput.py [--requests 2000] [--concurrency 64] [--delays 0.1,0]
        [--rounds 2] [--tools aiohttp,openai,engine,local,ray,distilabel,curator] [--upgrade-peers]

One OpenAI-compatible stub server per delay (the same stub and server process as
benchmarks/client_overhead.py) answers every request after a fixed delay, so the client is
what is measured. Every tool sends the same N distinct chat requests ("request {i}", 16 max
tokens) with C in flight, each in a fresh process:

* aiohttp, openai, engine: the three clients of client_overhead.py (bare aiohttp, the
  openai SDK, synthwright's LLMEngine with its request cache on);
* local, ray: `synthwright run` on a load -> generate pipeline, with the local executor and
  with `--executor ray` (a local Ray instance on this machine's CPUs), cache on, fresh file;
* distilabel, curator: the latest releases from PyPI, each in its own virtual environment
  under ~/.cache/synthwright-bench/ (made here; never dependencies of synthwright), running
  benchmarks/peers/*.py.

Times are taken at the server, the same way for every tool: requests answered / (last
answer - first request). Start-up (process launch to first request: interpreter, imports,
Ray, pipeline set-up) is reported separately. The server counts what each tool sent, to
prove every tool sent them all. Always exits 0: it prints PASS/MISS against the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from client_overhead import MAX_TOKENS, MODEL, StubServer, run_bare_aiohttp, run_openai_sdk, run_synthwright  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = Path(__file__).resolve().parent / "peers"
VENVS = Path.home() / ".cache" / "synthwright-bench"
# What each peer's virtual environment gets from PyPI (distilabel 1.5 imports `requests`
# without declaring it).
PEER_PACKAGES = {"distilabel": ["distilabel[openai]", "requests"], "curator": ["bespokelabs-curator"]}
PEER_DIST = {"distilabel": "distilabel", "curator": "bespokelabs-curator"}
# Batch sizes of the pipeline runs: the local executor runs one batch after another, so big
# batches keep all C slots busy; the Ray executor runs a batch per task, two tasks per CPU.
LOCAL_BATCH, RAY_BATCH = 1000, 250
ALL_TOOLS = ("aiohttp", "openai", "engine", "local", "ray", "distilabel", "curator")
LABELS = {
    "aiohttp": "bare aiohttp", "openai": "openai SDK", "engine": "synthwright LLMEngine",
    "local": "synthwright run (local)", "ray": "synthwright run --executor ray",
    "distilabel": "distilabel", "curator": "bespokelabs-curator",
}


# -- the peers' virtual environments ----------------------------------------------------------
def peer_python(name: str, upgrade: bool) -> Path:
    """The peer's venv interpreter; the venv is made (and the package installed) on first use."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"  making {venv} and installing {' '.join(PEER_PACKAGES[name])} (once)...", flush=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        upgrade = True
    if upgrade:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", *PEER_PACKAGES[name]], check=True)
    return python


def peer_version(python: Path, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout.strip() or "?"


# -- one client run in a fresh process (`--client NAME`) -------------------------------------------------
def client_main(name: str, base_url: str, n: int, concurrency: int) -> None:
    if name == "aiohttp":
        _, ok = run_bare_aiohttp(base_url, n, concurrency)
    elif name == "openai":
        _, ok = run_openai_sdk(base_url, n, concurrency)
    else:
        _, ok = run_synthwright(base_url, n, concurrency, [])
    print(json.dumps({"ok": ok}))


def pipeline_file(folder: Path, base_url: str, n: int, batch_size: int) -> Path:
    rows = folder / "rows.jsonl"
    rows.write_text("".join(json.dumps({"instruction": f"request {i}"}) + "\n" for i in range(n)), encoding="utf-8")
    config = {
        "name": "throughput", "seed": 0,
        "steps": [
            {"name": "rows", "uses": "load", "with": {"path": "rows.jsonl"}},
            {"name": "gen", "uses": "generate", "batch_size": batch_size, "with": {
                "model": f"openai:{MODEL}@{base_url}", "prompt": "{{ instruction }}", "temperature": 0.0, "max_tokens": MAX_TOKENS}},
        ],
    }
    path = folder / "pipeline.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def command_for(tool: str, base_url: str, n: int, concurrency: int, folder: Path, peers: dict[str, Path]) -> list[str]:
    if tool in ("aiohttp", "openai", "engine"):
        return [sys.executable, __file__, "--client", tool, "--base-url", base_url, "--requests", str(n), "--concurrency", str(concurrency)]
    if tool in ("local", "ray"):
        pipeline = pipeline_file(folder, base_url, n, LOCAL_BATCH if tool == "local" else RAY_BATCH)
        return [sys.executable, "-m", "synthwright.cli.main", "run", str(pipeline), "--run-dir", str(folder / "run"),
                "--cache", str(folder / "cache.sqlite"), "--concurrency", str(concurrency), "--executor", tool]
    script = PEERS_DIR / f"{tool}_generate.py"
    return [str(peers[tool]), str(script), "--base-url", base_url, "--requests", str(n), "--concurrency", str(concurrency),
            "--max-tokens", str(MAX_TOKENS)]


def server_stats(server: StubServer) -> dict:
    with urllib.request.urlopen(server.base_url.removesuffix("/v1") + "/stats") as resp:
        return json.load(resp)


def reset_times(server: StubServer) -> None:
    request = urllib.request.Request(server.base_url.removesuffix("/v1") + "/reset_times", data=b"", method="POST")
    urllib.request.urlopen(request).close()


def measure(tool: str, server: StubServer, n: int, concurrency: int, peers: dict[str, Path]) -> dict:
    """Run one tool once; everything timed at the server except the process's own lifetime."""
    with tempfile.TemporaryDirectory() as tmp:
        command = command_for(tool, server.base_url, n, concurrency, Path(tmp), peers)
        before = server_stats(server)["total_answered"]
        reset_times(server)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
        launched = time.time()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        ended = time.time()
    stats = server_stats(server)
    if done.returncode != 0:
        print(f"    {tool} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        return {"failed": True}
    window = stats["last_answered_at"] - stats["first_received_at"]
    answered = stats["total_answered"] - before
    return {
        "answered": answered, "rate": answered / window, "startup": stats["first_received_at"] - launched,
        "wall": ended - launched,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delays", default="0.1,0", help="server delays in seconds, comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="runs per tool and delay (best and median reported)")
    parser.add_argument("--tools", default=",".join(ALL_TOOLS))
    parser.add_argument("--upgrade-peers", action="store_true", help="pip install --upgrade the peers first")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args.client, args.base_url, args.requests, args.concurrency)

    tools = [t for t in args.tools.split(",") if t]
    peers = {t: peer_python(t, args.upgrade_peers) for t in tools if t in PEER_PACKAGES}
    versions = {t: peer_version(python, PEER_DIST[t]) for t, python in peers.items()}
    n, conc = args.requests, args.concurrency
    print(f"{n} distinct chat requests, concurrency {conc}, {args.rounds} rounds; python {sys.version.split()[0]}; "
          f"peers: {', '.join(f'{t} {v}' for t, v in versions.items()) or 'none'}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: dict[tuple[str, float], list[dict]] = {}
    for delay in [float(d) for d in args.delays.split(",")]:
        with StubServer(delay) as server:
            for rnd in range(args.rounds):
                for tool in tools:  # interleaved, so drift in the machine's load hits all tools alike
                    r = measure(tool, server, n, conc, peers)
                    results.setdefault((tool, delay), []).append(r)
                    if not r.get("failed"):
                        flag = "" if r["answered"] >= n else f"  WARNING: only {r['answered']} answered"
                        print(f"  delay={delay:g}s round {rnd + 1} {LABELS[tool]:<32}{r['rate']:8.0f} req/s  start-up {r['startup']:5.2f}s"
                              f"  (server answered {r['answered']}){flag}", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report(results, tools, n)


def report(results: dict, tools: list[str], n: int) -> None:
    print()
    print(f"| tool | delay | best req/s | median | vs bare aiohttp | start-up s (median) | answered at server | target |")
    print("|---|---|--:|--:|--:|--:|--:|---|")
    for delay in sorted({d for _, d in results}, reverse=True):
        best = {t: max((r["rate"] for r in results[(t, delay)] if not r.get("failed")), default=None) for t in tools}
        base = best.get("aiohttp")
        for tool in tools:
            ok = [r for r in results[(tool, delay)] if not r.get("failed")]
            if not ok:
                print(f"| {LABELS[tool]} | {delay * 1000:.0f} ms | failed | | | | | |")
                continue
            ratio = f"{best[tool] / base:.2f}x" if base else ""
            print(f"| {LABELS[tool]} | {delay * 1000:.0f} ms | {best[tool]:,.0f} | {statistics.median(r['rate'] for r in ok):,.0f} | {ratio} "
                  f"| {statistics.median(r['startup'] for r in ok):.2f} | {', '.join(str(r['answered']) for r in ok)} "
                  f"| {verdict(tool, delay, best)} |")


def verdict(tool: str, delay: float, best: dict) -> str:
    """The issue's targets for synthwright's pipeline at 100 ms: >= 0.9x bare aiohttp, >= 1.5x each peer."""
    if tool not in ("local", "ray") or delay < 0.1:
        return ""
    checks = []
    if best.get("aiohttp"):
        checks.append(("0.9x aiohttp", best[tool] >= 0.9 * best["aiohttp"]))
    for peer in ("distilabel", "curator"):
        if best.get(peer):
            checks.append((f"1.5x {peer}", best[tool] >= 1.5 * best[peer]))
    return ", ".join(f"{'PASS' if passed else 'MISS'} {what}" for what, passed in checks)


if __name__ == "__main__":
    main()
