"""LLM-as-judge: pointwise rubrics, pairwise preferences in both orders, ensembles with a
non-LLM member, filtering, and calibration against human labels.

```python
from synthwright.judges import RubricJudge, PairwiseJudge, EmbeddingJudge, JudgeEnsemble, judge_rows, JudgeColumns

ensemble = JudgeEnsemble([RubricJudge("llamacpp:qwen2.5-coder-1.5b"), EmbeddingJudge()])
judged = judge_rows(rows, ensemble, "pointwise", JudgeColumns(text="query", context="document"))
kept, dropped = select_by_score(judged.rows, "judge_score")            # bottom 15% out
report = calibrate(judged.rows, load_human_labels("human.jsonl", "pointwise"), good_at_least=3, target=0.9)
```

Names resolve on first use, so `import synthwright.judges` stays cheap and works without the
`judge` extra until a judge actually runs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Judge": "base", "JudgeFailure": "base", "PointItem": "base", "PairItem": "base",
    "PointResult": "base", "PairResult": "base", "CriterionScore": "base",
    "Rubric": "rubric", "Criterion": "rubric", "DEFAULT_RUBRIC": "rubric", "load_rubric": "rubric",
    "RubricJudge": "pointwise", "expected_score": "pointwise",
    "PairwiseJudge": "pairwise", "PairwisePrompt": "prompts",
    "EmbeddingJudge": "embedding",
    "JudgeEnsemble": "ensemble", "EnsembleOutcome": "ensemble", "agreement_table": "ensemble",
    "agreement_weights": "ensemble", "combine_values": "ensemble",
    "JudgeColumns": "apply", "JudgedRows": "apply", "judge_rows": "apply",
    "judge_report": "report",
    "select_by_score": "filtering",
    "calibrate": "calibration", "choose_threshold": "calibration", "load_human_labels": "calibration",
    "pointwise_agreement": "calibration", "pairwise_agreement": "calibration", "ThresholdChoice": "calibration",
    "build_judge": "factory",
    "model_family": "family", "check_circularity": "family", "CircularJudgeWarning": "family",
    "Estimate": "stats", "cohen_kappa": "stats", "spearman": "stats", "kendall": "stats", "bootstrap": "stats",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'synthwright.judges' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"synthwright.judges.{module}"), name)
    globals()[name] = value
    return value
