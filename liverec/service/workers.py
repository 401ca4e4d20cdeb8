"""Several API worker processes on one port: ``liverec serve --workers N``.

The parent binds the listening socket once and starts ``N`` workers (spawned, never forked: a
fork would copy live threads' locks), each a whole service of its own: it opens the store, the
state store and the models itself, and the kernel spreads connections among the processes
accepting on the shared socket. Nothing is shared in memory, so everything a request may read
after another worker's write lives in the shared stores: a store every process opens (SQLite on
one machine, PostgreSQL on several) and a shared state store (Redis); a single-process state
store (``memory://``) is refused. A worker that dies is started again (its acknowledged events
are in the store already); SIGTERM or Ctrl-C stops them all.

Several machines need no supervisor: run ``liverec serve`` on each with the same settings behind
any load balancer (docs/deployment.md).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from liverec.core.errors import InvalidInputError
from liverec.core.redact import redact
from liverec.storage import locate

__all__ = ["check_workers", "serve_workers"]

log = logging.getLogger("liverec.service")

RESTART_PAUSE = 1.0  # seconds before a worker that died is started again (a crash loop stays slow)


def check_workers(workers: int, store: str, state_store: str) -> None:
    """Refuse ``workers`` processes where they could not share what a request reads."""
    if workers < 1:
        raise InvalidInputError(f"--workers must be at least 1, got {workers}", field="workers", value=workers)
    if workers == 1:
        return
    if not locate(store).shared:
        raise InvalidInputError(
            f"--workers {workers} needs a store every worker opens; {redact(store)} lives in one process "
            "(use sqlite:///… on one machine or postgresql://…)", field="workers", value=workers)
    if state_store.split("://", 1)[0].lower() == "memory":
        raise InvalidInputError(
            f"--workers {workers} needs a state store the workers share (state_store = \"redis://…\"): with "
            f"{state_store} each worker would keep its own user states, and an event taken by one would not "
            "be seen by the next recommendation from another", field="state_store", value=state_store)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on (IPv6 when ``host`` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_workers(workers: int, host: str, port: int, worker: Callable[..., None], args: tuple[Any, ...],
                  on_ready: Callable[[], None] | None = None) -> int:
    """Run ``worker(*args, sock)`` in ``workers`` spawned processes sharing one socket on
    ``host:port`` until SIGTERM or SIGINT; restart any that dies. Returns the exit code."""
    context = multiprocessing.get_context("spawn")
    sock = bind(host, port)
    stopping = threading.Event()
    processes: dict[int, BaseProcess] = {}

    def start(slot: int) -> None:
        process = context.Process(target=worker, args=(*args, sock), name=f"liverec-worker-{slot}")
        process.start()
        processes[slot] = process
        log.info("worker %d started (pid %s)", slot, process.pid)

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for slot in range(workers):
            start(slot)
        if on_ready is not None:
            on_ready()
        while not stopping.wait(0.2):
            for slot, process in list(processes.items()):
                if not process.is_alive() and not stopping.is_set():
                    log.warning("worker %d (pid %s) ended with exit code %s; starting it again", slot, process.pid,
                                process.exitcode)
                    stopping.wait(RESTART_PAUSE)
                    if not stopping.is_set():
                        start(slot)
    finally:
        for process in processes.values():
            if process.is_alive():
                process.terminate()  # uvicorn's graceful shutdown: requests in flight finish
        deadline = time.monotonic() + 15
        for process in processes.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def worker_main(config: Path | None, overrides: dict[str, Any], generation: dict[str, Any],
                sock: socket.socket) -> None:
    """One worker: the service ``liverec serve`` builds (``generation`` over the file's ``[generation]``),
    served on the parent's socket."""
    from dataclasses import replace

    import uvicorn

    from liverec.service.app import build_services, close_services, create_app
    from liverec.service.server import uvicorn_options
    from liverec.service.settings import load_settings

    logging.basicConfig(level=logging.WARNING)
    settings = load_settings(config, overrides=overrides)
    if generation:
        settings = replace(settings, generation={**settings.generation, **generation})
    services = build_services(settings)
    try:
        app = create_app(services=services)
        options = uvicorn_options(settings, lambda: services.metrics.overloaded.labels("backlog").inc())
        del options["host"], options["port"]
        uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])
    finally:
        close_services(services, engine=True)
