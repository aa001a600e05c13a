"""Exceptions that the CLI turns into one clear line instead of a traceback."""

from __future__ import annotations


class SynthwrightError(Exception):
    """Base class for errors synthwright raises on purpose."""


class UserError(SynthwrightError):
    """Bad input or configuration: says what is wrong and how to fix it.

    `problem` names what is wrong; `fix` says what to do about it. Both are shown to the
    user verbatim, so write them as sentences.
    """

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem} {fix}")


class MissingDependency(UserError):
    """An optional component was used without its extra installed."""

    def __init__(self, component: str, pip_spec: str):
        super().__init__(
            f"{component} needs a package that is not installed.",
            f"Install it with: pip install {pip_spec}",
        )
        self.pip_spec = pip_spec


def require_module(module: str, component: str, pip_spec: str):
    """Import `module` or raise MissingDependency naming the pip install that fixes it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(component, pip_spec) from exc
