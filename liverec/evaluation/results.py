"""What an evaluation run produces, and its JSON form (``results.json``).

Per-user values are kept (not only means) so that every number in the report carries a
bootstrap interval and every comparison a paired test over the same users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liverec.evaluation.metrics import by_history_length
from liverec.evaluation.stats import bootstrap_ci, paired_test


@dataclass
class SystemResult:
    """One system's test result under one protocol, with how its configuration was chosen."""

    system: str
    config: dict[str, Any]
    users: list[str]
    metrics: dict[str, np.ndarray]  # metric name -> per-user test values (same order as users)
    history_length: np.ndarray  # per user: item events they had before the test target
    beyond: dict[str, float] = field(default_factory=dict)  # coverage@10, diversity@10, novelty@10
    validation: list[dict[str, Any]] = field(default_factory=list)  # every config tried and its valid NDCG@10
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. a peer's own metrics

    def mean(self, name: str) -> float:
        return float(self.metrics[name].mean()) if len(self.users) else 0.0


@dataclass
class ReplayResult:
    """Prequential replay of one mode (``realtime``, ``frozen`` or ``frozen+seen``): one row per scored event."""

    mode: str
    times: np.ndarray  # event timestamps
    hits: np.ndarray  # 1.0 where the event's item was in the top K just before it
    ndcg: np.ndarray
    trainings: int
    seconds: float
    # Per scored event: whether its user had events the frozen engine was shown (else a user new
    # since its last training, whom only the real-time engine knows anything about).
    known_user: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


@dataclass
class EvaluationResult:
    dataset: str
    protocol: str
    counts: dict[str, int]
    systems: list[SystemResult] = field(default_factory=list)
    replay: list[ReplayResult] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def system(self, name: str) -> SystemResult | None:
        return next((s for s in self.systems if s.system == name), None)

    def to_json(self, seed: int = 0) -> dict[str, Any]:
        """Means with 95% bootstrap intervals, paired tests of liverec against each peer, breakdowns."""
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "counts": self.counts,
            "settings": self.settings,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
            "systems": {},
        }
        for s in self.systems:
            metrics = {}
            for name, values in s.metrics.items():
                low, high = bootstrap_ci(values, seed=seed)
                metrics[name] = {"mean": _r(float(values.mean()) if values.size else 0.0), "ci95": [_r(low), _r(high)]}
            out["systems"][s.system] = {
                "config": s.config,
                "users": len(s.users),
                "metrics": metrics,
                "beyond": {k: _r(v) for k, v in s.beyond.items()},
                "ndcg@10_by_history_length": {
                    label: {"mean": _r(mean), "users": n}
                    for label, (mean, n) in by_history_length(s.metrics["ndcg@10"], s.history_length).items()
                } if "ndcg@10" in s.metrics else {},
                "validation": s.validation,
                "seconds": {k: round(v, 1) for k, v in s.seconds.items()},
                "notes": s.notes,
                "extra": s.extra,
            }
        base = self.system("liverec")
        if base is not None:
            out["paired_tests"] = {}
            for s in self.systems:
                if s is base or s.users != base.users:
                    continue
                tests = {}
                for name in ("ndcg@10", "recall@10"):
                    t = paired_test(base.metrics[name], s.metrics[name], seed=seed)
                    tests[name] = {"liverec": _r(t.mean_a), s.system: _r(t.mean_b), "difference": _r(t.difference),
                                   "ci95": [_r(t.ci_low), _r(t.ci_high)], "relative": _r(t.relative),
                                   "p_value": _r(t.p_value)}
                out["paired_tests"][f"liverec vs {s.system}"] = tests
        if self.replay:
            out["replay"] = replay_summary(self.replay, seed)
        return out


def replay_summary(runs: list[ReplayResult], seed: int = 0) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for run in runs:
        low, high = bootstrap_ci(run.hits, seed=seed)
        summary[run.mode] = {"events": int(run.hits.size), "hr@10": _r(float(run.hits.mean()) if run.hits.size else 0),
                             "hr@10_ci95": [_r(low), _r(high)],
                             "ndcg@10": _r(float(run.ndcg.mean()) if run.ndcg.size else 0),
                             "trainings": run.trainings, "seconds": round(run.seconds, 1)}
        if run.known_user.size == run.hits.size:
            summary[run.mode]["by_user"] = {
                group: {"events": int(mask.sum()), "hr@10": _r(float(run.hits[mask].mean()) if mask.any() else 0)}
                for group, mask in (("known at the last training", run.known_user),
                                    ("new since the last training", ~run.known_user))
            }
    modes = {r.mode: r for r in runs}
    for a, b in REPLAY_COMPARISONS:
        if a in modes and b in modes and modes[a].hits.size == modes[b].hits.size:
            t = paired_test(modes[a].hits, modes[b].hits, seed=seed)
            summary[f"{a} vs {b}"] = {"difference": _r(t.difference), "ci95": [_r(t.ci_low), _r(t.ci_high)],
                                      "relative": _r(t.relative), "p_value": _r(t.p_value)}
    return summary


# What real time adds in all; what it adds beyond a live seen-filter; what the filter alone adds.
REPLAY_COMPARISONS = (("realtime", "frozen"), ("realtime", "frozen+seen"), ("frozen+seen", "frozen"))


def _r(x: float) -> float:
    return round(float(x), 5)
