"""Streaming, side by side: liverec against rtrec 0.2.7 on MovieLens-100k, the same stream in one run.

Protocol (reproduced as the issue states it). All ratings in time order. Each user's last event is held
out as the test target. Of the remaining events, still in time order, each system trains once on the first
``--fraction`` (20%) and never again; the other 80% then go through each system's online update one event
at a time. At the end every user asks for a top-10 that leaves out the items they already had, scored by
HR@10 and NDCG@10 on the held-out item. Also measured: events absorbed per second while streaming (the
update calls only) and the wall time of each user's recommendation request (p50/p99).

* liverec: ``liverec.evaluation.systems.Liverec`` with its default configuration (the one validation picks
  in ``liverec evaluate``): ``fit`` on the first 20%, ``observe([event])`` per event, ``recommend`` with
  ``now`` = the held-out event's time (as the leave-one-out protocol asks) and the engine's own
  seen-items filter.
* rtrec: ``SLIM`` with rtrec's defaults in ``.venv-rtrec``, through ``peers/rtrec_peer.py``: ``fit`` on
  the first 20%, ``model.fit([event])`` per event (rtrec's online update refits the SLIM column of the
  event's item), ``recommend(filter_interacted=True)``. It never sees the held-out items.
* References, labelled as such: each system retrained from scratch at the end on everything streamed.

Intervals are percentile bootstraps over users; the liverec − rtrec differences are paired per user, with
the randomisation test's p-value (``liverec.evaluation.stats``). Prints JSON and a markdown table and writes
both to benchmarks/results/streaming.{json,md}. Skips, saying why, without the data or ``.venv-rtrec``.

    python benchmarks/streaming.py [--data ../shared/data/movielens-100k] [--fraction 0.2] [--rtrec-batch 1]

The same protocol on a synthetic stream (issue 16's second stream; rtrec's per-event update would
take hours on it, so it takes batches, and a sample of held-out users is scored):

    python benchmarks/streaming.py --synthetic 10000:1000000 --rtrec-batch 1000 --users 2000 --no-retrain
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from liverec.core.types import Event, EventType, Item  # noqa: E402
from liverec.evaluation.metrics import per_user_metrics  # noqa: E402
from liverec.evaluation.stats import bootstrap_ci, paired_test  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "movielens-100k"
RTREC_PYTHON = ROOT / ".venv-rtrec" / "bin" / "python"
RTREC_PEER = ROOT / "peers" / "rtrec_peer.py"
RTREC_VERSION = "0.2.7"
METRICS = ("hr@10", "ndcg@10")


@dataclass
class StreamSplit:
    """``train`` then ``stream`` (time order, held-out events removed) and each user's held-out event."""

    train: list[Event]
    stream: list[Event]
    test: dict[str, Event]

    def had(self) -> dict[str, set[str]]:
        """The items each user had before their held-out event: what their top-K must leave out."""
        out: dict[str, set[str]] = {}
        for e in self.train + self.stream:
            if e.item_id is not None:
                out.setdefault(e.user_id, set()).add(e.item_id)
        return out


def _is_item_event(e: Event) -> bool:
    return e.item_id is not None and e.type is not EventType.SEARCH


def split_stream(events: Sequence[Event], fraction: float = 0.2) -> StreamSplit:
    """Hold out each user's last item event; cut the rest (time order kept) at ``fraction``.

    A user with a single item event keeps it in training or stream: with nothing before it there is
    no history to recommend from. ``train`` is the first ``int(len(rest) * fraction)`` events.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction {fraction!r} must be between 0 and 1")
    if any(b.timestamp < a.timestamp for a, b in zip(events, events[1:], strict=False)):
        raise ValueError("events must be sorted by timestamp")
    last: dict[str, int] = {}
    count: dict[str, int] = {}
    for n, e in enumerate(events):
        if _is_item_event(e):
            last[e.user_id] = n
            count[e.user_id] = count.get(e.user_id, 0) + 1
    held = {n: user for user, n in last.items() if count[user] >= 2}
    rest = [e for n, e in enumerate(events) if n not in held]
    cut = int(len(rest) * fraction)
    return StreamSplit(rest[:cut], rest[cut:], {user: events[n] for n, user in held.items()})


def _synthetic_size(text: str) -> tuple[int, int]:
    """``ITEMS:EVENTS`` as two positive integers (argparse reports a ValueError as a usage error)."""
    items, sep, events = text.partition(":")
    if not sep or not items.isdigit() or not events.isdigit() or int(items) < 1 or int(events) < 1:
        raise argparse.ArgumentTypeError(f"expected ITEMS:EVENTS as two positive integers, got {text!r}")
    return int(items), int(events)


def synthetic_stream(items: int, events: int, seed: int = 0) -> tuple[list[Item], list[Event]]:
    """A ``liverec synth`` world's catalog and its events in time order (held in memory: ~0.5 GB per 1M)."""
    from liverec.datasets.synthetic import ScaleSpec, SyntheticWorld

    world = SyntheticWorld(ScaleSpec(items=items, events=events, seed=seed))
    catalog = [item for batch in world.item_batches() for item in batch]
    stream = [e for batch in world.event_batches() for e in batch]
    stream.sort(key=lambda e: e.timestamp)  # stable: batches are already in time order
    return catalog, stream


def write_peer_input(split: StreamSplit, path: Path) -> None:
    """The peer's TSV: train and stream rows in time order, then one row per test user without its item."""
    with path.open("w", encoding="utf-8") as f:
        for part, events in (("train", split.train), ("stream", split.stream)):
            for e in events:
                if not _is_item_event(e):
                    continue
                value = e.value if e.type is EventType.RATE and e.value is not None else 1.0
                f.write(f"{part}\t{e.user_id}\t{e.item_id}\t{e.timestamp!r}\t{value!r}\n")
        for user in sorted(split.test):
            f.write(f"test\t{user}\t\t{split.test[user].timestamp!r}\t\n")


def rtrec_problem(python: Path = RTREC_PYTHON) -> str | None:
    """Why the rtrec peer cannot run here, or None."""
    if not python.exists():
        return f"{python.parent.parent.name} is missing: run `make bench-streaming` to build it"
    try:
        done = subprocess.run([str(python), "-c", "import rtrec; print(rtrec.__version__)"],
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{python} cannot import rtrec: {e}"
    version = done.stdout.strip()
    if done.returncode != 0 or version != RTREC_VERSION:
        return (f"{python} has rtrec {version or 'not at all'}, the benchmark needs {RTREC_VERSION}: "
                "remove .venv-rtrec and run `make bench-streaming`")
    return None


def run_rtrec(split: StreamSplit, k: int, batch: int, seed: int, retrain: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liverec-streaming-") as work:
        events, out = Path(work) / "events.tsv", Path(work) / "rtrec.json"
        write_peer_input(split, events)
        cmd = [str(RTREC_PYTHON), str(RTREC_PEER), "--events", str(events), "--out", str(out), "--k", str(k),
               "--batch", str(batch), "--seed", str(seed)] + (["--retrain"] if retrain else [])
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL)  # its progress lines go straight to stderr
        if done.returncode != 0:
            raise SystemExit(f"streaming: the rtrec peer failed with exit code {done.returncode}")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return result


def _ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {"p50": round(float(np.percentile(ms, 50)), 4), "p99": round(float(np.percentile(ms, 99)), 4),
            "mean": round(float(ms.mean()), 4), "n": int(ms.size)}


def _rank_liverec(system: Any, users: Sequence[str], now: Mapping[str, float], k: int) -> dict[str, Any]:
    lists: dict[str, list[str]] = {}
    times = []
    for user in users:
        started = time.perf_counter()
        lists.update(system.recommend([user], k, now={user: now[user]}))
        times.append(time.perf_counter() - started)
    return {"lists": lists, "recommend_ms": _ms(times)}


def run_liverec(items: Sequence[Item], split: StreamSplit, k: int, seed: int, retrain: bool = True) -> dict[str, Any]:
    from liverec.evaluation.systems import Liverec

    users = sorted(split.test)
    now = {u: split.test[u].timestamp for u in users}
    system = Liverec(seed=seed)
    _log(f"liverec: fitting on {len(split.train):,} train events")
    started = time.perf_counter()
    system.fit(items, split.train)
    fit_seconds = time.perf_counter() - started
    _log(f"liverec: fitted in {fit_seconds:.1f} s; streaming {len(split.stream):,} events one at a time")
    update_times = []
    for e in split.stream:
        started = time.perf_counter()
        system.observe([e])
        update_times.append(time.perf_counter() - started)
    stream_seconds = float(sum(update_times))
    streamed = _rank_liverec(system, users, now, k)
    out: dict[str, Any] = {}
    if retrain:
        _log("liverec: retraining on everything streamed (the reference row)")
        started = time.perf_counter()
        system.engine.train()
        retrain_seconds = time.perf_counter() - started
        out["retrained"] = {"fit_seconds": round(retrain_seconds, 3), **_rank_liverec(system, users, now, k)}
    system.close()
    return out | {
        "config": system.config,
        "update": "per event: observe([event])",
        "fit_seconds": round(fit_seconds, 3),
        "stream_seconds": round(stream_seconds, 3),
        "events_per_second": round(len(split.stream) / stream_seconds, 1),
        "update_ms": _ms(update_times),
        "streamed": streamed,
    }


def score(lists: Mapping[str, Sequence[str]], split: StreamSplit, users: Sequence[str],
          k: int) -> dict[str, np.ndarray]:
    """Per-user HR@k and NDCG@k (in ``users`` order); a missing list scores 0."""
    hr, ndcg = np.zeros(len(users)), np.zeros(len(users))
    for n, user in enumerate(users):
        row = per_user_metrics(list(lists.get(user, ()))[:k], {split.test[user].item_id or ""}, ks=(k,))
        hr[n], ndcg[n] = row[f"recall@{k}"], row[f"ndcg@{k}"]
    return {"hr@10": hr, "ndcg@10": ndcg}


def _seen_returned(lists: Mapping[str, Sequence[str]], had: Mapping[str, set[str]], k: int) -> int:
    return sum(1 for user, ranked in lists.items() for item in list(ranked)[:k] if item in had.get(user, set()))


def _log(message: str) -> None:
    sys.stderr.write(f"streaming: {message}\n")
    sys.stderr.flush()


def _ci(values: np.ndarray, seed: int) -> dict[str, Any]:
    low, high = bootstrap_ci(values, seed=seed)
    return {"mean": round(float(values.mean()), 4), "ci95": [round(low, 4), round(high, 4)]}


def _table(rows: list[dict[str, Any]], comparisons: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| system | HR@10 [95% CI] | NDCG@10 [95% CI] | HR ratio to rtrec | NDCG ratio to rtrec "
        "| stream events/s | recommend p50 ms | recommend p99 ms | fit s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        hr, nd = r["hr@10"], r["ndcg@10"]
        eps = f"{r['events_per_second']:,.0f}" if r["events_per_second"] is not None else "—"
        lines.append(
            f"| {r['system']} | {hr['mean']:.4f} [{hr['ci95'][0]:.4f}, {hr['ci95'][1]:.4f}] "
            f"| {nd['mean']:.4f} [{nd['ci95'][0]:.4f}, {nd['ci95'][1]:.4f}] "
            f"| {r['hr_ratio_to_rtrec']:.2f} | {r['ndcg_ratio_to_rtrec']:.2f} | {eps} "
            f"| {r['recommend_ms']['p50']:.2f} | {r['recommend_ms']['p99']:.2f} | {r['fit_seconds']:.1f} |"
        )
    lines += ["", "| paired, per user | Δ mean [95% CI] | p |", "|---|---|---:|"]
    for name, c in comparisons.items():
        lines.append(f"| {name} | {c['difference']:+.4f} [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}] "
                     f"| {c['p_value']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the MovieLens-100k folder")
    parser.add_argument("--fraction", type=float, default=0.2, help="share of the events trained on once")
    parser.add_argument("--k", type=int, default=10, choices=[10])
    parser.add_argument("--rtrec-batch", type=int, default=1,
                        help="stream events per rtrec update (1: every event, the protocol)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic", metavar="ITEMS:EVENTS", type=_synthetic_size,
                        help="stream a `liverec synth` world of this size instead of MovieLens (e.g. 10000:1000000)")
    parser.add_argument("--users", type=int, default=None,
                        help="score a seeded sample of this many held-out users (default: every one)")
    parser.add_argument("--no-retrain", dest="retrain", action="store_false",
                        help="leave out the two retrained-at-the-end reference rows")
    parser.add_argument("--name", default=None, help="results file name (default: streaming, or streaming-synthetic)")
    args = parser.parse_args()
    if args.users is not None and args.users < 1:
        parser.error(f"--users must be at least 1, got {args.users}")

    if args.synthetic is None and not (args.data / "u.data").is_file():
        print(f"streaming: skipped: no MovieLens-100k at {args.data} (u.data missing); pass --data")
        return
    problem = rtrec_problem()
    if problem is not None:
        print(f"streaming: skipped: {problem}")
        return
    from _report import publish  # benchmarks/ is the script's own directory

    if args.synthetic is not None:
        items, events = synthetic_stream(*args.synthetic, seed=args.seed)
        source = f"synthetic {args.synthetic[0]:,} items x {args.synthetic[1]:,} events (seed {args.seed})"
    else:
        from liverec.datasets.readers import read_dataset

        ds = read_dataset(args.data, "movielens")
        items, events, source = ds.items, ds.events, str(args.data)
    split = split_stream(events, args.fraction)
    held_out = len(split.test)
    if args.users is not None and args.users < held_out:
        chosen = np.random.default_rng(args.seed).choice(sorted(split.test), size=args.users, replace=False)
        split.test = {str(u): split.test[str(u)] for u in sorted(chosen)}
    users = sorted(split.test)
    had = split.had()
    _log(f"{len(events):,} events: {len(split.train):,} train, {len(split.stream):,} stream, "
         f"{held_out:,} held out, {len(users):,} scored")

    started = time.perf_counter()
    liverec = run_liverec(items, split, args.k, args.seed, args.retrain)
    liverec_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rtrec = run_rtrec(split, args.k, args.rtrec_batch, args.seed, args.retrain)
    rtrec_seconds = time.perf_counter() - started

    runs = {
        "liverec": (liverec["streamed"], liverec["fit_seconds"], liverec["events_per_second"]),
        "rtrec": (rtrec["streamed"], rtrec["fit_seconds"], rtrec["events_per_second"]),
    }
    if args.retrain:
        for system, run in (("liverec", liverec), ("rtrec", rtrec)):
            runs[f"{system}, retrained at end (reference)"] = (run["retrained"], run["retrained"]["fit_seconds"], None)
    per_user = {name: score(run["lists"], split, users, args.k) for name, (run, _, _) in runs.items()}
    base = per_user["rtrec"]
    rows = []
    for name, (run, fit_seconds, eps) in runs.items():
        values = per_user[name]
        rows.append({
            "system": name,
            "hr@10": _ci(values["hr@10"], args.seed),
            "ndcg@10": _ci(values["ndcg@10"], args.seed),
            "hr_ratio_to_rtrec": round(float(values["hr@10"].mean() / base["hr@10"].mean()), 3),
            "ndcg_ratio_to_rtrec": round(float(values["ndcg@10"].mean() / base["ndcg@10"].mean()), 3),
            "events_per_second": eps,
            "recommend_ms": run["recommend_ms"],
            "fit_seconds": fit_seconds,
            "seen_items_returned": _seen_returned(run["lists"], had, args.k),
            "short_lists": sum(1 for u in users if len(run["lists"].get(u, ())) < args.k),
        })
    comparisons = {}
    for a, b, label in (("liverec", "rtrec", "liverec − rtrec (streamed)"),
                        ("liverec, retrained at end (reference)", "rtrec, retrained at end (reference)",
                         "liverec − rtrec (both retrained at end)")):
        if a not in per_user:
            continue
        for metric in METRICS:
            test = paired_test(per_user[a][metric], per_user[b][metric], seed=args.seed)
            comparisons[f"{label}, {metric.upper()}"] = {
                "difference": round(test.difference, 4), "ci95": [round(test.ci_low, 4), round(test.ci_high, 4)],
                "p_value": round(test.p_value, 4), "relative": round(test.relative, 4), "users": test.users,
            }
    result = {
        "protocol": {
            "data": source, "events": len(events), "users_held_out": held_out, "users_scored": len(users),
            "held_out": "each user's last rating", "fraction_trained_once": args.fraction,
            "train_events": len(split.train), "stream_events": len(split.stream),
            "train_ends": split.train[-1].timestamp if split.train else None,
            "k": args.k, "seed": args.seed, "seen_items": "excluded by each system's own filter; counted below",
            "liverec_now": "the held-out event's timestamp", "cpu_count": os.cpu_count(),
        },
        "liverec": {key: v for key, v in liverec.items() if key not in ("streamed", "retrained")}
        | {"wall_seconds": round(liverec_seconds, 1)},
        "rtrec": {key: v for key, v in rtrec.items() if key not in ("streamed", "retrained")}
        | {"wall_seconds": round(rtrec_seconds, 1)},
        "results": rows,
        "paired": comparisons,
    }
    name = args.name or ("streaming-synthetic" if args.synthetic is not None else "streaming")
    publish(name, result, _table(rows, comparisons))


if __name__ == "__main__":
    main()
