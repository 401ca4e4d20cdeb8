"""Training time per stage: the local engine beside the Spark engine on the same synthetic world.

    python benchmarks/spark_training.py --items 100000 --events 10000000 --master local[2]

The world (issue 16's synthetic stream, liverec.datasets.synthetic) is built once into a SQLite
store under ~/.cache/liverec-spark and reused; ``--store`` trains a store already built instead
(e.g. a world of ``benchmarks/scale.py``, whose 10M-event build takes most of an hour). Each
engine trains it in this process, one after the other; the report gives each stage's wall time
(TrainReport.stages) and, for the Spark stages, Spark's own task metrics from its REST API: the
summed executor run time over the wall time is the parallelism the stage reached, and the shuffle
bytes what more executors would move.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _report import publish  # noqa: E402  (benchmarks/ is the script's own directory)

CACHE = Path.home() / ".cache" / "liverec-spark"


def world(items: int, events: int, seed: int) -> str:
    from liverec.datasets.synthetic import ScaleSpec, load_world
    from liverec.engine import Engine

    path = CACHE / f"world-{items}x{events}-{seed}.db"
    if not (path.with_suffix(".done")).exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        for stale in CACHE.glob(f"{path.name}*"):
            stale.unlink()
        engine = Engine.open(f"sqlite:///{path}")
        t0 = time.perf_counter()
        load_world(engine, ScaleSpec(items=items, events=events, seed=seed),
                   progress=lambda stage, done, total: print(f"\r{stage} {done}/{total}", end="", file=sys.stderr))
        engine.close()
        print(f"\nbuilt in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        path.with_suffix(".done").touch()
    return f"sqlite:///{path}"


def spark_metrics() -> dict[str, Any]:
    """Per training stage (job group): executor run time, wall time of its jobs, tasks, shuffle bytes."""
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None or not session.sparkContext.uiWebUrl:
        return {}
    sc = session.sparkContext
    base = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}"
    jobs = json.load(urllib.request.urlopen(f"{base}/jobs"))
    stages = {s["stageId"]: s for s in json.load(urllib.request.urlopen(f"{base}/stages"))}
    out: dict[str, dict[str, float]] = {}
    for job in jobs:
        group = job.get("jobGroup") or "other"
        entry = out.setdefault(group, {"executor_s": 0.0, "tasks": 0, "shuffle_read_mb": 0.0,
                                       "shuffle_write_mb": 0.0})
        for stage_id in job.get("stageIds", []):
            stage = stages.get(stage_id)
            if stage is None or stage.get("status") != "COMPLETE":
                continue
            entry["executor_s"] += stage.get("executorRunTime", 0) / 1000
            entry["tasks"] += stage.get("numCompleteTasks", 0)
            entry["shuffle_read_mb"] += stage.get("shuffleReadBytes", 0) / 1e6
            entry["shuffle_write_mb"] += stage.get("shuffleWriteBytes", 0) / 1e6
    return {k: {m: round(v, 2) for m, v in e.items()} for k, e in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--engines", default="local,spark")
    parser.add_argument("--store", help="train this store (a URL) instead of building --items × --events")
    parser.add_argument("--sequence-max-seconds", type=float,
                        help="cap the sequence model's training (it runs on the driver in both engines, so the "
                             "Spark stages' times do not depend on it; default: the settings' own budget)")
    args = parser.parse_args()

    from liverec.core.settings import Settings
    from liverec.engine import Engine
    from liverec.training.engines import training_engine

    url = args.store or world(args.items, args.events, args.seed)
    models = {"sequential": {"max_seconds": args.sequence_max_seconds}} if args.sequence_max_seconds else {}
    engine = Engine.open(url, create=not args.store, models=models)
    if args.store:
        args.items, args.events = len(engine.items), engine.store.events.count()
    result: dict[str, Any] = {"items": args.items, "events": args.events, "master": args.master, "engines": {},
                              "store": url, "sequence_max_seconds": args.sequence_max_seconds}
    try:
        for name in args.engines.split(","):
            settings = Settings(training={"engine": name, "master": args.master}, models=models)
            engine.models.engine = training_engine(settings, engine.store, engine.model_dir)
            t0 = time.perf_counter()
            report = engine.train()
            result["engines"][name] = {"total_s": round(time.perf_counter() - t0, 1),
                                       "stages": {k: round(v, 2) for k, v in report.stages.items()}}
            print(f"{name}: {result['engines'][name]['total_s']} s", file=sys.stderr)
        if "spark" in result["engines"]:
            result["spark_metrics"] = spark_metrics()
    finally:
        engine.close()
    names = list(result["engines"])
    stages = sorted({s for e in result["engines"].values() for s in e["stages"]})
    lines = [f"Training {args.items:,} items × {args.events:,} events (synthetic), Spark on {args.master}", "",
             "| stage | " + " | ".join(f"{n} (s)" for n in names) + " |", "|---|" + "---:|" * len(names)]
    for stage in stages:
        lines.append(f"| {stage} | " + " | ".join(str(result["engines"][n]["stages"].get(stage, "—"))
                                                    for n in names) + " |")
    lines.append("| **total** | " + " | ".join(str(result["engines"][n]["total_s"]) for n in names) + " |")
    if result.get("spark_metrics"):
        lines += ["", "| Spark job group | executor time (s) | tasks | shuffle read (MB) | shuffle write (MB) |",
                  "|---|---:|---:|---:|---:|"]
        for group, m in result["spark_metrics"].items():
            lines.append(f"| {group} | {m['executor_s']} | {int(m['tasks'])} | {m['shuffle_read_mb']} | "
                         f"{m['shuffle_write_mb']} |")
    publish(f"spark_training_{args.items}x{args.events}", result, "\n".join(lines))


if __name__ == "__main__":
    main()
