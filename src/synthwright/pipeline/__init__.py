"""Pipelines: steps composed into a resumable run with lineage, from YAML or Python."""

from synthwright.pipeline.pipeline import Pipeline, RunResult, run_pipeline, run_pipeline_file

__all__ = ["Pipeline", "RunResult", "run_pipeline", "run_pipeline_file"]
