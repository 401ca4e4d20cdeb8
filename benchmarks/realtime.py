"""Cost of the real-time path on the demo world: apply(event) and recommend.

Prints JSON and a markdown table (and writes both under benchmarks/results/). Targets on
2 cores: apply ≤ 1 ms median, recommend ≤ 10 ms p99 with all recalls on. Each figure also
appears as a ratio to a machine-speed baseline timed in the same process (one brute-force
matrix-vector product over the catalog's text vectors), so runs on other machines compare.

    python benchmarks/realtime.py [--requests 2000] [--events 5000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from _report import publish  # noqa: E402  (benchmarks/ is the script's own directory)

from liverec.datasets.demo import build_demo_world  # noqa: E402
from liverec.engine import Engine  # noqa: E402
from liverec.realtime.state import UserState  # noqa: E402


def _stats(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return {
        "median_ms": round(statistics.median(ms), 4),
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 4),
        "mean_ms": round(statistics.fmean(ms), 4),
        "n": len(ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    tmp = tempfile.mkdtemp(prefix="liverec-bench-")
    world = build_demo_world(seed=args.seed)
    engine = Engine.open(f"sqlite:///{tmp}/bench.db")
    t = time.perf_counter()
    engine.ingest_items(world.items)
    t_items = time.perf_counter() - t
    t = time.perf_counter()
    for start in range(0, len(world.events), 5000):
        engine.ingest_events(world.events[start : start + 5000])
    t_events = time.perf_counter() - t
    report = engine.train()

    # Baseline: one brute-force scoring pass over the catalog's vectors.
    vectors = engine.items.vectors_of(engine.items.ids())
    q = vectors[0].copy()
    base = []
    for _ in range(2000):
        t = time.perf_counter()
        np.argpartition(-(vectors @ q), 10)[:10]
        base.append(time.perf_counter() - t)

    # apply(event): the O(d + L) state update alone, signals prepared outside as in ingest.
    users = [u.user_id for u in world.users]
    pool = [e for e in world.events if e.item_id is not None][-args.events :]
    signals = engine.states.signals(pool)
    states: dict[str, UserState] = {}
    apply_times = []
    for e in pool:
        state = states.setdefault(e.user_id, UserState.empty(e.user_id, engine.settings.recent_length))
        sig = signals[e.event_id]
        t = time.perf_counter()
        engine.states.updater.apply(state, e, sig)
        apply_times.append(time.perf_counter() - t)

    # ingest of one event end to end: validate, durable SQLite commit, apply.
    ingest_times = []
    for n in range(300):
        user = rng.choice(users)
        item = rng.choice(world.items).item_id
        t = time.perf_counter()
        engine.ingest_events([{"user_id": user, "type": "view", "item_id": item, "timestamp": 1.8e9 + n}])
        ingest_times.append(time.perf_counter() - t)

    for u in users:  # warm: states and ALS fold-ins exist, as on a running service
        engine.recommend(u, k=10)
    rec_times = []
    for _ in range(args.requests):
        user = rng.choice(users)
        t = time.perf_counter()
        engine.recommend(user, k=10)
        rec_times.append(time.perf_counter() - t)
    rec_cold = []
    for _ in range(min(500, args.requests)):
        user = rng.choice(users)
        engine.serving.ranker.forget(user)  # forces the ALS fold-in again
        t = time.perf_counter()
        engine.recommend(user, k=10)
        rec_cold.append(time.perf_counter() - t)

    baseline = _stats(base)
    rows = {
        "apply(event)": _stats(apply_times),
        "ingest 1 event (durable)": _stats(ingest_times),
        "recommend k=10 (warm state)": _stats(rec_times),
        "recommend k=10 (fresh ALS fold-in)": _stats(rec_cold),
        "baseline: catalog matvec + top-10": baseline,
    }
    for r in rows.values():
        r["median_x_baseline"] = round(r["median_ms"] / max(baseline["median_ms"], 1e-9), 2)
    result = {
        "world": {"items": len(world.items), "users": len(users), "events": len(world.events)},
        "ingest_seconds": {"items": round(t_items, 2), "events": round(t_events, 2)},
        "train_seconds": round(report.seconds.get("total", 0.0), 2),
        "cpu_count": os.cpu_count(),
        "targets": {"apply_median_ms": 1.0, "recommend_p99_ms": 10.0},
        "results": rows,
    }
    lines = [
        "| measure | median ms | p99 ms | mean ms | n | median × baseline |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['median_ms']:.3f} | {r['p99_ms']:.3f} | {r['mean_ms']:.3f} | {r['n']} "
            f"| {r['median_x_baseline']} |"
        )
    publish("realtime", result, "\n".join(lines))
    engine.close()


if __name__ == "__main__":
    main()
