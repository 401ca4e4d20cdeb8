"""``create_app(settings)``: the FastAPI application, with nothing held in module globals.

>>> from liverec.service.settings import ServiceSettings
>>> app = create_app(ServiceSettings(store="memory://"))   # the engine opens at startup
>>> sorted(p for p in app.openapi()["paths"] if p.startswith("/users"))[:2]
['/users/{user_id}', '/users/{user_id}/interests']
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic.json_schema import models_json_schema
from threadpoolctl import threadpool_limits

import liverec
from liverec.core.errors import InvalidInputError
from liverec.engine import Engine
from liverec.experiments import Experiment, variant_stats
from liverec.generation.stage import Narrator
from liverec.service.deps import PUBLIC_PATHS, Services, authenticate_scope
from liverec.service.errors import install_error_handlers
from liverec.service.fastpath import FastRecommendations
from liverec.service.ingest import CommitStats, Committer
from liverec.service.jobs import Syncer, Trainer, TrainJob
from liverec.service.limits import Guard
from liverec.service.metrics import Metrics, gauge
from liverec.service.privacy import Pseudonymizer
from liverec.service.routes import admin, docs, events, feedback, items, page, reports, search, session, system, users
from liverec.service.routes._body import REF
from liverec.service.schemas import EventBatch, EventIn, ItemBatch
from liverec.service.sessions import Sessions
from liverec.service.settings import ServiceSettings
from liverec.storage import KeyStore, Store, open_store

log = logging.getLogger("liverec.service")
SWITCH_INTERVAL = 0.001  # seconds a thread may hold the GIL while another waits (CPython's default: 0.005)


def _override(setting: str | None) -> Path | None:
    """A file setting as the path that overrides the store's default side file, if set."""
    return Path(setting) if setting else None


def open_keys(settings: ServiceSettings, store: Store) -> KeyStore:
    """The key store the service checks keys against: ``keys_file`` if set, else the store's own."""
    return store.key_store(_override(settings.keys_file))


def check_exposure(settings: ServiceSettings, keys: KeyStore) -> None:
    """Refuse to listen beyond this machine without API keys (an open recommender leaks what users
    did), or without TLS in front (keys and user data would cross the network in clear text)."""
    if settings.loopback:
        return
    if len(keys) == 0:
        raise InvalidInputError(
            f"refusing to listen on {settings.host} without API keys; create one with "
            "`liverec keys create --scope admin` or bind to 127.0.0.1",
            field="host",
            value=settings.host,
        )
    if not settings.tls_cert and not settings.behind_proxy:
        raise InvalidInputError(
            f"refusing to listen on {settings.host} without TLS: API keys and user data would cross the network "
            "in clear text; give --tls-cert and --tls-key, or --behind-proxy if a proxy in front terminates TLS",
            field="tls_cert")


def build_services(settings: ServiceSettings, engine: Engine | None = None, metrics: Metrics | None = None) -> Services:
    """Open (or adopt) the engine and everything around it; the order matters for errors.

    The key store and the feedback log are the engine's store's, or in the files ``keys_file``
    and ``feedback_file`` name.
    """
    with ExitStack() as opened:  # closed again if a later step fails
        if engine is None:
            store = open_store(settings.store)
            opened.callback(store.close)
        else:
            store = engine.store
        keys = open_keys(settings, store)
        opened.callback(keys.close)
        check_exposure(settings, keys)  # before the engine loads its models, so a refusal is quick
        pseudonyms = Pseudonymizer(settings.user_id_secret)
        experiment = (
            Experiment.from_config(settings.variants, salt=settings.experiment_salt)
            if settings.variants else Experiment.single()
        )
        feedback = store.feedback_log(_override(settings.feedback_file))
        opened.callback(feedback.close)
        if engine is None:
            engine = Engine(store, settings.engine_settings)
        opened.pop_all()  # from here on, close_services closes them
    metrics = metrics or Metrics()
    narrator = open_narrator(settings, engine, metrics)

    def on_commit(stats: CommitStats) -> None:
        metrics.events_stored.inc(stats.stored)
        metrics.timeline.events(stats.stored)
        metrics.commit_seconds.observe(stats.seconds)
        metrics.commit_requests.observe(stats.requests)

    def on_train(job: TrainJob) -> None:
        metrics.train_runs.labels(job.status).inc()
        if job.seconds is not None:
            metrics.train_seconds.set(job.seconds)

    services = Services(
        settings=settings,
        engine=engine,
        keys=keys,
        pseudonyms=pseudonyms,
        experiment=experiment,
        feedback=feedback,
        committer=Committer(engine, settings.max_pending_events, on_commit),
        trainer=Trainer(engine, settings.retrain_interval, on_train),
        syncer=Syncer(engine, settings.sync_interval, on_erased=narrator.forget_all),
        metrics=metrics,
        sessions=Sessions(settings.session_hours * 3600),
        narrator=narrator,
    )
    metrics.add_gauges(lambda: _live_gauges(services))
    # Rebuild user states in the background, so the first requests after a start do not each pay
    # for their own rebuild (measured on the demo world: ~7 ms per user; 400 users in 2.8 s).
    threading.Thread(target=_warm_then_freeze, args=(engine, services.warmed), name="liverec-warm",
                     daemon=True).start()
    return services


def open_narrator(settings: ServiceSettings, engine: Engine, metrics: Metrics) -> Narrator:
    """The language-model stage: its model loaded now (a missing file or package stops the start
    with one line), its outcomes counted in ``liverec_generation_total``."""
    generation = settings.generation_settings
    return Narrator(engine, generation.open(), generation,
                    on_outcome=lambda use, outcome: metrics.generation.labels(use, outcome).inc())


def _warm_then_freeze(engine: Engine, warmed: threading.Event) -> None:
    """Rebuild user states, then move every object alive now out of the garbage collector's sight.

    The engine's catalog, models and states are hundreds of thousands of long-lived objects that
    every full collection would walk again (measured on the demo world: 0.7 ms of every
    recommendation's 5 ms went to collections). Frozen objects are still freed when unreferenced;
    they are only not scanned for cycles, which they do not form.
    """
    try:
        engine.warm_states()
        gc.collect()
        gc.freeze()
    finally:
        warmed.set()



def _live_gauges(services: Services) -> Iterator[Metric]:
    engine = services.engine
    snapshot = engine.snapshot
    yield gauge("liverec_user_states", "Users with a live state in memory", len(engine.states))
    yield gauge("liverec_catalog_items", "Items in the catalog", len(engine.items))
    yield gauge("liverec_commit_queue_events", "Events waiting for a group commit", services.committer.pending_events)
    cleaning = CounterMetricFamily("liverec_cleaning_events", "Events this process screened at ingest, by the "
                                   "cleaning rule that decided them (learned: none)", labels=["rule"])
    for rule, count in engine.cleaning.snapshot_counts().items():
        cleaning.add_metric([rule], count)
    yield cleaning
    view = engine.cleaning.view
    held = GaugeMetricFamily("liverec_quarantined", "Users and events kept from learning", labels=["kind"])
    held.add_metric(["user"], len(view.users))
    held.add_metric(["event"], len(view.events))
    yield held
    version = snapshot.version if snapshot is not None else "none"
    yield gauge("liverec_model_info", "The model snapshot being served", 1, {"version": version})
    yield gauge("liverec_model_version", "Number of the snapshot being served (0: none)",
                int(version.lstrip("v")) if version != "none" else 0)
    for s in variant_stats(services.feedback.counts(), services.experiment.control.name):
        labels = {"variant": s.name}
        yield gauge("liverec_variant_impressions", "Impressions reported per variant", s.impressions, labels)
        yield gauge("liverec_variant_clicks", "Clicks reported per variant", s.clicks, labels)
        yield gauge("liverec_variant_ctr", "Click-through rate per variant", s.ctr, labels)
        yield gauge("liverec_variant_ctr_ci_low", "Lower end of the CTR's 95% Wilson interval", s.ci_low, labels)
        yield gauge("liverec_variant_ctr_ci_high", "Upper end of the CTR's 95% Wilson interval", s.ci_high, labels)


def close_services(services: Services, engine: bool = False) -> None:
    """Stop the background work and close what ``build_services`` opened (the engine too, if
    ``engine``). Safe to call twice: ``liverec serve`` calls it again after the server returns."""
    if services.closed:
        return
    services.closed = True
    services.syncer.close()
    services.trainer.close()
    services.committer.close()
    services.ranking.shutdown()
    services.workers.shutdown()
    services.feedback.close()
    services.keys.close()
    services.narrator.close()
    if engine:
        services.engine.close()


def create_app(
    settings: ServiceSettings | None = None,
    *,
    engine: Engine | None = None,
    on_ready: Callable[[], None] | None = None,
    services: Services | None = None,
) -> FastAPI:
    """The service. ``engine`` adopts an engine already open (tests); it is then not closed at
    shutdown. Everything is opened at startup, in the lifespan, unless ``services`` (from
    :func:`build_services`, which the app then owns and closes) were opened before, as ``liverec
    serve`` does so that a failure to open is one line, not a server's traceback; ``on_ready``
    runs after that."""
    settings = services.settings if services is not None else settings or ServiceSettings()
    owns_engine = engine is None
    metrics = services.metrics if services is not None else Metrics()
    prepared = services

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in anyio's thread pool; size it to what the load shedder lets in.
        anyio.to_thread.current_default_thread_limiter().total_tokens = max(40, settings.max_inflight)
        # One BLAS thread per request, as faiss in models/content.py: OpenBLAS's own threads only
        # spin and contend with the request workers (measured on 2 cores: recommend 21 ms → 5 ms).
        blas = threadpool_limits(limits=1, user_api="blas")
        # Recommendations run on the event loop and hold the GIL for milliseconds; the committer
        # thread, which acknowledges events, should not wait the default 5 ms for each turn.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        services = prepared or build_services(settings, engine, metrics)
        app.state.services = services
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            close_services(services, engine=owns_engine)
            blas.restore_original_limits()
            sys.setswitchinterval(switch)

    app = FastAPI(
        title="liverec",
        version=liverec.__version__,
        description="A real-time, language-aware recommender. Errors: `{\"error\": {code, message, field}}`.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load their scripts from a CDN; routes.docs serves them offline
        redoc_url=None,
    )
    install_error_handlers(app)
    for module in (events, items, users, search, feedback, admin, system, docs, page, session, reports):
        app.include_router(module.router)
    docs.mount_assets(app)
    page.mount_assets(app)
    app.add_middleware(FastRecommendations)  # inside Guard: shedding, request ids and metrics apply to it too
    app.add_middleware(Guard, max_inflight=settings.max_inflight, max_body_bytes=settings.max_body_bytes,
                       metrics=metrics, max_queue_ms=settings.max_queue_ms, body_timeout=settings.body_timeout,
                       hosts=settings.hosts, auth=authenticate_scope,
                       public=PUBLIC_PATHS | docs.PUBLIC_PATHS | page.PUBLIC_PATHS | session.PUBLIC_PATHS,
                       unshed=docs.PUBLIC_PATHS | page.PUBLIC_PATHS)
    app.openapi = lambda: _openapi(app, settings.max_batch)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, max_batch: int) -> dict[str, Any]:
    """FastAPI's schema plus the component schemas of the bodies parsed by hand (events, items),
    whose batches hold at most ``max_batch`` rows, as this service is configured."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        _, defs = models_json_schema([(m, "validation") for m in (EventIn, EventBatch, ItemBatch)],
                                     ref_template=REF)
        for name, rows in (("EventBatch", "events"), ("ItemBatch", "items")):
            defs["$defs"][name]["properties"][rows]["maxItems"] = max_batch
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        app.openapi_schema = schema
    return app.openapi_schema
