"""Two checkouts of liverec side by side on the demo world, in alternating blocks.

A change that must not cost speed is measured against the code before it, on the same machine at
the same time: each checkout runs in a worker process of its own (its tree first on the path),
both build and train the same demo world, then the driver asks them in turn for blocks of timed
calls (A, B, B, A, …), so drift in the machine's speed (other tenants, frequency) falls on both
alike. Per measure it reports each side's median wall time over all calls, and the median of the
per-block ratios B/A, of wall time and of the thread's CPU time, with bootstrap intervals (CPU
time leaves out waiting, for a disk's fsync or for the other process, so it is the steadier
figure of what the code costs).

    python benchmarks/ab.py --base /path/to/old/checkout [--blocks 20] [--calls 200]

Measures: ``recommend`` k=10 for a warm user; ``recommend`` after the user's ALS fold-in was
dropped; ``ingest_events`` of one event (durable); the state update alone (``apply``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
MEASURES = ("recommend warm", "recommend fresh fold-in", "ingest 1 event", "apply(event)")


# ---------------------------------------------------------------------------- worker


def _internals(engine: Any) -> tuple[Any, Any, Any]:
    """(signals of events, apply one event to a state, forget a user's fold-in) for either layout:
    the façade of today, or the engine before the redesign (issue 10)."""
    if hasattr(engine, "serving"):
        return engine.states.signals, engine.states.updater.apply, engine.serving.ranker.forget
    return engine._signals, engine.updater.apply, engine.ranker.forget


def worker(seed: int) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from liverec.datasets.demo import build_demo_world
    from liverec.engine import Engine
    from liverec.realtime.state import UserState

    tmp = tempfile.mkdtemp(prefix="liverec-ab-")
    world = build_demo_world(seed=seed)
    engine = Engine.open(f"sqlite:///{tmp}/ab.db")
    engine.ingest_items(world.items)
    for start in range(0, len(world.events), 5000):
        engine.ingest_events(world.events[start : start + 5000])
    engine.train()
    users = [u.user_id for u in world.users]
    for user in users:
        engine.recommend(user, k=10)
    signals_of, apply, forget = _internals(engine)
    pool = [e for e in world.events if e.item_id is not None][-5000:]
    signals = signals_of(pool)
    rng = random.Random(seed)
    serial = 0
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        measure, calls = json.loads(line)
        times: list[tuple[float, float]] = []
        for _ in range(calls):
            user = rng.choice(users)
            if measure == "recommend warm":
                t, c = time.perf_counter(), time.thread_time()
                engine.recommend(user, k=10)
            elif measure == "recommend fresh fold-in":
                forget(user)
                t, c = time.perf_counter(), time.thread_time()
                engine.recommend(user, k=10)
            elif measure == "ingest 1 event":
                serial += 1
                event = {"user_id": user, "type": "view", "item_id": rng.choice(world.items).item_id,
                         "timestamp": time.time()}
                t, c = time.perf_counter(), time.thread_time()
                engine.ingest_events([event])
            else:
                e = rng.choice(pool)
                state = UserState.empty(e.user_id, engine.settings.recent_length)
                t, c = time.perf_counter(), time.thread_time()
                apply(state, e, signals[e.event_id])
            times.append((time.perf_counter() - t, time.thread_time() - c))
        print(json.dumps(times), flush=True)
    engine.close()


# ---------------------------------------------------------------------------- driver


class Side:
    def __init__(self, name: str, tree: Path, seed: int) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen([sys.executable, str(HERE / "ab.py"), "--worker", "--seed", str(seed)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=tree)

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.name} worker failed to start")

    def block(self, measure: str, calls: int) -> list[list[float]]:
        """``calls`` timed calls of ``measure``: [wall seconds, CPU seconds] each."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([measure, calls]) + "\n")
        self.proc.stdin.flush()
        times: list[list[float]] = json.loads(self.proc.stdout.readline())
        return times

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _ci(ratios: list[float], seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = np.asarray(ratios)
    medians = [float(np.median(rng.choice(values, size=values.size))) for _ in range(2000)]
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, help="the checkout to compare with (A)")
    parser.add_argument("--new", type=Path, default=HERE.parent, help="the checkout under test (B; default: this one)")
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.seed)
        return
    if args.base is None:
        parser.error("--base is required")
    sides = [Side("base", args.base.resolve(), args.seed), Side("new", args.new.resolve(), args.seed)]
    for side in sides:
        side.wait_ready()
    samples: dict[str, dict[str, list[float]]] = {m: {"base": [], "new": []} for m in MEASURES}
    ratios: dict[str, list[float]] = {m: [] for m in MEASURES}
    cpu_ratios: dict[str, list[float]] = {m: [] for m in MEASURES}
    try:
        for block in range(args.blocks):
            order = sides if block % 2 == 0 else sides[::-1]
            for measure in MEASURES:
                got = {side.name: side.block(measure, args.calls) for side in order}
                for name, times in got.items():
                    samples[measure][name].extend(wall for wall, _ in times)
                wall = {name: statistics.median(w for w, _ in times) for name, times in got.items()}
                cpu = {name: statistics.median(c for _, c in times) for name, times in got.items()}
                ratios[measure].append(wall["new"] / wall["base"])
                cpu_ratios[measure].append(cpu["new"] / max(cpu["base"], 1e-9))
    finally:
        for side in sides:
            side.close()
    rows = {}
    for measure in MEASURES:
        base, new = samples[measure]["base"], samples[measure]["new"]
        low, high = _ci(ratios[measure])
        cpu_low, cpu_high = _ci(cpu_ratios[measure])
        rows[measure] = {
            "base_median_ms": round(1000 * statistics.median(base), 4),
            "new_median_ms": round(1000 * statistics.median(new), 4),
            "base_p99_ms": round(1000 * float(np.percentile(base, 99)), 4),
            "new_p99_ms": round(1000 * float(np.percentile(new, 99)), 4),
            "ratio_median_of_blocks": round(statistics.median(ratios[measure]), 4),
            "ratio_ci95": [round(low, 4), round(high, 4)],
            "cpu_ratio_median_of_blocks": round(statistics.median(cpu_ratios[measure]), 4),
            "cpu_ratio_ci95": [round(cpu_low, 4), round(cpu_high, 4)],
            "calls_each": len(base),
        }
    result = {"base": str(args.base), "new": str(args.new), "blocks": args.blocks, "calls": args.calls,
              "cpu_count": os.cpu_count(), "results": rows}
    lines = ["| measure | base median ms | new median ms | base p99 ms | new p99 ms | new/base wall (95% CI) "
             "| new/base CPU (95% CI) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for measure, r in rows.items():
        lines.append(f"| {measure} | {r['base_median_ms']:.3f} | {r['new_median_ms']:.3f} | {r['base_p99_ms']:.3f} "
                     f"| {r['new_p99_ms']:.3f} | {r['ratio_median_of_blocks']:.3f} "
                     f"[{r['ratio_ci95'][0]:.3f}, {r['ratio_ci95'][1]:.3f}] | {r['cpu_ratio_median_of_blocks']:.3f} "
                     f"[{r['cpu_ratio_ci95'][0]:.3f}, {r['cpu_ratio_ci95'][1]:.3f}] |")
    sys.path.insert(0, str(HERE))
    from _report import publish

    publish("ab", result, "\n".join(lines))


if __name__ == "__main__":
    main()
