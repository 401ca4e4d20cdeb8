"""Background retraining: one job at a time, on demand or on a schedule.

``Engine.train`` fits on a copy of the log and swaps the new snapshot in with one reference
assignment, so requests keep being served (by the old snapshot) for the whole run.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from liverec.core.errors import ConflictError
from liverec.engine import Engine

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


class Trainer:
    """Runs ``engine.train`` in a background thread; refuses a second run while one is going."""

    def __init__(
        self,
        engine: Engine,
        interval: float | None = None,
        on_finish: Callable[[TrainJob], None] | None = None,
    ) -> None:
        self.engine = engine
        self.on_finish = on_finish
        self._lock = threading.Lock()
        self._job: TrainJob | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
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
        self._stop.set()

    def _run(self, job: TrainJob) -> None:
        t0 = time.perf_counter()
        try:
            report = self.engine.train()
            done = replace(job, status="succeeded", model_version=report.version)
            gc.collect()
            gc.freeze()  # the new snapshot and states are long-lived too (see app._warm_then_freeze)
        except Exception as exc:  # reported on the job (and logged), never lost in a thread
            log.exception("training job %s failed", job.job_id)
            done = replace(job, status="failed", error=str(exc))
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
