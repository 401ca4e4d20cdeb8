"""Run rtrec 0.2.7's SLIM through a stream of events and write its top-K lists and timings as JSON.

``benchmarks/streaming.py`` runs this script as a subprocess with ``.venv-rtrec/bin/python`` (built by
``make bench-streaming``). It must not import liverec: rtrec lives in its own environment.

Input (``--events``): a tab-separated file, no header, one row per line, in time order::

    part  user_id  item_id  timestamp  rating

``part`` is ``train`` (fitted once), ``stream`` (fed to the model's online update afterwards, in file
order) or ``test`` (a user to rank at the end; its ``item_id`` and ``rating`` are empty, so the held-out
target never reaches this process).

The model is rtrec's ``SLIM`` with its defaults (the model rtrec's README, its ``experiments`` script and
its MovieLens notebook use; the rating is the interaction value, as in rtrec's own MovieLens loader), with
``random_state`` set to ``--seed``. rtrec's online update is ``model.fit(interactions)``: it adds the
interactions to the user-item matrix and refits the SLIM column (one ElasticNet regression) of every item
they touch, so ``--batch 1`` updates after every single event. Each test user is then asked for
``model.recommend(user, top_k=K + PAD, filter_interacted=True)``; the items the user had (train and stream)
are dropped again here, as a check, and the list is cut to K.

With ``--retrain`` a fresh model is also fitted on train and stream together and ranks the same users:
the reference of a batch retrain at the end.

Progress goes to stderr. A bad argument or input file exits with code 2 and one line on stderr; any
other failure exits non-zero with a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2
PARTS = ("train", "stream", "test")
# Asked for beyond K so that the list is still K long if a seen item came back (rtrec filters them itself).
PAD = 10
PROGRESS_EVERY = 5000

Interaction = tuple[str, str, float, float]  # rtrec's (user, item, timestamp, rating)


class BadInput(Exception):
    pass


@dataclass
class PeerInput:
    train: list[Interaction] = field(default_factory=list)
    stream: list[Interaction] = field(default_factory=list)
    test_users: list[str] = field(default_factory=list)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=Path, required=True, help="the TSV of train, stream and test rows")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1, help="stream events per update (1: every event)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain", action="store_true", help="also fit a fresh model on train + stream")
    args = parser.parse_args(argv)
    if args.k < 1 or args.batch < 1:
        raise BadInput(f"--k {args.k} and --batch {args.batch} must be at least 1")
    return args


def read_events(path: Path) -> PeerInput:
    """The rows of ``path``, checked: known parts, numbers, train and stream in time order."""
    if not path.is_file():
        raise BadInput(f"{path} is not a file")
    out = PeerInput()
    last = -math.inf
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 5:
                raise BadInput(f"{path}:{line_no}: expected 5 tab-separated fields "
                               f"(part, user_id, item_id, timestamp, rating), got {len(fields)}")
            part, user, item, ts_text, rating_text = fields
            if part not in PARTS:
                raise BadInput(f"{path}:{line_no}: part {part!r} is not one of {', '.join(PARTS)}")
            if not user:
                raise BadInput(f"{path}:{line_no}: empty user_id")
            if part == "test":
                if item or rating_text:
                    raise BadInput(f"{path}:{line_no}: a test row must leave item_id and rating empty")
                out.test_users.append(user)
                continue
            try:
                ts, rating = float(ts_text), float(rating_text)
            except ValueError:
                raise BadInput(f"{path}:{line_no}: timestamp {ts_text!r} or rating {rating_text!r} "
                               "is not a number") from None
            if not item or not math.isfinite(ts) or not math.isfinite(rating):
                raise BadInput(f"{path}:{line_no}: needs an item_id, a finite timestamp and a finite rating")
            if part == "stream" and not out.train:
                raise BadInput(f"{path}:{line_no}: a stream row before any train row")
            if part == "train" and out.stream:
                raise BadInput(f"{path}:{line_no}: a train row after the stream began")
            if ts < last:
                raise BadInput(f"{path}:{line_no}: timestamp {ts_text} is earlier than the row before")
            last = ts
            (out.train if part == "train" else out.stream).append((user, item, ts, rating))
    if not out.train or not out.test_users:
        raise BadInput(f"{path} has no train rows or no test rows")
    if len(set(out.test_users)) != len(out.test_users):
        raise BadInput(f"{path} names a test user twice")
    return out


def _log(message: str) -> None:
    sys.stderr.write(f"rtrec_peer: {message}\n")
    sys.stderr.flush()


def _percentiles_ms(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"p50": float("nan"), "p99": float("nan"), "mean": float("nan"), "n": 0}
    ms = sorted(s * 1000.0 for s in seconds)

    def at(q: float) -> float:  # linear interpolation, as numpy.percentile's default
        pos = q * (len(ms) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(ms) - 1)
        return ms[lo] + (ms[hi] - ms[lo]) * (pos - lo)

    return {"p50": round(at(0.50), 4), "p99": round(at(0.99), 4), "mean": round(sum(ms) / len(ms), 4),
            "n": len(ms)}


def _rank(model: Any, users: list[str], had: dict[str, set[str]], k: int) -> dict[str, Any]:
    """Top ``k`` per user (seen items dropped), with each request's wall time."""
    lists: dict[str, list[str]] = {}
    times: list[float] = []
    seen_returned = 0
    for user in users:
        started = time.perf_counter()
        ranked = model.recommend(user, top_k=k + PAD, filter_interacted=True)
        times.append(time.perf_counter() - started)
        mine = had.get(user, set())
        seen_returned += sum(1 for item in ranked[:k] if item in mine)
        lists[user] = [item for item in ranked if item not in mine][:k]
    return {"lists": lists, "recommend_ms": _percentiles_ms(times), "seen_items_returned": seen_returned}


def _slim(seed: int) -> Any:
    from rtrec.models import SLIM

    return SLIM(random_state=seed)


def _config(model: Any) -> dict[str, Any]:
    slim, inter = model.model, model.interactions
    return {
        "model": "rtrec.models.SLIM",
        "optim": slim.optim_name, "alpha": slim.alpha, "l1_ratio": slim.l1_ratio,
        "positive_only": slim.positive_only, "max_iter": slim.max_iter, "tol": slim.tol,
        "random_state": slim.random_state, "nn_feature_selection": slim.nn_feature_selection,
        "interaction_min_value": inter.min_value, "interaction_max_value": inter.max_value,
        "decay_rate": inter.decay_rate,
    }


def run(args: argparse.Namespace, data: PeerInput) -> dict[str, Any]:
    import numpy
    import rtrec
    import scipy
    import sklearn

    had: dict[str, set[str]] = {}
    for user, item, _ts, _rating in data.train + data.stream:
        had.setdefault(user, set()).add(item)

    model = _slim(args.seed)
    _log(f"fitting SLIM on {len(data.train):,} train events")
    started = time.perf_counter()
    model.fit(data.train, progress_bar=False)
    fit_seconds = time.perf_counter() - started
    _log(f"fitted in {fit_seconds:.1f} s; streaming {len(data.stream):,} events, {args.batch} per update")

    update_times: list[float] = []
    for start in range(0, len(data.stream), args.batch):
        batch = data.stream[start : start + args.batch]
        started = time.perf_counter()
        model.fit(batch, progress_bar=False)
        update_times.append(time.perf_counter() - started)
        done = start + len(batch)
        if done // PROGRESS_EVERY != start // PROGRESS_EVERY or done == len(data.stream):
            spent = sum(update_times)
            _log(f"stream {done:,}/{len(data.stream):,} events, {done / spent:,.0f} events/s so far")
    stream_seconds = sum(update_times)
    streamed = _rank(model, data.test_users, had, args.k)
    result: dict[str, Any] = {
        "rtrec_version": rtrec.__version__,
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
                     "scikit-learn": sklearn.__version__},
        "cpu_count": os.cpu_count(),
        "config": _config(model),
        "update": ("per event: model.fit([event])" if args.batch == 1
                   else f"batches of {args.batch} events in time order: model.fit(batch)"),
        "k": args.k,
        "train_events": len(data.train),
        "stream_events": len(data.stream),
        "fit_seconds": round(fit_seconds, 3),
        "stream_seconds": round(stream_seconds, 3),
        "events_per_second": round(len(data.stream) / stream_seconds, 1) if stream_seconds > 0 else None,
        "update_ms": _percentiles_ms(update_times),
        "streamed": streamed,
    }
    if args.retrain:
        _log(f"retraining a fresh SLIM on all {len(data.train) + len(data.stream):,} events")
        fresh = _slim(args.seed)
        started = time.perf_counter()
        fresh.fit(data.train + data.stream, progress_bar=False)
        result["retrained"] = {"fit_seconds": round(time.perf_counter() - started, 3),
                               **_rank(fresh, data.test_users, had, args.k)}
    return result


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        data = read_events(args.events)
    except BadInput as e:
        sys.stderr.write(f"rtrec_peer: error: {e}\n")
        return EXIT_BAD_INPUT
    result = run(args, data)
    out_path = args.out.resolve()
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.replace(tmp, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
