"""`recover_labels`: weigh the ensemble's members, combine, and fit graded labels per query."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from synthwright.core.lineage import Row
from synthwright.core.step import BatchResult, Stage, StepOptions, register_step
from synthwright.errors import UserError
from synthwright.reranker.steps.base import write_json_report


class RecoverOptions(StepOptions):
    model: Literal["thurstone", "bradley_terry"] = "thurstone"
    prior_std: float = Field(3.0, gt=0)
    weights: dict[str, float] | Literal["reliability", "equal"] = Field("reliability", description="Member weights: measured on anchor pairs, equal, or given")
    drop: list[str] = Field([], description="Members to leave out (ablation)")
    calibration: str | None = Field(None, description="weights: reliability from this calibrate_judges report (inside the run folder) instead of anchor pairs")
    report: str | None = "labels_report.json"


@register_step("recover_labels")
class RecoverLabelsStage(Stage):
    Options = RecoverOptions
    description = "Weigh ensemble members by measured reliability, combine, fit Thurstone per query; adds labels {doc_id: label in [0,1]}."

    version = 2  # 2: members combined with sign-accuracy weights on unit-scale logits

    def run(self, rows: Iterable[Row]) -> BatchResult:
        from synthwright.reranker.labels import estimate_reliability, recover_labels

        rows = list(rows)
        result = BatchResult.for_input(len(rows))
        members = sorted({m for row in rows for c in row.get("comparisons") or () for m, p in (c.get("by") or {}).items() if p is not None} - set(self.options.drop))
        reliability = estimate_reliability(rows, members)
        calibrated = self._calibrated_weights(members)
        if self.options.weights == "reliability":
            weights = {m: calibrated.get(m, r.weight) for m, r in reliability.items()}
        elif self.options.weights == "equal":
            weights = {m: 1.0 for m in members}
        else:
            weights = {m: w for m, w in self.options.weights.items() if m in members}
        if members and not any(weights.get(m, 0.0) > 0 for m in members):
            accuracies = ", ".join(f"{m} {r.accuracy}" for m, r in reliability.items())
            raise UserError(f"Every ensemble member has weight 0 (accuracy at or below chance: {accuracies}), so no label can be recovered.",
                            "Give weights explicitly (`weights: {member: w}` or `equal`), or check the judges and the calibration sample.")
        scales = {m: r.scale for m, r in reliability.items()}
        recovered = {q.query_id: q for q in recover_labels(rows, weights, model=self.options.model, prior_std=self.options.prior_std, scales=scales)}
        for row in rows:
            entry = recovered.get(row["query_id"])
            if entry is None:
                result.drop(row, "no_comparisons")
                continue
            # A list of records, not a {doc_id: label} map: Parquet would make every doc id a column.
            labels = [{"doc_id": doc, "label": entry.labels[doc], "score": entry.scores[doc], "std": entry.std[doc]} for doc in entry.labels]
            result.keep({**row, "labels": labels})
        if self.options.report:
            report = {"members": {m: r.to_dict() for m, r in reliability.items()}, "weights": weights, "scales": scales,
                      "weights_from": ("calibration sample" if calibrated else "anchor pairs") if self.options.weights == "reliability"
                      else self.options.weights if isinstance(self.options.weights, str) else "given",
                      "queries": len(recovered), "comparisons": sum(len(r.get("comparisons") or ()) for r in rows)}
            write_json_report(self.context.output_path(self.options.report), report)
        return result


    def _calibrated_weights(self, members: list[str]) -> dict[str, float]:
        """Member weights measured on the human calibration sample, when one is named."""
        if not self.options.calibration:
            return {}
        path = self.context.output_path(self.options.calibration)
        if not path.is_file():
            raise UserError(f"The calibration report '{path}' does not exist.",
                            "Run a calibrate_judges step before this one (its `output` is the file to name here).")
        try:
            measured = json.loads(path.read_text(encoding="utf-8"))["members"]
            weights = {m: float(measured[m]["weight"]) for m in members if m in measured}
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"The calibration report '{path}' is not one calibrate_judges wrote ({exc}).",
                            "Rerun the calibrate_judges step, or point `calibration` at its output.") from None
        missing = [m for m in members if m not in weights]
        if missing:
            raise UserError(f"The calibration sample has no figures for {', '.join(missing)}.",
                            "Give calibrate_judges the same judges as pair_judge, or drop those members (`drop:`).")
        return weights
