"""The step types a pipeline can use: built-in ones and those from installed plugins.

Both register the same way, through `synthwright.steps` entry points (this project's own are in
its pyproject.toml), so this layer imports no step family and none of them imports back up.
"""

from __future__ import annotations

from functools import cache

from synthwright.errors import UserError

BUILT_IN = "load"  # a step type every install of synthwright registers


@cache
def load_step_types() -> None:
    """Import the modules that `synthwright.steps` entry points name: each registers its step types."""
    from importlib.metadata import entry_points

    from synthwright.core.step import STEP_TYPES

    for entry in entry_points(group="synthwright.steps"):
        entry.load()
    if BUILT_IN not in STEP_TYPES:
        load_step_types.cache_clear()
        raise UserError(
            "synthwright's own step types are not registered: its installed metadata is older than its code.",
            "Reinstall it: pip install -e . (in the checkout), or pip install --force-reinstall synthwright.",
        )
