"""Throughput of bulk ingest on the demo world: ``engine.ingest_events(list of dicts)``.

Each batch is validated, durably committed to SQLite (WAL, synchronous=FULL), applied to its
users' states and folded into trending, exactly as the HTTP service does it. Three cases:

* live states — every user's state is already in memory (a running service);
* states rebuilt — no state is live, so each user in the batch is replayed from the event log
  (a batch touches nearly every user, so this replays nearly the whole log: see
  ``median_replayed_events_per_s``);
* retried batch — every event is already stored (validation and the id lookup only);
* HTTP — then the same store is served by ``liverec serve`` and ``--clients`` connections each
  POST /events batches of ``--http-batch`` events (the service's ``max_batch``) back to back; a
  batch counts when its 200 (given after the group commit) arrives.

Batches are the demo world's events (users, items, types, texts) as JSON-like dicts with fresh
ids, arriving after the world's last event. Target on 2 cores: 45,000 events/s (median, live
states). Wall-clock rates include the fsync of every commit; the CPU-time rate and the load
average say how much a busy machine held the run back. Prints JSON and a markdown table (and
writes both under benchmarks/results/).

    python benchmarks/ingest.py [--batch 10000] [--batches 5] [--clients 2] [--http-batches 20]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _report import publish  # noqa: E402  (benchmarks/ is the script's own directory)
from serve_load import DB, Server  # noqa: E402

from liverec.core.types import Event  # noqa: E402
from liverec.datasets.demo import build_demo_world  # noqa: E402
from liverec.engine import Engine  # noqa: E402

TARGET_EVENTS_PER_S = 45_000
SPACING = 0.01  # seconds between consecutive benchmark events


def _batch(events: list[Event], number: int, size: int) -> list[dict[str, Any]]:
    """``size`` of ``events`` as dicts with fresh ids, timed after the world and every earlier batch.

    Events arrive ``SPACING`` seconds apart, as on a live service: a batch spans seconds, not
    the weeks the world's events spread over.
    """
    start = number * size
    base = events[-1].timestamp
    out = []
    for k in range(size):
        row = events[(start + k) % len(events)].to_dict()
        row["event_id"] = f"bench-{number}-{k}"
        row["timestamp"] = base + SPACING * (start + k + 1)
        out.append(row)
    return out


def _rates(timings: list[tuple[float, float]], size: int) -> dict[str, float]:
    """Events per second from (wall, CPU) seconds per batch; CPU time is the process's, all threads."""
    rates = sorted(size / wall for wall, _ in timings)
    return {
        "median_events_per_s": round(statistics.median(rates)),
        "min_events_per_s": round(rates[0]),
        "max_events_per_s": round(rates[-1]),
        "median_ms_per_batch": round(1000 * statistics.median(wall for wall, _ in timings), 1),
        "median_cpu_events_per_s": round(statistics.median(size / cpu for _, cpu in timings)),
        "batches": len(timings),
    }


def _time(run: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def http_bulk(store: Path, rows: list[list[dict[str, Any]]], clients: int) -> dict[str, Any]:
    """POST every batch of ``rows`` to a served ``store`` from ``clients`` connections at once."""
    import httpx

    server = Server(store, store / "serve.log")
    started_in = server.start()
    try:
        def post(batch: list[dict[str, Any]], client: httpx.Client) -> float:
            t = time.perf_counter()
            answer = client.post("/events", content=json.dumps({"events": batch}),
                                 headers={"content-type": "application/json"})
            if answer.status_code != 200:
                raise RuntimeError(f"POST /events answered {answer.status_code}: {answer.text[:300]}")
            return time.perf_counter() - t

        connections = [httpx.Client(base_url=server.url, timeout=300.0) for _ in range(clients)]
        try:
            wall = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                seconds = list(pool.map(lambda n: post(rows[n], connections[n % clients]), range(len(rows))))
            wall = time.perf_counter() - wall
        finally:
            for c in connections:
                c.close()
    finally:
        server.stop()
    events = sum(len(b) for b in rows)
    return {"events": events, "batch_size": len(rows[0]), "clients": clients, "server_start_s": round(started_in, 1),
            "events_per_s": round(events / wall), "median_ms_per_batch": round(1000 * statistics.median(seconds), 1),
            "max_ms_per_batch": round(1000 * max(seconds), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--clients", type=int, default=2, help="concurrent HTTP connections (0: no HTTP case)")
    parser.add_argument("--http-batch", type=int, default=10_000, help="events per POST /events")
    parser.add_argument("--http-batches", type=int, default=20)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="liverec-bench-")
    world = build_demo_world(seed=args.seed)
    engine = Engine.open(f"sqlite:///{tmp}/{DB}")
    engine.ingest_items(world.items)
    t = time.perf_counter()
    for start in range(0, len(world.events), 5000):
        engine.ingest_events(world.events[start : start + 5000])
    t_world = time.perf_counter() - t
    engine.train()
    users = sorted({e.user_id for e in world.events})
    for user in users:
        engine.state(user)

    load_before = os.getloadavg()[0]
    number = 0
    live, rebuilt, retried = [], [], []
    replayed = []  # events replayed from the log per rebuilt batch
    for _ in range(args.batches):
        batch = _batch(world.events, number, args.batch)
        number += 1
        live.append(_time(lambda batch=batch: engine.ingest_events(batch)))
        retried.append(_time(lambda batch=batch: engine.ingest_events(batch)))
    for _ in range(args.batches):
        batch = _batch(world.events, number, args.batch)
        number += 1
        engine.states.clear()
        rebuilt.append(_time(lambda batch=batch: engine.ingest_events(batch)))
        replayed.append(sum(engine.state(user).n_events for user in {row["user_id"] for row in batch}))

    stored_before_http = engine.store.events.count()
    engine.close()
    http = None
    if args.clients > 0:
        posts = [_batch(world.events, number + n, args.http_batch) for n in range(args.http_batches)]
        http = http_bulk(Path(tmp), posts, args.clients)
        with Engine.open(f"sqlite:///{tmp}/{DB}", create=False) as check:
            http["stored_after"] = check.store.events.count()
            http["all_stored"] = http["stored_after"] - stored_before_http == http["events"]

    rows = {
        "live states": _rates(live, args.batch),
        "states rebuilt from the log": _rates(rebuilt, args.batch),
        "retried batch (all duplicates)": _rates(retried, args.batch),
    }
    rows["states rebuilt from the log"]["median_replayed_events_per_s"] = round(
        statistics.median(n / wall for n, (wall, _) in zip(replayed, rebuilt, strict=True))
    )
    result = {
        "world": {"items": len(world.items), "users": len(users), "events": len(world.events)},
        "world_ingest_events_per_s": round(len(world.events) / t_world),
        "batch_size": args.batch,
        "events_in_log_at_end": stored_before_http,
        "median_events_replayed_per_rebuilt_batch": round(statistics.median(replayed)),
        "cpu_count": os.cpu_count(),
        "load_average_before_and_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "results": rows,
        "http": http,
    }
    lines = [
        "| ingest_events (SQLite, durable) | median events/s | min | max | median ms/batch "
        "| median events/CPU-s | batches |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['median_events_per_s']:,} | {r['min_events_per_s']:,} | {r['max_events_per_s']:,} "
            f"| {r['median_ms_per_batch']:.1f} | {r['median_cpu_events_per_s']:,} | {r['batches']} |"
        )
    if http is not None:
        lines += ["", "| POST /events (served, SQLite, durable) | events/s | clients | events per POST "
                  "| median ms/POST | max ms/POST | every event stored |", "|---|---:|---:|---:|---:|---:|---|",
                  f"| {http['events']:,} events after {stored_before_http:,} | {http['events_per_s']:,} "
                  f"| {http['clients']} | {http['batch_size']:,} | {http['median_ms_per_batch']} "
                  f"| {http['max_ms_per_batch']} | {http['all_stored']} |"]
    publish("ingest", result, "\n".join(lines))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
