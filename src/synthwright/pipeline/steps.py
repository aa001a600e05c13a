"""The step types a pipeline can use: built-in ones and those from installed plugins."""

from __future__ import annotations

from functools import cache


@cache
def load_step_types() -> None:
    """Import the modules that register step types (plugins: `synthwright.steps` entry points)."""
    from importlib.metadata import entry_points

    import synthwright.classify.consistency  # noqa: F401
    import synthwright.classify.generation  # noqa: F401
    import synthwright.classify.report  # noqa: F401
    import synthwright.classify.training  # noqa: F401
    import synthwright.filters.steps  # noqa: F401
    import synthwright.filters.text_rules  # noqa: F401
    import synthwright.io.steps  # noqa: F401
    import synthwright.judges.steps  # noqa: F401
    import synthwright.recipes.generate_step  # noqa: F401
    import synthwright.recipes.evol_instruct  # noqa: F401
    import synthwright.recipes.magpie  # noqa: F401
    import synthwright.recipes.perturb  # noqa: F401
    import synthwright.recipes.personas  # noqa: F401
    import synthwright.recipes.self_instruct  # noqa: F401
    import synthwright.reranker.steps  # noqa: F401

    for entry in entry_points(group="synthwright.steps"):
        entry.load()
