"""Cost of the real-time path on the demo world: apply(event) and recommend, and within a
request the sequence model's and the learned ranker's shares.

Prints JSON and a markdown table (and writes both under benchmarks/results/). Targets on
2 cores: apply ≤ 1 ms median, recommend ≤ 10 ms p99 with all recalls on, timed as the service
serves (numpy's BLAS on one thread). Each figure also
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
from threadpoolctl import threadpool_limits  # noqa: E402

from liverec.datasets.demo import build_demo_world  # noqa: E402
from liverec.engine import Engine  # noqa: E402
from liverec.models.base import TYPE_INDEX  # noqa: E402
from liverec.ranking.filters import Filters  # noqa: E402
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
    # Requests are timed as ``liverec serve`` runs them: numpy's BLAS on one thread (see
    # Engine.recommend). A multi-threaded BLAS team on request-sized products doubled the median.
    threadpool_limits(limits=1, user_api="blas")

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
    for _ in range(300):
        user = rng.choice(users)
        item = rng.choice(world.items).item_id
        t = time.perf_counter()
        engine.ingest_events([{"user_id": user, "type": "view", "item_id": item, "timestamp": time.time()}])
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

    # The sequence model and the ranker inside one request, for the same warm users.
    snapshot = engine.snapshot
    assert snapshot is not None
    ranker, scorer = engine.serving.ranker, snapshot.scorer
    seq_model = snapshot.models.get("sequential")
    seq_vec, seq_rank, recall_feats, score_full, score_linear = [], [], [], [], []
    first = getattr(scorer, "first_", None)  # the learned ranker's linear first stage
    for _ in range(min(1000, args.requests)):
        state = engine.state(rng.choice(users))
        if seq_model is not None:
            acts = [a for a in state.recent if a.item_id is not None and a.weight > 0][-seq_model.max_len :]
            ids = [a.item_id or "" for a in acts]
            kinds = [TYPE_INDEX[a.type] for a in acts]
            stamps = [a.timestamp for a in acts]
            t = time.perf_counter()
            vec = seq_model.user_vector(ids, kinds, stamps)
            seq_vec.append(time.perf_counter() - t)
            if vec is not None:
                t = time.perf_counter()
                seq_model.score_ranked(vec, 200)
                seq_rank.append(time.perf_counter() - t)
        ranker.forget(state.user_id)  # recalls' memos off: every block computed here
        t = time.perf_counter()
        features = ranker.features(state, Filters())
        recall_feats.append(time.perf_counter() - t)
        t = time.perf_counter()
        scorer.score(features)
        score_full.append(time.perf_counter() - t)
        if first is not None:
            features = ranker.features(state, Filters())
            t = time.perf_counter()
            first.score(features)
            score_linear.append(time.perf_counter() - t)
    described = scorer.describe()
    parts = {
        "  sequence model: user vector (L ≤ 50, numpy)": seq_vec,
        "  sequence model: score catalog, top 200": seq_rank,
        "  recalls + candidate set (memos cold)": recall_feats,
        f"  scorer {described['kind']} ({described.get('validation', {}).get('chosen', 'trained')})": score_full,
        "  scorer: its linear first stage alone": score_linear,
    }

    baseline = _stats(base)
    rows = {
        "apply(event)": _stats(apply_times),
        "ingest 1 event (durable)": _stats(ingest_times),
        "recommend k=10 (warm state)": _stats(rec_times),
        "recommend k=10 (fresh ALS fold-in)": _stats(rec_cold),
        **{name: _stats(samples) for name, samples in parts.items() if samples},
        "baseline: catalog matvec + top-10": baseline,
    }
    for r in rows.values():
        r["median_x_baseline"] = round(r["median_ms"] / max(baseline["median_ms"], 1e-9), 2)
    result = {
        "world": {"items": len(world.items), "users": len(users), "events": len(world.events)},
        "ingest_seconds": {"items": round(t_items, 2), "events": round(t_events, 2)},
        "train_seconds": round(report.seconds.get("total", 0.0), 2),
        "scorer": described,
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
