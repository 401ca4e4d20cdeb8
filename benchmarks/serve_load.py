"""Load test of ``liverec serve`` over loopback: open-loop latency, bulk ingest, retrain under load.

Builds the demo world (seed 7) in a temporary SQLite store and trains it (in a child process),
starts the real server (``liverec serve``) as a subprocess and drives it from this process with
an open-loop generator: request ``i`` is due at ``t0 + i / rate`` and its latency is measured
from that due time, so time spent queueing anywhere — in the generator, the connection pool,
the kernel or the server — counts (no coordinated omission). Latency is client-side and
includes the client's own per-request cost.

The generator (asyncio + uvloop, a minimal HTTP/1.1 keep-alive client, a pool of
``--connections``; httpx only for the admin calls) shares the machine's cores with the server.
Its lag (how late each request was issued after its due time), the CPU time of the server, of
the generator and of every other process on the machine are reported beside every phase, so a
generator that could not keep up, or a machine busy with something else, is visible rather
than hidden. So is what the server measured itself (``/metrics``: latency per route, group
commits), which tells queueing outside the app from time inside it.

Phases, in order (later ones see the events of earlier ones):

* ``events`` — single ``POST /events`` (view/click, unique ids) at ``--rate``; p99 ≤ 15 ms.
* ``recs`` — ``GET /users/{id}/recommendations?k=10`` over demo users at ``--rate``; p99 ≤ 25 ms.
* ``mixed`` — both at once, half the rate each.
* ``retrain`` — ``POST /admin/train`` while the mixed load runs at ``--rate``; no request may
  fail while it trains. Runs until the job has finished (and a few seconds after the swap).
* ``burst`` — ``--burst`` (400) recommendation requests at the same instant on as many open
  connections, for k=10 and k=50: each answer must be a 200 within the recommendation target or
  a 503 with ``Retry-After`` within 50 ms (the service sheds what would wait longer than
  ``max_queue_ms``); the server's RSS must settle within 10% of where it was.
* ``bulk`` — batches of ``--bulk-batch`` events (prebuilt JSON: the demo world's events replayed
  with fresh ids) from ``--bulk-clients`` closed-loop clients for ``--bulk-duration`` s, or until
  the prebuilt batches run out; ≥ 20,000 events/s acknowledged (durable). Last: it grows the log.

Prints JSON and markdown tables (and writes both under benchmarks/results/). Asserts nothing.
The server is stopped at the end, on error and on Ctrl-C.

    python benchmarks/serve_load.py [--duration 20] [--rate 200] [--quick] [--reuse DIR]

``--reuse DIR`` keeps the trained store in ``DIR`` (built there on the first run) and runs each
time on a fresh copy of it, so runs start from the same log.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import math
import multiprocessing
import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import httpx  # noqa: E402
import orjson  # noqa: E402

DB = "bench.db"
PHASES = ("events", "recs", "mixed", "retrain", "burst", "bulk")
TARGETS = {"events_p99_ms": 15.0, "recs_p99_ms": 25.0, "bulk_events_per_s": 20_000, "retrain_errors": 0,
           "burst_refusal_ms": 50.0, "burst_rss_growth": 0.10}
JSON_HEADERS = {"content-type": "application/json"}
Request = tuple[str, str, bytes | None]  # method, path, body


# ---------------------------------------------------------------------------- the store


def _store_url(root: Path) -> str:
    return f"sqlite:///{root.resolve() / DB}"  # an absolute path: four slashes


def _build_store(url: str, seed: int) -> None:
    """Ingest and train the demo world; runs in a child process so torch never shares the generator's."""
    from liverec.datasets.demo import REFERENCE_TIME, build_demo_world
    from liverec.engine import Engine

    # A fixed clock: the workload rebuilds this world later (or days later, with --reuse), and an
    # event id sent again with another time is a conflict.
    world = build_demo_world(seed=seed, now=REFERENCE_TIME)
    with Engine.open(url) as engine:
        engine.ingest_items(world.items)
        for start in range(0, len(world.events), 5000):
            engine.ingest_events(world.events[start : start + 5000])
        engine.train()


def prepare_postgres(workdir: Path, postgres: str, seed: int) -> tuple[str, str, float]:
    """The demo world trained into a fresh schema ``bench_serve_load`` of ``postgres`` (its snapshots in
    ``workdir``); built every run, since a schema is not copied as cheaply as a file."""
    import psycopg

    t = time.perf_counter()
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_serve_load CASCADE")
    url = f"{postgres}?schema=bench_serve_load&snapshots={workdir / 'snapshots'}"
    proc = multiprocessing.get_context("spawn").Process(target=_build_store, args=(url, seed))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"building the demo store in PostgreSQL failed (exit code {proc.exitcode})")
    return url, "built", time.perf_counter() - t


def prepare_store(workdir: Path, reuse: Path | None, seed: int) -> tuple[Path, str, float]:
    """A trained store in ``workdir/store``: built, or copied from ``reuse`` (built there first if absent)."""
    t = time.perf_counter()
    target = workdir / "store"
    how = "reused"
    if reuse is None or not (reuse / DB).exists():
        source = target if reuse is None else reuse
        source.mkdir(parents=True, exist_ok=True)
        proc = multiprocessing.get_context("spawn").Process(target=_build_store, args=(_store_url(source), seed))
        proc.start()
        try:
            proc.join()
        finally:
            if proc.is_alive():
                proc.terminate()
                proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"building the demo store failed (exit code {proc.exitcode})")
        how = "built"
    if reuse is not None:
        shutil.copytree(reuse, target)
    return target, how, time.perf_counter() - t


@dataclass
class Workload:
    users: list[str]
    items: list[str]
    events: list[dict[str, Any]]  # the world's events as JSON rows, for bulk batches


def workload(seed: int) -> Workload:
    from liverec.datasets.demo import REFERENCE_TIME, build_demo_world

    world = build_demo_world(seed=seed, now=REFERENCE_TIME)  # the clock the store was built with
    rows = [{k: v for k, v in e.to_dict().items() if v is not None} for e in world.events]
    return Workload([u.user_id for u in world.users], [i.item_id for i in world.items], rows)


# ---------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if this benchmark dies, so no server outlives it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Server:
    """``liverec serve`` as a subprocess, in its own session (Ctrl-C reaches us; we stop it)."""

    def __init__(self, store_url: str, log_path: Path, workers: int = 1, config: Path | None = None) -> None:
        self.store_url = store_url
        self.workers = workers
        self.config = config
        self.log_path = log_path
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 300.0) -> float:
        exe = Path(sys.executable).with_name("liverec")
        cmd = [str(exe) if exe.exists() else "liverec", "serve", "--store", self.store_url,
               "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
               *(["--config", str(self.config)] if self.config else [])]
        t = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        while time.perf_counter() - t < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2.0).status_code == 200:
                    if self.workers > 1:
                        self._settle(timeout - (time.perf_counter() - t))
                    return time.perf_counter() - t
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer /healthz within {timeout:.0f} s:\n{self.log_tail()}")

    def _settle(self, timeout: float) -> None:
        """One worker answering is not all of them: wait until the process tree is idle (every
        worker has loaded its models) for two seconds in a row."""
        deadline, quiet = time.perf_counter() + timeout, 0
        while time.perf_counter() < deadline and quiet < 2:
            before = _cpu_seconds(self.pid, tree=True)
            time.sleep(1.0)
            quiet = quiet + 1 if _cpu_seconds(self.pid, tree=True) - before < 0.2 else 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM (uvicorn's graceful shutdown: the committer drains), then SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``serve --workers N``: the supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(current := todo.pop())
        todo.extend(children.get(current, []))
    return found


def _cpu_seconds(pid: int, tree: bool = False) -> float:
    """utime + stime of a whole process (all threads), from /proc; with ``tree``, of its descendants too."""
    total = 0.0
    for member in _tree(pid) if tree else [pid]:
        fields = _stat(member)
        if fields is None:
            if member == pid:
                return float("nan")
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


# ---------------------------------------------------------------------------- the generator


@dataclass(slots=True)
class Shot:
    """One request: when it was due, when the generator issued it, when a connection took it, when
    its answer was complete (all ``time.perf_counter()``)."""

    kind: str
    due: float
    issued: float = 0.0
    start: float = 0.0
    end: float = 0.0
    status: int = 0
    error: str | None = None
    acknowledged: int = 0
    retry_after: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


class Connection:
    """A minimal HTTP/1.1 keep-alive client connection.

    httpx costs ~0.3 ms of CPU per request and its pool rescans every queued request whenever a
    connection frees up, so once the server falls behind, the generator — on the same 2 cores —
    falls further behind (measured: 59 s of generator lag at 200 req/s). This costs a few tens of
    microseconds per request and queues in an O(1) ``asyncio.Queue``.
    """

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        async with asyncio.timeout(self.timeout):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            assert self.reader is not None
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            if body is not None:
                head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            self.writer.write(head.encode() + b"\r\n")
            if body:
                self.writer.write(body)
            lines = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length, chunked, close = -1, False, False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    close = b"close" in value.lower()
            if chunked:
                content = await self._chunks()
            elif length >= 0:
                content = await self.reader.readexactly(length)
            else:
                content, close = await self.reader.read(), True
        if close:
            self.close()
        return status, content

    async def _chunks(self) -> bytes:
        assert self.reader is not None
        parts = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
        await self.reader.readuntil(b"\r\n")
        return b"".join(parts)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _send(conn: Connection, shot: Shot, request: Request, count_acks: bool = False) -> None:
    method, path, body = request
    shot.start = time.perf_counter()
    try:
        shot.status, content = await conn.request(method, path, body)
        if count_acks and shot.ok:
            shot.acknowledged = int(orjson.loads(content)["acknowledged"])
    except TimeoutError:
        shot.error = "timeout"
        conn.close()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        shot.error = "connection"
        conn.close()
    except Exception as exc:  # a benchmark counts every failure, whatever it is
        shot.error = type(exc).__name__
        conn.close()
    shot.end = time.perf_counter()


class Pool:
    """``size`` keep-alive connections, each a worker taking the oldest waiting request."""

    def __init__(self, url: str, size: int, timeout: float) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.queue: asyncio.Queue[tuple[Shot, Request] | None] = asyncio.Queue()
        self.conns = [Connection(host, int(port), timeout) for _ in range(size)]
        self.workers = [asyncio.create_task(self._work(c)) for c in self.conns]

    def submit(self, shot: Shot, request: Request) -> None:
        shot.issued = time.perf_counter()
        self.queue.put_nowait((shot, request))

    async def _work(self, conn: Connection) -> None:
        while (job := await self.queue.get()) is not None:
            await _send(conn, *job)
            self.queue.task_done()

    async def drain(self) -> None:
        """Until every submitted request has its answer (or its error)."""
        await self.queue.join()

    async def close(self) -> None:
        for _ in self.workers:
            self.queue.put_nowait(None)
        await asyncio.gather(*self.workers)
        for conn in self.conns:
            conn.close()


async def open_loop(
    pool: Pool,
    kind: str,
    rate: float,
    duration: float,
    make: Callable[[int], Request],
    stop: asyncio.Event | None = None,
) -> list[Shot]:
    """Request ``i`` due at ``t0 + i / rate`` whatever happened to the earlier ones; a late
    generator catches up in a burst rather than silently offering less load. Returns once every
    request has been answered."""
    shots: list[Shot] = []
    t0 = time.perf_counter() + 0.005
    i = 0
    while stop is None or not stop.is_set():
        due = t0 + i / rate
        if due - t0 >= duration:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        shot = Shot(kind, due)
        shots.append(shot)
        pool.submit(shot, make(i))
        i += 1
    await pool.drain()
    return shots


def event_maker(work: Workload, tag: str, seed: int) -> Callable[[int], Request]:
    rng = random.Random(seed)

    def make(i: int) -> Request:
        row = {"event_id": f"{tag}-{i}", "user_id": rng.choice(work.users),
               "type": "view" if rng.random() < 0.7 else "click", "item_id": rng.choice(work.items),
               "timestamp": time.time()}
        return "POST", "/events", orjson.dumps(row)

    return make


def recs_maker(work: Workload, seed: int) -> Callable[[int], Request]:
    rng = random.Random(seed)
    return lambda i: ("GET", f"/users/{rng.choice(work.users)}/recommendations?k=10", None)


def bulk_bodies(work: Workload, tag: str, batches: int, size: int) -> list[bytes]:
    """The world's events replayed in order with fresh ids, stamped just before now (in order)."""
    n = len(work.events)
    base = time.time() - batches * size * 1e-5 - 60.0
    out = []
    for b in range(batches):
        rows = []
        for k in range(size):
            g = b * size + k
            row = dict(work.events[g % n])
            row["event_id"] = f"{tag}-bulk-{b}-{k}"
            row["timestamp"] = round(base + g * 1e-5, 5)
            rows.append(row)
        out.append(orjson.dumps({"events": rows}))
    return out


# ---------------------------------------------------------------------------- figures


def _pct(sorted_ms: list[float], q: float) -> float | None:
    if not sorted_ms:
        return None
    return round(sorted_ms[min(len(sorted_ms) - 1, max(0, math.ceil(q * len(sorted_ms)) - 1))], 2)


def _errors(shots: list[Shot]) -> dict[str, Any]:
    non_2xx = Counter(str(s.status) for s in shots if s.error is None and not 200 <= s.status < 300)
    failed = Counter(s.error for s in shots if s.error is not None)
    return {"total": sum(non_2xx.values()) + sum(failed.values()), "non_2xx": dict(non_2xx),
            "timeout": failed.pop("timeout", 0), "connection": failed.pop("connection", 0), "other": dict(failed)}


def summarize(shots: list[Shot], offered_rate: float | None = None) -> dict[str, Any]:
    """Latency of the answered (2xx) requests from their due time; errors counted apart."""
    if not shots:
        return {"requests": 0}
    ok = [s for s in shots if s.ok]
    # From the due time, or from the issue if the timer woke up early (uvloop's are 1 ms coarse).
    latency = sorted((s.end - min(s.due, s.issued)) * 1000 for s in ok)
    lag = sorted(max(0.0, s.issued - s.due) * 1000 for s in shots)
    waited = sorted((s.start - s.issued) * 1000 for s in shots)
    wall = max(s.end for s in shots) - min(s.due for s in shots)
    return {
        "requests": len(shots),
        "ok": len(ok),
        "offered_per_s": offered_rate,
        "answered_per_s": round(len(ok) / wall, 1) if wall > 0 else None,
        "p50_ms": _pct(latency, 0.50),
        "p90_ms": _pct(latency, 0.90),
        "p99_ms": _pct(latency, 0.99),
        "max_ms": round(latency[-1], 2) if latency else None,
        "generator_lag_ms": {"p50": _pct(lag, 0.50), "p99": _pct(lag, 0.99), "max": _pct(lag, 1.0)},
        "waited_for_connection_ms": {"p50": _pct(waited, 0.50), "p99": _pct(waited, 0.99), "max": _pct(waited, 1.0)},
        "errors": _errors(shots),
        "timeline": timeline(shots),
    }


def timeline(shots: list[Shot]) -> list[dict[str, Any]]:
    """Per second of due time: answered, refused or failed, and the slowest answer — where a stall
    (a rebuild, a collection, a lock) shows as one bad second rather than a blurred p99."""
    t0 = min(s.due for s in shots)
    seconds: dict[int, list[Shot]] = {}
    for s in shots:
        seconds.setdefault(int(s.due - t0), []).append(s)
    return [{"second": n, "ok": sum(s.ok for s in group), "not_ok": sum(not s.ok for s in group),
             "max_ms": round(max((s.end - min(s.due, s.issued)) * 1000 for s in group), 1)}
            for n, group in sorted(seconds.items())]


def _machine_busy_seconds() -> float:
    """CPU seconds spent busy on all cores since boot (everything but idle and iowait), from /proc/stat."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return float("nan")
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time over a phase, as % of one core: the server, this generator, and everything else on
    the machine (other people's tests share these cores too, and are reported rather than hidden)."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.t = time.perf_counter()
        self.server = _cpu_seconds(server_pid, tree=True)
        self.me = _cpu_seconds(os.getpid())
        self.machine = _machine_busy_seconds()

    def read(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.t
        server = _cpu_seconds(self.pid, tree=True) - self.server
        me = _cpu_seconds(os.getpid()) - self.me
        machine = _machine_busy_seconds() - self.machine
        return {"wall_s": round(wall, 2),
                "server_cpu_pct": round(100 * server / wall, 1),
                "generator_cpu_pct": round(100 * me / wall, 1),
                "other_cpu_pct": round(100 * max(0.0, machine - server - me) / wall, 1),
                "machine_cores": os.cpu_count() or 0}


async def scrape(url: str) -> dict[str, float]:
    """The server's Prometheus series, ``name{labels}`` → value (counters and histogram parts)."""
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        text = (await client.get("/metrics")).text
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                continue
    return out


def _labels(key: str) -> dict[str, str]:
    inner = key[key.index("{") + 1 : key.rindex("}")] if "{" in key else ""
    return {k: v.strip('"') for k, _, v in (part.partition("=") for part in inner.split(",") if part)}


def _bucket_quantile(delta: dict[str, float], name: str, q: float) -> float | None:
    """Upper bound (ms) of the histogram bucket holding quantile ``q``: the server's own view."""
    buckets = sorted((float(_labels(k)["le"]), v) for k, v in delta.items() if k.startswith(f"{name}_bucket"))
    total = buckets[-1][1] if buckets else 0
    for le, cumulative in buckets:
        if total and cumulative >= q * total:
            return le * 1000 if math.isfinite(le) else None
    return None


def server_side(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """What the server itself measured over a phase: its latency per route (from the ASGI
    middleware, so without the kernel's and uvicorn's queues), and its group commits."""
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    routes = {}
    for key, count in delta.items():
        if key.startswith("liverec_request_seconds_count") and count > 0:
            labels = _labels(key)
            if labels.get("route") in ("/metrics", "/healthz"):
                continue
            total = delta[key.replace("_count", "_sum", 1)]
            routes[f"{labels['method']} {labels['route']} {labels['status']}"] = {
                "requests": int(count), "mean_ms": round(1000 * total / count, 2)}
    commits = delta.get("liverec_commit_seconds_count", 0.0)
    return {
        "routes": routes,
        "group_commits": int(commits),
        "commit_mean_ms": round(1000 * delta["liverec_commit_seconds_sum"] / commits, 2) if commits else None,
        "commit_p50_ms_at_most": _bucket_quantile(delta, "liverec_commit_seconds", 0.5),
        "commit_p99_ms_at_most": _bucket_quantile(delta, "liverec_commit_seconds", 0.99),
        "requests_per_commit": round(delta["liverec_commit_group_requests_sum"] / commits, 2) if commits else None,
        "events_stored": int(delta.get("liverec_events_ingested_total", 0.0)),
    }


# ---------------------------------------------------------------------------- phases


async def warm_up(url: str, work: Workload) -> dict[str, Any]:
    """Every demo user's state live, as on a service that has been running: each user's first
    request rebuilds their state from the log (tens of ms each), which no phase should measure."""
    t = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        while not (await client.get("/healthz")).json().get("warm", True):  # the server's own rebuild first
            await asyncio.sleep(0.1)
    waited = round(time.perf_counter() - t, 2)
    pool = Pool(url, 8, 60.0)
    shots = [Shot("warm", t) for _ in work.users]
    for shot, user in zip(shots, work.users, strict=True):
        pool.submit(shot, ("GET", f"/users/{user}/recommendations?k=10", None))
    await pool.drain()
    await pool.close()
    return {"seconds": round(time.perf_counter() - t, 2), "server_warm_after_s": waited,
            "statuses": dict(Counter(s.error or str(s.status) for s in shots))}


async def _admin(url: str, method: str, path: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        response = await client.request(method, path)
        return response.status_code, response.json()


async def retrain_phase(
    url: str, pool: Pool, work: Workload, tag: str, rate: float, lead: float, cap: float
) -> dict[str, Any]:
    """Mixed load at ``rate``; after ``lead`` s start a training run, poll it, stop ``lead`` s after it ends."""
    stop = asyncio.Event()
    loads = [
        asyncio.create_task(open_loop(pool, "events", rate / 2, cap, event_maker(work, f"{tag}-rt", 4), stop)),
        asyncio.create_task(open_loop(pool, "recs", rate / 2, cap, recs_maker(work, 5), stop)),
    ]
    await asyncio.sleep(lead)
    before = (await _admin(url, "GET", "/healthz"))[1].get("model_version")
    t_start = time.perf_counter()
    status, job = await _admin(url, "POST", "/admin/train")
    polls = 0
    while status == 202 and time.perf_counter() - t_start < cap:
        await asyncio.sleep(0.5)
        job = (await _admin(url, "GET", "/admin/train"))[1]
        polls += 1
        if job.get("status") != "running":
            break
    t_end = time.perf_counter()
    await asyncio.sleep(lead)
    stop.set()
    events, recs = await asyncio.gather(*loads)
    after = (await _admin(url, "GET", "/healthz"))[1].get("model_version")
    during = [s for s in events + recs if t_start <= s.due <= t_end]
    return {
        "train_request_status": status,
        "job": job,
        "polls": polls,
        "model_version_before": before,
        "model_version_after": after,
        "seconds_under_training": round(t_end - t_start, 2),
        "events": summarize(events, rate / 2),
        "recs": summarize(recs, rate / 2),
        "all": summarize(events + recs, rate),
        "during_training": {"events": summarize([s for s in during if s.kind == "events"]),
                            "recs": summarize([s for s in during if s.kind == "recs"])},
    }


async def bulk_phase(url: str, bodies: list[bytes], clients: int, duration: float, size: int) -> dict[str, Any]:
    """``clients`` closed loops, each posting the next prebuilt batch as soon as its last is acknowledged."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    shots: list[Shot] = []
    next_batch = iter(range(len(bodies)))
    t0 = time.perf_counter()

    async def client() -> None:
        conn = Connection(host, int(port), 120.0)
        for b in next_batch:
            if time.perf_counter() - t0 >= duration:
                break
            shot = Shot("bulk", time.perf_counter())
            shot.issued = shot.due
            shots.append(shot)
            await _send(conn, shot, ("POST", "/events", bodies[b]), count_acks=True)
        conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    wall = max(s.end for s in shots) - t0
    acked = sum(s.acknowledged for s in shots)
    figures = summarize(shots)
    figures.update({
        "clients": clients,
        "batch_size": size,
        "batches_prebuilt": len(bodies),
        "ran_out_of_batches": len(shots) == len(bodies),
        "events_acknowledged": acked,
        "seconds": round(wall, 2),
        "events_per_s": round(acked / wall) if wall > 0 else None,
        "body_mb": round(len(bodies[0]) / 1e6, 2),
    })
    return figures


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    return round(kb / 1024, 1)


def _parse_answer(buf: bytes) -> tuple[int, bool] | None:
    """(status, has Retry-After) once ``buf`` holds a whole HTTP/1.1 answer with a Content-Length."""
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.split(b"\r\n")
    fields = {n.strip().lower(): v.strip() for n, _, v in (line.partition(b":") for line in lines[1:])}
    if len(rest) < int(fields.get(b"content-length", b"0")):
        return None
    return int(lines[0].split(b" ", 2)[1]), b"retry-after" in fields


def _burst_at_once(host: str, port: int, paths: list[str], timeout: float = 30.0) -> list[Shot]:
    """One request per path on as many connected sockets, sent back to back, answers read as they
    come. Raw non-blocking sockets and a selector: a few microseconds per request on the client, so
    the latencies are the server's (with asyncio streams the client's own ~50 us per request for
    400 requests added tens of ms to the tail)."""
    socks = []
    for _ in paths:
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(sock)
    for sock in socks:  # each connection served once before the burst: accepted and kept alive
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    for sock in socks:
        buf = b""
        while _parse_answer(buf) is None:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed a connection before the burst")
            buf += chunk
        sock.setblocking(False)
    requests = [f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for path in paths]
    shots = [Shot("burst", 0.0) for _ in paths]
    selector = selectors.DefaultSelector()
    buffers: dict[int, bytes] = {}
    for n, sock in enumerate(socks):
        selector.register(sock, selectors.EVENT_READ, n)
    t0 = time.perf_counter()
    for shot, sock, request in zip(shots, socks, requests, strict=True):
        shot.due = shot.issued = shot.start = t0
        sock.send(request)
    waiting = len(socks)
    while waiting and time.perf_counter() - t0 < timeout:
        for key, _ in selector.select(timeout=1.0):
            sock, n = key.fileobj, key.data
            assert isinstance(sock, socket.socket)
            chunk = sock.recv(65536)
            buffers[n] = buffers.get(n, b"") + chunk
            answer = _parse_answer(buffers[n])
            if answer is None and chunk:
                continue
            shots[n].end = time.perf_counter()
            if answer is None:
                shots[n].error = "connection"
            else:
                shots[n].status, shots[n].retry_after = answer
            selector.unregister(sock)
            waiting -= 1
    for shot in shots:
        if not shot.end:
            shot.error, shot.end = "timeout", time.perf_counter()
    selector.close()
    for sock in socks:
        sock.close()
    return shots


async def _one_burst(host: str, port: int, paths: list[str], pid: int) -> dict[str, Any]:
    """One request per path, all sent at the same instant on as many open connections."""
    rss_before = _rss_mb(pid)
    shots = await asyncio.to_thread(_burst_at_once, host, port, paths)
    t0 = shots[0].due
    wall = max(s.end for s in shots) - t0
    marked = sum(1 for s in shots if s.status == 503 and s.retry_after)
    await asyncio.sleep(3.0)
    served = sorted((s.end - t0) * 1000 for s in shots if s.ok)
    refused = sorted((s.end - t0) * 1000 for s in shots if s.error is None and s.status == 503)
    other = [s for s in shots if not s.ok and not (s.error is None and s.status == 503)]
    rss_after = _rss_mb(pid)
    return {
        "served": len(served), "refused_503": len(refused), "refused_with_retry_after": marked,
        "other": _errors(other) if other else {"total": 0},
        "served_ms": {"p50": _pct(served, 0.5), "p99": _pct(served, 0.99), "max": _pct(served, 1.0)},
        "refused_ms": {"p50": _pct(refused, 0.5), "p99": _pct(refused, 0.99), "max": _pct(refused, 1.0)},
        "served_within_target": sum(1 for v in served if v <= TARGETS["recs_p99_ms"]),
        "refused_within_target": sum(1 for v in refused if v <= TARGETS["burst_refusal_ms"]),
        "seconds": round(wall, 3),
        "rss_mb_before": rss_before, "rss_mb_after": rss_after, "rss_growth": round(rss_after / rss_before - 1, 3),
    }


async def burst_phase(url: str, work: Workload, pid: int, size: int, ks: tuple[int, ...] = (10, 50)) -> dict[str, Any]:
    """``size`` requests for recommendations sent at the same instant on ``size`` open connections,
    once per ``k``: each must be a 200 within the recommendation target, or a 503 with
    ``Retry-After`` within ``burst_refusal_ms``; the server's RSS is read before, and again after
    the burst has settled (3 s)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    rng = random.Random(5)
    out: dict[str, Any] = {"size": size}
    for k in ks:
        paths = [f"/users/{rng.choice(work.users)}/recommendations?k={k}" for _ in range(size)]
        out[f"k{k}"] = await _one_burst(host, int(port), paths, pid)
    return out


async def run_phases(server: Server, work: Workload, args: argparse.Namespace) -> dict[str, Any]:
    tag = f"load{int(time.time())}"
    out: dict[str, Any] = {}
    rate, duration = args.rate, args.duration

    async def measured(name: str, run: Callable[[], Any]) -> None:
        if name not in args.phases:
            return
        print(f"phase {name} ...", flush=True)
        one = server.workers == 1  # with several, /metrics answers from whichever worker takes the connection
        metrics = await scrape(server.url) if one else {}
        meter = CpuMeter(server.pid)
        result = await run()
        result["cpu"] = cpu = meter.read()
        result["server_side"] = server_side(metrics, await scrape(server.url)) if one else None
        answered = (result.get("all") or result).get("ok") or 0
        cpu["server_cpu_ms_per_request"] = round(10 * cpu["server_cpu_pct"] * cpu["wall_s"] / answered, 2) \
            if answered else None
        out[name] = result

    out["warm_up"] = await warm_up(server.url, work)
    pool = Pool(server.url, args.connections, 10.0)
    try:
        print(f"warm-up: {out['warm_up']}", flush=True)
        gc.collect()
        gc.freeze()  # the workload's rows stay out of every later collection

        async def events() -> dict[str, Any]:
            shots = await open_loop(pool, "events", rate, duration, event_maker(work, f"{tag}-ev", 1))
            return summarize(shots, rate)

        async def recs() -> dict[str, Any]:
            return summarize(await open_loop(pool, "recs", rate, duration, recs_maker(work, 2)), rate)

        async def mixed() -> dict[str, Any]:
            ev, rc = await asyncio.gather(
                open_loop(pool, "events", rate / 2, duration, event_maker(work, f"{tag}-mx", 3)),
                open_loop(pool, "recs", rate / 2, duration, recs_maker(work, 3)))
            return {"events": summarize(ev, rate / 2), "recs": summarize(rc, rate / 2), "all": summarize(ev + rc, rate)}

        async def retrain() -> dict[str, Any]:
            return await retrain_phase(server.url, pool, work, tag, rate, args.retrain_lead, args.retrain_cap)

        await measured("events", events)
        await measured("recs", recs)
        await measured("mixed", mixed)
        await measured("retrain", retrain)

        async def burst() -> dict[str, Any]:
            return await burst_phase(server.url, work, server.pid, args.burst)

        await measured("burst", burst)
    finally:
        await pool.close()

    if "bulk" in args.phases:
        n = args.bulk_batches or math.ceil(args.bulk_duration * 50_000 / args.bulk_batch)
        t = time.perf_counter()
        bodies = bulk_bodies(work, tag, n, args.bulk_batch)
        print(f"built {n} bulk bodies in {time.perf_counter() - t:.1f} s", flush=True)

        async def bulk() -> dict[str, Any]:
            return await bulk_phase(server.url, bodies, args.bulk_clients, args.bulk_duration, args.bulk_batch)

        await measured("bulk", bulk)
    return out


# ---------------------------------------------------------------------------- report


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _row(name: str, s: dict[str, Any], throughput: str, target: str, met: bool | None) -> str:
    errors = s.get("errors", {}).get("total", 0)
    verdict = "—" if met is None else ("yes" if met else "**no**")
    return (f"| {name} | {_ms(s.get('p50_ms'))} | {_ms(s.get('p99_ms'))} | {_ms(s.get('max_ms'))} | {throughput} "
            f"| {errors} | {target} | {verdict} |")


def _latency_row(name: str, s: dict[str, Any], target_ms: float) -> str:
    met = s.get("p99_ms") is not None and s["p99_ms"] <= target_ms and s["errors"]["total"] == 0
    return _row(name, s, f"{s.get('answered_per_s', 0):.0f} req/s", f"p99 ≤ {target_ms:g} ms, 0 errors", met)


def tables(results: dict[str, Any]) -> str:
    lines = ["| measure | p50 ms | p99 ms | max ms | throughput | errors | target | met? |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    ev_t, rec_t = TARGETS["events_p99_ms"], TARGETS["recs_p99_ms"]
    if "events" in results:
        r = results["events"]
        lines.append(_latency_row(f"POST /events, 1 event @ {r['offered_per_s']:g}/s", r, ev_t))
    if "recs" in results:
        r = results["recs"]
        lines.append(_latency_row(f"GET recommendations k=10 @ {r['offered_per_s']:g}/s", r, rec_t))
    if "mixed" in results:
        r = results["mixed"]
        lines.append(_latency_row(f"mixed: POST /events @ {r['events']['offered_per_s']:g}/s", r["events"], ev_t))
        lines.append(_latency_row(f"mixed: GET recommendations @ {r['recs']['offered_per_s']:g}/s", r["recs"], rec_t))
    if "retrain" in results:
        r = results["retrain"]
        job = r["job"]
        secs = r["seconds_under_training"]
        for kind, label in (("events", "POST /events"), ("recs", "GET recommendations")):
            s = r["during_training"][kind]
            if s.get("requests"):
                lines.append(_row(f"during retrain ({secs:g} s): {label}", s, f"{s['answered_per_s']:.0f} req/s",
                                  "0 errors", s["errors"]["total"] == 0))
        lines.append(f"| retrain job: {job.get('status')} → {job.get('model_version')} "
                     f"(was {r['model_version_before']}, serving {r['model_version_after']}) | | | | "
                     f"{job.get('seconds')} s training | | succeeded | "
                     f"{'yes' if job.get('status') == 'succeeded' else '**no**'} |")
    if "burst" in results:
        r = results["burst"]
        for key in (k for k in r if k.startswith("k")):
            b = r[key]
            fast = b["served_within_target"] + b["refused_within_target"]
            total = b["served"] + b["refused_503"] + b["other"]["total"]
            met = fast == total and b["refused_with_retry_after"] == b["refused_503"] \
                and b["rss_growth"] <= TARGETS["burst_rss_growth"]
            lines.append(
                f"| burst of {r['size']} at once, {key.replace('k', 'k=')}: {b['served']} served (p99 "
                f"{_ms(b['served_ms']['p99'])} ms), {b['refused_503']} refused (p99 {_ms(b['refused_ms']['p99'])} ms)"
                f"; RSS {b['rss_mb_before']} → {b['rss_mb_after']} MB | {_ms(b['served_ms']['p50'])} "
                f"| {_ms(b['served_ms']['p99'])} | {_ms(b['served_ms']['max'])} | {fast}/{total} in time "
                f"| {b['other']['total']} | 200 ≤ {TARGETS['recs_p99_ms']:g} ms or 503 ≤ "
                f"{TARGETS['burst_refusal_ms']:g} ms; RSS ≤ +10% | {'yes' if met else '**no**'} |")
    if "bulk" in results:
        r = results["bulk"]
        rate = r["events_per_s"] or 0
        lines.append(_row(f"bulk: {r['batch_size']:,}-event batches × {r['clients']} clients (per batch)", r,
                          f"{rate:,} events/s", f"≥ {TARGETS['bulk_events_per_s']:,} events/s",
                          rate >= TARGETS["bulk_events_per_s"] and r["errors"]["total"] == 0))
    lines += ["", "CPU % is of one core (this machine has " f"{os.cpu_count()}" " cores, shared by all three).", "",
              "| phase | requests | offered req/s | answered req/s | generator lag p50 / p99 / max ms "
              "| waited for a connection p99 ms | server CPU % | server CPU ms / request | generator CPU % "
              "| other processes CPU % |",
              "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for name in PHASES:
        if name not in results:
            continue
        r = results[name]
        whole = r.get("all") or r
        lag = whole.get("generator_lag_ms", {})
        offered = whole.get("offered_per_s")
        lines.append(f"| {name} | {whole.get('requests')} | {'—' if offered is None else f'{offered:g}'} "
                     f"| {whole.get('answered_per_s')} | {_ms(lag.get('p50'))} / {_ms(lag.get('p99'))} / "
                     f"{_ms(lag.get('max'))} | {_ms(whole.get('waited_for_connection_ms', {}).get('p99'))} "
                     f"| {r['cpu']['server_cpu_pct']} | {_ms(r['cpu']['server_cpu_ms_per_request'])} "
                     f"| {r['cpu']['generator_cpu_pct']} "
                     f"| {r['cpu']['other_cpu_pct']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def workers_table(backend: str, runs: dict[str, Any]) -> str:
    """One row per worker count and phase: answered/s, p50/p99, failed requests, server CPU (all workers)."""
    lines = ["| backend | workers | phase | answered/s | p50 ms | p99 ms | failed | server CPU % |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for workers, run in runs.items():
        for phase, s in run["phases"].items():
            summary = s.get("all", s) if isinstance(s, dict) else None
            if phase == "warm_up" or not summary or "p99_ms" not in summary:
                continue
            failed = summary.get("requests", 0) - summary.get("ok", 0)
            lines.append(f"| {backend} | {workers} | {phase} | {summary.get('answered_per_s')} | "
                         f"{_ms(summary.get('p50_ms'))} | {_ms(summary.get('p99_ms'))} | {failed} | "
                         f"{(s.get('cpu') or {}).get('server_cpu_pct', '–')} |")
    return "\n".join(lines)


def _drop_redis_prefix(url: str) -> None:
    import redis

    base, _, prefix = url.partition("?prefix=")
    client = redis.Redis.from_url(base)
    keys = list(client.scan_iter(match=f"{prefix or 'bench-serve-load:'}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per latency phase")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s offered per latency phase")
    parser.add_argument("--quick", action="store_true", help="short phases: a smoke run")
    parser.add_argument("--reuse", type=Path, default=None, help="keep the trained store here and copy it per run")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--connections", type=int, default=64, help="connection pool of the latency phases")
    parser.add_argument("--bulk-batch", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=400, help="concurrent requests of the burst phase")
    parser.add_argument("--bulk-clients", type=int, default=3)
    parser.add_argument("--bulk-duration", type=float, default=15.0)
    parser.add_argument("--bulk-batches", type=int, default=0, help="prebuilt batches (0: enough for 50k events/s)")
    parser.add_argument("--retrain-lead", type=float, default=3.0, help="seconds of load before and after training")
    parser.add_argument("--retrain-cap", type=float, default=600.0, help="give up waiting for training after this")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite",
                        help="sqlite: one file, in-process states; postgres: PostgreSQL store + Redis states")
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test", help="with --backend postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0?prefix=bench-serve-load:",
                        help="the state store with --backend postgres")
    parser.add_argument("--workers", default="1", help="comma-separated worker counts, one run each (1,2,4)")
    args = parser.parse_args()
    args.workers = [int(w) for w in str(args.workers).split(",") if w]
    if args.quick:
        args.duration = min(args.duration, 3.0)
        args.bulk_duration = min(args.bulk_duration, 3.0)
        args.retrain_lead = 1.0
    args.phases = [p for p in args.phases.split(",") if p]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(sorted(unknown))}; known: {', '.join(PHASES)}")
    signal.signal(signal.SIGTERM, _interrupt)

    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        loop_factory = None

    load_at_start = [round(x, 2) for x in os.getloadavg()]
    workdir = Path(tempfile.mkdtemp(prefix="liverec-serve-load-"))
    results_dir = Path(__file__).parent / "results"
    server: Server | None = None
    try:
        config = None
        if args.backend == "postgres":
            store_url, how, store_s = prepare_postgres(workdir, args.postgres, args.seed)
            _drop_redis_prefix(args.redis)
            config = workdir / "liverec.toml"
            config.write_text(f'[engine]\nstate_store = "{args.redis}"\n')
        else:
            store, how, store_s = prepare_store(workdir, args.reuse.resolve() if args.reuse else None, args.seed)
            store_url = _store_url(store)
        print(f"store {how} in {store_s:.1f} s: {store_url}", flush=True)
        work = workload(args.seed)
        results_dir.mkdir(exist_ok=True)
        runs: dict[str, Any] = {}
        for workers in args.workers:
            server = Server(store_url, results_dir / f"serve_load.server-{workers}.log", workers, config)
            startup_s = server.start()
            print(f"server pid {server.pid} at {server.url}, {workers} worker(s) (ready in {startup_s:.1f} s)",
                  flush=True)
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runs[str(workers)] = {"phases": runner.run(run_phases(server, work, args)),
                                      "startup_s": round(startup_s, 1)}
            exit_code = server.stop()
        results = runs[str(args.workers[0])]["phases"] if len(args.workers) == 1 else runs
        result = {
            "world": {"seed": args.seed, "users": len(work.users), "items": len(work.items),
                      "events": len(work.events)},
            "store": {"how": how, "seconds": round(store_s, 1)},
            "server": {"startup_s": round(startup_s, 1), "exit_code": exit_code, "log_tail": server.log_tail(10)},
            "cpu_count": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "generator": {"loop": "uvloop" if loop_factory else "asyncio",
                          "client": "minimal HTTP/1.1 (asyncio streams)", "connections": args.connections,
                          "same_machine_as_server": True},
            "settings": {k: v for k, v in vars(args).items() if k != "reuse"},
            "targets": TARGETS,
            "phases" if len(args.workers) == 1 else "runs_by_workers": results,
        }
        if len(args.workers) == 1:
            table = tables(results)
        else:
            table = workers_table(args.backend, runs)
        name = "serve_load" if args.backend == "sqlite" and args.workers == [1] else \
            f"serve_load-{args.backend}-w{'-'.join(map(str, args.workers))}"
        (results_dir / f"{name}.json").write_text(json.dumps(result, indent=2))
        (results_dir / f"{name}.md").write_text(table + "\n")
        print(json.dumps(result, indent=2))
        print()
        print(table)
    except KeyboardInterrupt:
        print("interrupted: stopping the server", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
