"""Where synthwright keeps its state. One environment variable moves all of it."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "SYNTHWRIGHT_HOME"
MODELS_ENV = "SYNTHWRIGHT_MODELS_DIR"
CACHE_ENV = "SYNTHWRIGHT_CACHE"


def home_dir() -> Path:
    """Root of synthwright's state: $SYNTHWRIGHT_HOME, else ~/.cache/synthwright."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "synthwright"


def models_dir() -> Path:
    """Where assembled model files live: $SYNTHWRIGHT_MODELS_DIR, else <home>/models."""
    env = os.environ.get(MODELS_ENV)
    return Path(env).expanduser() if env else home_dir() / "models"


def cache_path() -> Path:
    """The request cache and call log: $SYNTHWRIGHT_CACHE, else <home>/requests.sqlite."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else home_dir() / "requests.sqlite"
