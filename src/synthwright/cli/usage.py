"""`synthwright usage`: what was sent, served from cache, failed and cost, per model and step."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from synthwright.cli.console import out
from synthwright.errors import UserError
from synthwright.llm.cache import RequestCache
from synthwright.paths import cache_path


def register(app: typer.Typer) -> None:
    @app.command("usage")
    def usage(
        cache: Path = typer.Option(None, "--cache", help="Request cache file (default: $SYNTHWRIGHT_CACHE or ~/.cache/synthwright/requests.sqlite)."),
        hours: float = typer.Option(None, "--hours", help="Only calls from the last N hours."),
    ) -> None:
        """Usage from the call log, per model and step.

        Example: synthwright usage --hours 24
        """
        if hours is not None and not hours > 0:
            raise UserError(f"--hours must be more than 0, not {hours:g}.", "Give how many recent hours to count, e.g. --hours 24.")
        since = time.time() - hours * 3600 if hours else None
        rows = RequestCache(cache or cache_path()).calls_summary(since)
        table = Table(title="LLM usage")
        for column in ("model", "step", "sent", "cache hits", "prompt tok", "completion tok", "failures", "mean latency", "cost $"):
            table.add_column(column, justify="left" if column in ("model", "step") else "right")
        for row in rows:
            latency = f"{row['mean_latency_s']:.2f}s" if row["mean_latency_s"] is not None else "-"
            table.add_row(
                row["model"], row["step"], f"{row['sent']:,}", f"{row['cache_hits']:,}", f"{row['prompt_tokens']:,}",
                f"{row['completion_tokens']:,}", f"{row['failures']:,}", latency, f"{row['cost']:.4f}",
            )
        out.print(table if rows else "No calls logged yet.")
