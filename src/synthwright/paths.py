"""Where synthwright keeps its state. One environment variable moves all of it."""

from __future__ import annotations

import os
from pathlib import Path

from synthwright.errors import UserError

HOME_ENV = "SYNTHWRIGHT_HOME"
MODELS_ENV = "SYNTHWRIGHT_MODELS_DIR"
CACHE_ENV = "SYNTHWRIGHT_CACHE"


def home_dir() -> Path:
    """Root of synthwright's state: $SYNTHWRIGHT_HOME, else ~/.cache/synthwright."""
    env = os.environ.get(HOME_ENV)
    return _folder(Path(env).expanduser(), HOME_ENV) if env else Path.home() / ".cache" / "synthwright"


def models_dir() -> Path:
    """Where assembled model files live: $SYNTHWRIGHT_MODELS_DIR, else <home>/models."""
    env = os.environ.get(MODELS_ENV)
    return _folder(Path(env).expanduser(), MODELS_ENV) if env else _folder(home_dir() / "models", HOME_ENV)


def _folder(path: Path, variable: str) -> Path:
    """`path`, which must be a folder or not exist yet (it is made when first needed)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{variable} points at '{path}', which is a file, not a folder.",
                        f"Point {variable} at a folder (it is made if it does not exist).")
    return path


def cache_path() -> Path:
    """The request cache and call log: $SYNTHWRIGHT_CACHE, else <home>/requests.sqlite."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else home_dir() / "requests.sqlite"
