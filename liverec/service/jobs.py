"""Background retraining: one job at a time, on demand or on a schedule.

Requests keep being served by the old snapshot for the whole run, and the new one is swapped in
with one reference assignment. A store that lives in files is trained in a child process at a
lower CPU priority, which opens the store itself, writes the snapshot and exits; the service then
adopts the snapshot (:meth:`Engine.adopt`). Training's Python work (validation scoring, fusion
tuning, co-visitation counts) then never holds the serving process's GIL: on the demo world at 200
requests/s, p99 during a retrain fell from 1.6-2.2 s (a thread) to ~45 ms (benchmarks/serve_load.py).
A ``memory://`` store exists only in this process, so it trains here.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Literal

from liverec.core.errors import ConflictError, LiveRecError, StorageError
from liverec.core.redact import redact
from liverec.core.settings import Settings
from liverec.engine import Engine
from liverec.storage import open_store
from liverec.storage.locks import exclusive

log = logging.getLogger("liverec.service")

Trigger = Literal["api", "schedule"]


@dataclass(frozen=True)
class TrainJob:
    job_id: str
    status: Literal["running", "succeeded", "failed"]
    trigger: Trigger
    started: float
    finished: float | None = None
    model_version: str | None = None
    seconds: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Syncer:
    """Every ``interval`` seconds, and at once when the store announces a change (a store shared
    by workers, such as PostgreSQL, does), takes in what another process changed in the engine's
    store (:meth:`Engine.sync`: erasures, items, a newer snapshot) on a daemon thread, until closed."""

    def __init__(self, engine: Engine, interval: float,
                 on_erased: Callable[[list[str]], None] | None = None) -> None:
        self.engine = engine
        self.on_erased = on_erased  # what else holds those users (the generated texts) drops them too
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._every, args=(interval,), name="liverec-sync", daemon=True)
        self._thread.start()

    def _every(self, interval: float) -> None:
        # A store that announces changes wakes the loop early; any other is looked at every interval.
        wait: Callable[[float], object] = getattr(self.engine.store, "wait_for_change", self._stop.wait)
        while not self._stop.is_set():
            try:
                wait(interval)
            except Exception:  # a closed store: the loop ends below, or the next wait retries
                self._stop.wait(interval)
            if self._stop.is_set():
                return
            try:
                synced = self.engine.sync()
            except Exception:  # a closed or failing store: say so, keep the service up, try again
                log.exception("taking in what other processes changed in the store failed")
                continue
            if synced.erased:
                if self.on_erased is not None:
                    self.on_erased(synced.erased)
                log.info("applied %d erasure(s) made by another process", len(synced.erased))
            if synced.items:
                log.info("took in %d item change(s) made by another process", synced.items)
            if synced.adopted:
                log.info("adopted snapshot %s trained by another process", synced.adopted)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Trainer:
    """Runs ``engine.train`` in a background thread; refuses a second run while one is going."""

    def __init__(
        self,
        engine: Engine,
        interval: float | None = None,
        on_finish: Callable[[TrainJob], None] | None = None,
        *,
        in_child: bool | None = None,
    ) -> None:
        self.engine = engine
        # Default: a child process wherever it can open the store itself (anything but memory://).
        self.in_child = engine.store.location.shared if in_child is None else in_child
        self.on_finish = on_finish
        self._lock = threading.Lock()
        self._job: TrainJob | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._child: BaseProcess | None = None
        self._schedule: threading.Thread | None = None
        if interval is not None:
            self._schedule = threading.Thread(target=self._every, args=(interval,), name="liverec-retrain", daemon=True)
            self._schedule.start()

    @property
    def last(self) -> TrainJob | None:
        return self._job

    def start(self, trigger: Trigger = "api") -> TrainJob:
        """Start a training run; ConflictError when one is already running."""
        with self._lock:
            if self._job is not None and self._job.status == "running":
                raise ConflictError(f"training job {self._job.job_id} is already running")
            # Another worker's training holds the store-wide lock: say so now (409), not as a failed
            # job. The training itself takes the lock too, so two that pass this check at once still
            # cannot both run.
            with exclusive(self.engine.store, self.engine.model_dir, "training"):
                pass
            job = TrainJob(uuid.uuid4().hex[:12], "running", trigger, time.time())
            self._job = job
            self._thread = threading.Thread(target=self._run, args=(job,), name="liverec-train", daemon=True)
            self._thread.start()
        return job

    def wait(self, timeout: float | None = None) -> TrainJob | None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._job

    def close(self) -> None:
        """Stop the schedule and a training process still running (its snapshot is not written)."""
        self._stop.set()
        child = self._child
        if child is not None and child.is_alive():
            child.terminate()

    def _started(self, child: BaseProcess) -> None:
        self._child = child

    def _run(self, job: TrainJob) -> None:
        t0 = time.perf_counter()
        try:
            if self.in_child:
                version = train_in_child(self.engine, started=self._started)
                self.engine.adopt(version)
            else:
                version = self.engine.train().version
            done = replace(job, status="succeeded", model_version=version)
            gc.collect()
            gc.freeze()  # the new snapshot and states are long-lived too (see app._warm_then_freeze)
        except Exception as exc:  # reported on the job (and logged), never lost in a thread
            log.exception("training job %s failed", job.job_id)
            done = replace(job, status="failed", error=public_message(exc))
        done = replace(done, finished=time.time(), seconds=round(time.perf_counter() - t0, 3))
        with self._lock:
            self._job = done
        if self.on_finish is not None:
            self.on_finish(done)

    def _every(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.start("schedule")
            except ConflictError:
                continue  # the previous run is still going; the next tick tries again


class TrainingFailed(Exception):
    """What went wrong in the training process, by its message (its own exception may not unpickle)."""


def public_message(exc: Exception) -> str:
    """What ``GET /admin/train`` says of a failed run: a liverec error's own words (they name the
    problem: too few events, a bad setting), else only the kind of failure. A storage or other
    error's text may hold paths, URLs or data; it goes to the server log, not to API callers."""
    if isinstance(exc, TrainingFailed):
        return str(exc)  # already made public by the training process
    if isinstance(exc, LiveRecError) and not isinstance(exc, StorageError):
        return redact(str(exc))
    return f"training failed ({type(exc).__name__}); the details are in the server log"


def train_in_child(engine: Engine, started: Callable[[BaseProcess], None] = lambda _: None) -> str:
    """Train ``engine``'s store in a fresh (spawned) process; return the snapshot version it wrote.

    The child opens the same store URL with the same settings, so it writes to the same model
    directory, and runs at a lower CPU priority than the service. It is a daemon: it dies with
    the service rather than keep it from exiting. ``started`` receives the process (to stop it).
    """
    context = multiprocessing.get_context("spawn")  # never fork a process with live threads
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_train, args=(send, engine.store.url, engine.settings),
                            name="liverec-train", daemon=True)
    child.start()
    send.close()  # so that recv() below sees the end of the pipe if the child dies
    started(child)
    try:
        outcome, detail = receive.recv()
    except EOFError:
        outcome, detail = "error", None
    finally:
        receive.close()
        child.join()
    if outcome != "ok":
        raise TrainingFailed(detail or f"the training process ended with exit code {child.exitcode}")
    return str(detail)


def _train(result: Connection, url: str, settings: Settings) -> None:
    os.nice(10)
    try:
        with Engine(open_store(url), settings) as engine:
            version = engine.train().version
    except Exception as exc:
        log.exception("training in the child process failed")
        result.send(("error", public_message(exc)))
    else:
        result.send(("ok", version))
    finally:
        result.close()
