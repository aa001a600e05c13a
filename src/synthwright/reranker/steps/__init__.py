"""Pipeline steps of the synthetic reranker (see examples/reranker.yaml), one module per family:

documents (corpus) -> queries (doc_queries, rewrite_queries) -> query_register -> first_stage -> candidates -> judged (pair_judge,
calibrate_judges) -> labels (recover_labels) -> student (train_student) -> evaluation
(evaluate_reranker) -> report (reranker_report)

Row steps (doc_queries, candidates, pair_judge) work batch by batch and resume; the stages
need every row at once (reliability weights and score recovery are global; training reads
all labels). One row = one synthetic query with its source document. Importing this package
registers every step type.
"""

from synthwright.reranker.steps.base import DEFAULT_TEACHER, PassThroughStage, ReadsCorpus, Style, write_json_report
from synthwright.reranker.steps.candidates import CandidatesOptions, CandidatesStep
from synthwright.reranker.steps.documents import CorpusOptions, CorpusStep
from synthwright.reranker.steps.evaluation import EvaluateOptions, EvaluateRerankerStage
from synthwright.reranker.steps.first_stage import FirstStageOptions, FirstStageStage
from synthwright.reranker.steps.judging import (
    CalibrateJudgesStage,
    CalibrateOptions,
    PairJudgeOptions,
    PairJudgeStep,
    checked_judges,
    likelihood_fingerprint,
)
from synthwright.reranker.steps.labels import RecoverLabelsStage, RecoverOptions
from synthwright.reranker.steps.register import QueryRegisterStage, RegisterOptions
from synthwright.reranker.steps.queries import (
    DocQueriesOptions,
    DocQueriesStep,
    RewriteQueriesOptions,
    RewriteQueriesStep,
    TeacherQueryOptions,
)
from synthwright.reranker.steps.report import RerankerReportStage, ReportOptions
from synthwright.reranker.steps.student import StudentOptions, TrainStudentStage, row_labels

__all__ = [
    "DEFAULT_TEACHER", "CalibrateJudgesStage", "CalibrateOptions", "CandidatesOptions", "CandidatesStep", "CorpusOptions",
    "CorpusStep", "DocQueriesOptions", "DocQueriesStep", "EvaluateOptions", "EvaluateRerankerStage", "FirstStageOptions", "FirstStageStage", "PairJudgeOptions",
    "PairJudgeStep", "PassThroughStage", "QueryRegisterStage", "RegisterOptions", "ReadsCorpus", "RecoverLabelsStage", "RecoverOptions", "RerankerReportStage",
    "ReportOptions", "RewriteQueriesOptions", "RewriteQueriesStep", "StudentOptions", "Style", "TeacherQueryOptions",
    "TrainStudentStage", "checked_judges", "likelihood_fingerprint", "row_labels", "write_json_report",
]
