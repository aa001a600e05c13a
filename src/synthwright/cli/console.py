"""Shared terminal output: one console for stdout, one for stderr."""

from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True)
