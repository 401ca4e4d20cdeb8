"""liverec.evaluation: splits, metrics, protocols, peers and reports (see docs/evaluation.md).

``evaluate(dataset, Options(...), out)`` runs the chosen protocols for the chosen systems on one
split, peers included; ``write_report`` writes results.json, results.md and the plots.
"""

from liverec.evaluation.harness import PROTOCOLS, Options, evaluate
from liverec.evaluation.metrics import per_user_metrics
from liverec.evaluation.report import write_report
from liverec.evaluation.results import EvaluationResult, ReplayResult, SystemResult
from liverec.evaluation.splits import LeaveOneOut, leave_one_out
from liverec.evaluation.stats import PairedComparison, bootstrap_ci, paired_test
from liverec.evaluation.systems import SYSTEMS, EvalSystem, build

__all__ = [
    "PROTOCOLS",
    "SYSTEMS",
    "EvalSystem",
    "EvaluationResult",
    "LeaveOneOut",
    "Options",
    "PairedComparison",
    "ReplayResult",
    "SystemResult",
    "bootstrap_ci",
    "build",
    "evaluate",
    "leave_one_out",
    "paired_test",
    "per_user_metrics",
    "write_report",
]
