"""`synthwright review RUN_DIR|DATA`: a local page to browse rows and label a calibration sample.

The web stack (FastAPI, uvicorn) is imported inside the command, so the CLI starts fast
and works without the `review` extra for everything else.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
from pathlib import Path

import typer

from synthwright.cli.console import out
from synthwright.errors import UserError, require_module
from synthwright.io.outputs import output_lock


def _free_port(host: str, port: int) -> int:
    """`port` if it can be bound on `host` (any free one for 0); UserError when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UserError(f"Cannot listen on {host}:{port} ({exc.strerror}).", "Give another --port (0 picks a free one).") from None
        return sock.getsockname()[1]


def register(app: typer.Typer) -> None:
    @app.command("review")
    def review(
        target: Path = typer.Argument(..., help="A run folder, or a .jsonl/.parquet rows file (e.g. from `synthwright judge`)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Anything but loopback needs --token."),
        port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0 picks a free one)."),
        token: str = typer.Option(None, "--token", envvar="SYNTHWRIGHT_REVIEW_TOKEN", help="Access token the page asks for (required off loopback)."),
        sample: int = typer.Option(200, "--sample", min=1, help="Size of the calibration sample, drawn evenly across judge-score bins."),
        seed: int = typer.Option(0, "--seed", help="Seed of the sample and of the pairwise left/right order."),
        prefix: str = typer.Option("judge", "--prefix", help="Prefix of the judge columns (judge_score, judge_by, ...)."),
        rubric: str = typer.Option(None, "--rubric", help="Rubric to label with: `default` or a YAML file (default: the run's judge step's)."),
        text: str = typer.Option(None, "--text", help="The judged text column (default: the run's judge step's, else `text`)."),
        context: str = typer.Option(None, "--context", help="The context column, shown first."),
        a: str = typer.Option(None, "--a", help="Pairwise: the column holding candidate A."),
        b: str = typer.Option(None, "--b", help="Pairwise: the column holding candidate B."),
    ) -> None:
        """Serve a page to browse rows (search, filters, lineage, judge reasons, near-duplicate pairs)
        and to label a calibration sample with the keyboard; labels feed `synthwright calibrate`.

        Example: synthwright review runs/demo   (then open http://127.0.0.1:8765/)
        """
        from synthwright.review import REVIEW_EXTRA

        require_module("fastapi", "The review page", REVIEW_EXTRA)
        uvicorn = require_module("uvicorn", "The review page", REVIEW_EXTRA)
        from synthwright.review.app import ReviewOptions, create_app
        from synthwright.review.guard import check_bind
        from synthwright.review.source import RunSource, open_source

        check_bind(host, token)
        source = open_source(target)
        given = {k: v for k, v in {"text": text, "context": context, "a": a, "b": b}.items() if v}
        if given:
            source.columns = dataclasses.replace(source.columns, **given)
        if not source.steps():
            raise UserError(f"'{target}' has no step with rows yet.", "Run the pipeline first (synthwright run ...).")
        port = _free_port(host, port)
        web = create_app(source, ReviewOptions(prefix=prefix, sample_size=sample, seed=seed, rubric=rubric, token=token))
        # Labels are kept in memory and saved whole: a second page on the same labels would
        # overwrite the first one's. One page per run's review folder (or rows file's labels).
        held = source.review_dir if isinstance(source, RunSource) else source.labels_path(source.steps()[-1])
        with output_lock(held, fix="Use the page that is already open, or stop it first."):
            shown_host = f"[{host}]" if ":" in host else host
            url = f"http://{shown_host}:{port}/" + (f"?token={token}" if token else "")
            out.print(f"review: [bold]{url}[/]  (Ctrl-C to stop)", highlight=False)
            out.print(f"labels are saved as you make them, to {source.labels_path(source.steps()[-1]).parent}/STEP.human.jsonl", highlight=False)
            sys.stdout.flush()
            uvicorn.run(web, host=host, port=port, log_level="warning")
