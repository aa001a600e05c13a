"""Validation of a synthetic set against real data: embedding coverage, classifier
two-sample test, 2-D projection, marginals, diversity, judge scores and calibration,
training-loop curves, the closed-loop guard, and one self-contained HTML report.

Needs the `validate` extra: pip install 'synthwright[validate]'.
"""

from synthwright.errors import require_module

require_module("numpy", "synthwright.validate", "'synthwright[validate]'")

from synthwright.validate.closed_loop import (
    ClosedLoopReport,
    check_closed_loop,
    descends_from,
    diversity_by_round,
)
from synthwright.validate.coverage import (
    Coverage,
    TwoSampleTest,
    knn_coverage,
    two_sample_auc,
)
from synthwright.validate.curves import CurveCheck, check_curves, load_curves
from synthwright.validate.marginals import Dimension, cohen_d, compare_marginals
from synthwright.validate.report import (
    Distribution,
    Flag,
    ValidationConfig,
    ValidationReport,
    compare_distributions,
    judge_tier,
)

__all__ = [
    "ClosedLoopReport", "Coverage", "CurveCheck", "Dimension", "Distribution", "Flag", "TwoSampleTest", "ValidationConfig",
    "ValidationReport", "check_closed_loop", "check_curves", "cohen_d", "compare_distributions", "compare_marginals",
    "descends_from", "diversity_by_round", "judge_tier", "knn_coverage", "load_curves", "two_sample_auc",
]
