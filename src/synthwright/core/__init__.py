"""Building blocks every recipe, filter and judge shares: rows with lineage, and steps.

This package sits just above `llm`: recipes, filters and judges subclass its steps; the
pipeline layer (run directories, executors, YAML) runs them.
"""
