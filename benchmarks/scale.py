"""How liverec's costs grow with the catalog and the log, on seeded synthetic worlds.

Each world (``--items`` × ``--events``, from :mod:`liverec.datasets.synthetic`) is built once into
``--work`` (SQLite) and reused. Every measurement runs in a child process of its own, so its peak
RSS is its own (read by ``wait4``):

* ``build``  — items ingested (validated, encoded, stored, indexed) per second, and durable bulk
  ingest of events with state updates (``Engine.ingest_events``, batches of 50,000) against the
  events already stored;
* ``train``  — ``Engine.train()`` wall time per stage and peak RSS;
* ``serve``  — open time, in-process ``recommend`` (k = 10) and ``ingest`` of one event p50/p99 over
  warm users, by history length; memory per live state (its stored byte form, and RSS growth per
  warmed state) and per item; the content index's recall@100 against exact search;
* ``encode`` — text encoding items/s per encoder on the world's own item texts.

Figures are medians of ``--repeats`` passes where a pass is cheap; each ``serve`` figure also appears
as a ratio to a machine-speed baseline timed in the same process (one brute-force 512-d matrix-vector
product over 10,000 vectors), so runs on other machines compare. Writes JSON, a markdown table and
PNG curves under benchmarks/results/.

    python benchmarks/scale.py --items 10000,100000 --events 1000000 [--phases build,train,serve,encode]
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from _report import RESULTS, publish  # noqa: E402  (benchmarks/ is the script's own directory)

PHASES = ("build", "train", "serve", "encode")


def _stats(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 3),
        "n": len(ms),
    }


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _deep_bytes(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` and everything it references (arrays by ``nbytes``; shared objects once)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return sys.getsizeof(obj) + (obj.nbytes if obj.base is None else 0)
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        return size + sum(_deep_bytes(k, seen) + _deep_bytes(v, seen) for k, v in obj.items())
    if isinstance(obj, list | tuple | set | frozenset | type(collections.deque())):
        return size + sum(_deep_bytes(x, seen) for x in obj)
    slots = getattr(type(obj), "__slots__", ())
    return size + sum(_deep_bytes(getattr(obj, name), seen) for name in slots if hasattr(obj, name))


def _world_path(work: Path, items: int, events: int, seed: int) -> Path:
    return work / f"world-{items}-{events}-s{seed}.db"


# ---------------------------------------------------------------------- children


def child_build(items: int, events: int, seed: int, db: str) -> dict[str, Any]:
    """Build the world into ``db``, resuming a build that was cut short.

    Progress (items and events stored, seconds spent on each) is kept beside the database after
    every batch, so a 1M-item build (over an hour of encoding on 2 cores) survives a lost process:
    items are generated per item and events are idempotent by id, so the resumed build stores
    exactly what an uncut one would.
    """
    from liverec.datasets.synthetic import ScaleSpec, SyntheticWorld
    from liverec.engine import Engine

    spec = ScaleSpec(items=items, events=events, seed=seed)
    world = SyntheticWorld(spec)
    progress_path = Path(db + ".progress")
    progress = json.loads(progress_path.read_text()) if progress_path.exists() else {
        "item_seconds": 0.0, "events_seconds": 0.0, "generate_seconds": 0.0, "curve": []}

    def save() -> None:
        progress_path.write_text(json.dumps(progress))

    engine = Engine.open(f"sqlite:///{db}")
    started = time.perf_counter()
    have = len(engine.items)
    if have:
        print(f"resuming: {have:,} items stored", file=sys.stderr, flush=True)
    for batch in world.item_batches(10_000, first=have - have % 10_000):  # a partial batch is upserted again
        t = time.perf_counter()
        engine.ingest_items(batch)
        progress["item_seconds"] += time.perf_counter() - t
        save()
        done = int(batch[-1].item_id[1:])
        print(f"items {done:,}/{items:,}: {done / max(progress['item_seconds'], 1e-9):.0f} items/s overall, "
              f"RSS {_rss_mb():,.0f} MB, {time.perf_counter() - started:,.0f} s", file=sys.stderr, flush=True)
    stored = engine.store.events.count()
    if stored:
        print(f"resuming: {stored:,} events stored", file=sys.stderr, flush=True)
    batches = world.event_batches(50_000)
    seen = 0
    while True:
        t = time.perf_counter()
        batch = next(batches, None)
        progress["generate_seconds"] += time.perf_counter() - t
        if batch is None:
            break
        seen += len(batch)
        if seen <= stored:  # stored before the cut (a batch is one transaction)
            continue
        t = time.perf_counter()
        engine.ingest_events(batch)
        wall = time.perf_counter() - t
        progress["events_seconds"] += wall
        progress["curve"].append({"stored_before": seen - len(batch), "events_per_s": round(len(batch) / wall)})
        save()
        print(f"events {seen:,}/{events:,}: {len(batch) / wall:,.0f} events/s, RSS {_rss_mb():,.0f} MB, "
              f"{time.perf_counter() - started:,.0f} s", file=sys.stderr, flush=True)
    users = len(engine.store.events.users())
    engine.close()
    Path(db + ".done").write_text(json.dumps({"items": items, "events": events, "seed": seed}))
    curve = progress["curve"]
    rates = [c["events_per_s"] for c in curve]
    return {
        "items_per_s": round(items / progress["item_seconds"], 1),
        "item_seconds": round(progress["item_seconds"], 1),
        "events_per_s": round(events / progress["events_seconds"]),
        "median_batch_events_per_s": round(statistics.median(rates)),
        "first_batches_events_per_s": round(statistics.median(rates[:3])),
        "last_batches_events_per_s": round(statistics.median(rates[-3:])),
        "generate_seconds": round(progress["generate_seconds"], 1),
        "users": users,
        "curve": curve,
    }


def child_train(db: str) -> dict[str, Any]:
    from liverec.engine import Engine

    engine = Engine.open(f"sqlite:///{db}", create=False)
    t = time.perf_counter()
    report = engine.train()
    total = time.perf_counter() - t
    engine.close()
    models = {name: {k: v for k, v in r.items() if "second" in k or k in ("epochs_run", "stopped_by_time")}
              for name, r in report.models.items()}
    return {"seconds": round(total, 1), "stages": {k: round(v, 2) for k, v in report.seconds.items()},
            "models": models, "scorer": report.scorer, "users": report.users, "events": report.events}


def child_serve(db: str, users_sample: int, requests: int, seed: int) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from liverec.engine import Engine
    from liverec.realtime.codec import encode_state

    # One BLAS thread, as `liverec serve` runs (service/app.py): a 2-thread OpenBLAS team spins on
    # request-sized products and loses its turn on a busy machine (MMR's 250 x 250 similarities at
    # k=50, measured 2026-12-07 beside a training: p99 17 ms with two threads, 0.5 ms with one).
    threadpool_limits(limits=1, user_api="blas")

    rng = random.Random(seed)
    base_vectors = np.random.default_rng(seed).standard_normal((10_000, 512)).astype(np.float32)
    q = base_vectors[0].copy()
    baseline = []
    for _ in range(500):
        t = time.perf_counter()
        np.argpartition(-(base_vectors @ q), 10)[:10]
        baseline.append(time.perf_counter() - t)
    del base_vectors

    rss_before = _rss_mb()
    t = time.perf_counter()
    engine = Engine.open(f"sqlite:///{db}", create=False)
    open_seconds = time.perf_counter() - t
    n_items = len(engine.items)
    rss_open = _rss_mb()
    # Users cleaning quarantined (a long synthetic history can look robotic) have no state to measure.
    quarantined = {q.key for q in engine.quarantined("user")}
    all_users = [u for u in engine.store.events.users() if u not in quarantined]
    users = rng.sample(all_users, min(users_sample, len(all_users)))
    # The first warm loads the query encoder and fills the text caches: warm a few users first, so
    # the RSS growth measured over the rest is the states' own.
    primer, users_measured = users[:100], users[100:]
    engine.warm_states(primer)
    rss_warm0 = _rss_mb()
    t = time.perf_counter()
    engine.warm_states(users_measured)
    warm_seconds = time.perf_counter() - t
    rss_warm1 = _rss_mb()
    state_bytes = [len(encode_state(engine.state(u))) for u in users[:2000]]
    # Interned strings (event types, item ids the catalog also holds) count once per state here,
    # so this is an upper bound on what a state adds.
    state_objects = [_deep_bytes(engine.state(u)) for u in users[:2000]]
    history = {u: engine.state(u).n_events for u in users}
    for u in users:  # fold-ins and memos exist, as on a running service
        engine.recommend(u, k=10)
    rec: list[tuple[str, float]] = []
    for _ in range(requests):
        u = rng.choice(users)
        t = time.perf_counter()
        engine.recommend(u, k=10)
        rec.append((u, time.perf_counter() - t))
    items = engine.items.ids()
    ingest = []
    for n in range(min(500, requests)):
        row = {"event_id": f"scale-probe-{seed}-{n}-{time.time_ns()}", "user_id": rng.choice(users), "type": "view",
               "item_id": rng.choice(items), "timestamp": time.time()}
        t = time.perf_counter()
        engine.ingest_events([row])
        ingest.append(time.perf_counter() - t)
    buckets: dict[str, list[float]] = {}
    for u, s in rec:
        n = history[u]
        key = "1-9" if n < 10 else "10-49" if n < 50 else "50-199" if n < 200 else "200+"
        buckets.setdefault(key, []).append(s)
    recall = _index_recall(engine, users, rng)
    model_recall = _model_recall(engine, users, rng)
    engine.close()
    base = _stats(baseline)
    recommend = _stats([s for _, s in rec])
    return {
        "items": n_items,
        "open_seconds": round(open_seconds, 1),
        "quarantined_users": len(quarantined),
        "rss_open_mb": round(rss_open - rss_before, 1),
        "kb_per_item": round((rss_open - rss_before) * 1024 / max(n_items, 1), 2),
        "warm_seconds_per_1000_states": round(1000 * warm_seconds / max(len(users_measured), 1), 2),
        "kb_rss_per_state": round((rss_warm1 - rss_warm0) * 1024 / max(len(users_measured), 1), 2),
        "state_bytes_median": int(statistics.median(state_bytes)) if state_bytes else 0,
        "state_object_bytes_median": int(statistics.median(state_objects)) if state_objects else 0,
        "recommend": {**recommend, "p50_x_baseline": round(recommend["p50_ms"] / base["p50_ms"], 2)},
        "recommend_by_history": {k: _stats(v) for k, v in sorted(buckets.items())},
        "ingest_one_event": _stats(ingest),
        "baseline": base,
        "index": recall,
        "model_indexes": model_recall,
    }


def _index_recall(engine: Any, users: list[str], rng: random.Random) -> dict[str, Any]:
    """The served text index's recall@100 against exact search, for users' interest vectors."""
    content = engine.items.content
    ids = engine.items.ids()
    vectors = engine.items.vectors_of(ids)  # unit rows, as the index holds them
    hits, total, times = 0, 0, []
    for u in rng.sample(users, min(100, len(users))):
        state = engine.state(u)
        query = state.interests[0].vector if state.interests else state.short_vec
        if query is None or not np.any(query):
            continue
        query = np.asarray(query, dtype=np.float32)
        exact = np.argpartition(-(vectors @ query), 100)[:100]
        t = time.perf_counter()
        found = content.search(query, 100)
        times.append(time.perf_counter() - t)
        got = {item_id for item_id, _ in found}
        truth = {ids[j] for j in exact}
        hits += len(got & truth)
        total += len(truth)
    return {"kind": content.kind_, "recall_at_100": round(hits / total, 4) if total else None,
            "search": _stats(times) if times else None}


def _model_recall(engine: Any, users: list[str], rng: random.Random) -> dict[str, Any]:
    """ALS's and the sequence model's top-100 from their inner-product search against exact search,
    for the query vectors their recalls would send (each model's ``item_search_``: exact up to
    FLAT_MAX_ITEMS items)."""
    from liverec.models.mips import MaxInnerProduct
    from liverec.ranking.recalls import ColdItems, RecallContext, sequence_vector

    snapshot = engine.serving.snapshot
    out: dict[str, Any] = {}
    if snapshot is None:
        return out
    sample = rng.sample(users, min(100, len(users)))
    for name, model in snapshot.models.items():
        search = getattr(model, "item_search_", None)
        if search is None:
            continue
        exact = MaxInnerProduct(search.table, search.usable, kind="flat")
        hits, total, times = 0, 0, []
        for u in sample:
            state = engine.state(u)
            if name == "als":
                query = model.user_vector(list(state.liked().items()))  # the ALS recall's fold-in
            else:
                ctx = RecallContext(state, None, None, set(), 100, snapshot.models, engine.items.content,
                                    lambda: ColdItems([], None, ()), {})
                query = sequence_vector(ctx)
            if query is None or not np.any(query):
                continue
            none = np.empty(0, dtype=np.int64)
            truth, _ = exact.top(query, 100, none)
            t = time.perf_counter()
            found, _ = search.top(query, 100, none)
            times.append(time.perf_counter() - t)
            hits += len(set(found.tolist()) & set(truth.tolist()))
            total += len(truth)
        out[name] = {"kind": search.kind, "recall_at_100": round(hits / total, 4) if total else None,
                     "search": _stats(times) if times else None}
    return out


def child_encode(db: str, encoder: str, n: int) -> dict[str, Any]:
    from liverec.engine import Engine
    from liverec.text.encoders import get_encoder

    engine = Engine.open(f"sqlite:///{db}", create=False)
    texts = [f"{i.title}. {i.description}" for i in itertools.islice(engine.store.catalog.all(), n)]
    engine.close()
    model = get_encoder(encoder, threads=2)
    model.encode(texts[:32])  # load and warm
    t = time.perf_counter()
    model.encode(texts)
    return {"encoder": encoder, "texts": len(texts), "items_per_s": round(len(texts) / (time.perf_counter() - t), 1)}


CHILDREN = {"build": child_build, "train": child_train, "serve": child_serve, "encode": child_encode}


def run_child(name: str, **kwargs: Any) -> dict[str, Any]:
    """Run ``CHILDREN[name](**kwargs)`` in a fresh interpreter; its result and peak RSS."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", name, json.dumps(kwargs)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{name} {kwargs} failed with exit code {proc.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # Linux: kilobytes
    shown = {k: v for k, v in result.items() if k != "curve"}
    print(f"{name}: {json.dumps(shown)}", file=sys.stderr)  # each result as it lands: a long sweep may be cut
    return result


# ---------------------------------------------------------------------- parent


def _row(w: dict[str, Any]) -> str:
    """One world's line of the markdown table (a dash where a phase did not run)."""
    b, tr, s = w.get("build"), w.get("train"), w.get("serve")
    cells = [f"{w['items']:,}", f"{w['events']:,}",
             str(b["items_per_s"]) if b else "—",
             f"{b['first_batches_events_per_s']:,} → {b['last_batches_events_per_s']:,}" if b else "—",
             f"{tr['seconds']} ({tr['peak_rss_mb']:,.0f})" if tr else "—"]
    if s:
        rec, one = s["recommend"], s["ingest_one_event"]
        cells += [f"{rec['p50_ms']} / {rec['p99_ms']}", f"{one['p50_ms']} / {one['p99_ms']}",
                  "; ".join(f"{name} {r['recall_at_100']} ({r['kind']})"
                            for name, r in [("text", s["index"]), *s.get("model_indexes", {}).items()]),
                  str(s["kb_per_item"]),
                  f"{s['state_bytes_median']:,} / {s.get('state_object_bytes_median', 0):,} / {s['kb_rss_per_state']}"]
    else:
        cells += ["—"] * 5
    return "| " + " | ".join(cells) + " |"


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    worlds = result["worlds"]
    serve = [(w["items"], w["serve"]) for w in worlds if "serve" in w]
    if serve:
        ax = axes[0]
        x = [s[0] for s in serve]
        ax.plot(x, [s[1]["recommend"]["p50_ms"] for s in serve], "o-", label="recommend p50")
        ax.plot(x, [s[1]["recommend"]["p99_ms"] for s in serve], "s--", label="recommend p99")
        ax.plot(x, [s[1]["ingest_one_event"]["p50_ms"] for s in serve], "^-", label="ingest 1 event p50")
        ax.set_xscale("log")
        ax.set_xlabel("catalog items")
        ax.set_ylabel("ms")
        ax.set_title("Request cost against catalog size")
        ax.legend()
    ax = axes[1]
    for w in worlds:
        if "build" in w:
            curve = w["build"]["curve"]
            ax.plot([c["stored_before"] for c in curve], [c["events_per_s"] for c in curve],
                    label=f"{w['items']:,} items")
    ax.set_xlabel("events already stored")
    ax.set_ylabel("events/s (durable, states updated)")
    ax.set_title("Bulk ingest against the log's size")
    ax.legend()
    ax = axes[2]
    trained = sorted(((w["events"], w["items"], w["train"]) for w in worlds if "train" in w), key=lambda t: t[:2])
    for items in sorted({t[1] for t in trained}):
        points = [(e, tr["seconds"], tr["peak_rss_mb"]) for e, i, tr in trained if i == items]
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=f"train s, {items:,} items")
    ax.set_xscale("log")
    ax.set_xlabel("events")
    ax.set_ylabel("seconds")
    ax.set_title("Training time against events")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", default="10000,100000", help="comma-separated catalog sizes")
    parser.add_argument("--events", default="1000000", help="comma-separated stream lengths")
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--work", default=str(Path.home() / ".cache" / "liverec-scale"),
                        help="where worlds are built and kept")
    parser.add_argument("--users", type=int, default=3000, help="warm users sampled per world for serve")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--encoders", default="use,e5,minilm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="scale")
    args = parser.parse_args()
    phases = [p for p in args.phases.split(",") if p]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    worlds = []
    for events in [int(e) for e in args.events.split(",")]:
        for items in [int(i) for i in args.items.split(",")]:
            db = _world_path(work, items, events, args.seed)
            row: dict[str, Any] = {"items": items, "events": events}
            if not Path(str(db) + ".done").exists():  # a build cut short resumes (see child_build)
                print(f"building {items:,} items × {events:,} events in {db}", file=sys.stderr)
                row["build"] = run_child("build", items=items, events=events, seed=args.seed, db=str(db))
            elif "build" in phases:
                print(f"reusing {db} (delete it and {db.name}.done to rebuild)", file=sys.stderr)
            if "train" in phases:
                print(f"training {db.name}", file=sys.stderr)
                row["train"] = run_child("train", db=str(db))
            if "serve" in phases:
                print(f"serving {db.name}", file=sys.stderr)
                row["serve"] = run_child("serve", db=str(db), users_sample=args.users, requests=args.requests,
                                         seed=args.seed)
            worlds.append(row)
    encoders = []
    if "encode" in phases and worlds:
        db = _world_path(work, worlds[0]["items"], worlds[0]["events"], args.seed)
        for encoder in [e for e in args.encoders.split(",") if e]:
            encoders.append(run_child("encode", db=str(db), encoder=encoder, n=2000))
    result = {"cpu_count": os.cpu_count(), "worlds": worlds, "encoders": encoders,
              "load_average": round(os.getloadavg()[0], 2)}
    lines = ["| items | events | build items/s | ingest events/s (first → last batches) | train s (peak RSS MB) "
             "| recommend p50 / p99 ms | ingest 1 event p50 / p99 ms | recall@100 of each index vs exact | KB per item "
             "| state: stored bytes / object bytes / RSS KB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for w in worlds:
        lines.append(_row(w))
    if encoders:
        lines += ["", "| encoder | items/s (2 threads) | peak RSS MB |", "|---|---:|---:|"]
        lines += [f"| {e['encoder']} | {e['items_per_s']} | {e['peak_rss_mb']:,.0f} |" for e in encoders]
    publish(args.name, result, "\n".join(lines))
    if worlds:
        _plot(result, RESULTS / f"{args.name}.png")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        print(json.dumps(CHILDREN[sys.argv[2]](**json.loads(sys.argv[3]))))
    else:
        main()
