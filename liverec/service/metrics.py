"""Prometheus metrics, one registry per app (no process globals, so tests can run many apps).

Request latency per route template, events ingested, group-commit sizes, live state size,
model version, training runs, overload refusals, and per-variant CTR with its interval.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from liverec.service.timeline import Timeline

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Callback(Collector):
    """Gauges read at scrape time from the live objects."""

    def __init__(self, collect: Callable[[], Iterator[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterator[Metric]:
        yield from self._collect()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = Histogram(
            "liverec_request_seconds", "Request latency by route", ["method", "route", "status"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.events_received = Counter("liverec_events_received", "Events received in POST /events", registry=r)
        self.events_stored = Counter("liverec_events_ingested", "Events durably stored (new)", registry=r)
        self.commit_seconds = Histogram(
            "liverec_commit_seconds", "Group commit duration (store + fsync + state update)",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.commit_requests = Histogram(
            "liverec_commit_group_requests", "Requests sharing one durable commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r,
        )
        self.items_upserted = Counter("liverec_items_upserted", "Items upserted", registry=r)
        self.overloaded = Counter("liverec_overload_refusals", "Requests refused with 503 under load",
                                  ["reason"], registry=r)
        self.generation = Counter("liverec_generation", "Texts of the language-model stage by use "
                                  "(summary, explain, copy) and outcome (generated, cached, template, rejected, "
                                  "timeout, error, breaker_open, busy)", ["use", "outcome"], registry=r)
        self.train_runs = Counter("liverec_train_runs", "Training runs finished", ["status"], registry=r)
        self.train_seconds = Gauge("liverec_last_train_seconds", "Duration of the last training run", registry=r)
        self.recommendations = Counter("liverec_recommendations", "Recommendation lists served", ["variant"],
                                       registry=r)
        self._gauges: _Callback | None = None
        self.timeline = Timeline()  # the last hour in windows, for the operator view (GET /stats)

    def add_gauges(self, collect: Callable[[], Iterator[Metric]]) -> None:
        """Read ``collect`` at each scrape; it replaces the previous one, so an app can start again."""
        if self._gauges is not None:
            self.registry.unregister(self._gauges)
        self._gauges = _Callback(collect)
        self.registry.register(self._gauges)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def gauge(name: str, doc: str, value: float, labels: dict[str, Any] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels or {}))
    family.add_metric([str(v) for v in (labels or {}).values()], value)
    return family
