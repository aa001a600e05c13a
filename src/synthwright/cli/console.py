"""Shared terminal output: one console for stdout, one for stderr."""

import sys

from rich.console import Console

# Piped output (logs, CI) gets a wide fixed width instead of rich's 80-column default,
# so tables stay readable in files.
_PIPE_WIDTH = 160

out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else _PIPE_WIDTH)
err = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPE_WIDTH)
