"""Quality of interest tags on the demo world: how many of a user's top 5 tags name a topic they have.

Every demo user really has one to three categories (their hidden profile) and every category is
written from its own vocabulary, so a tag can be judged without a human: it is right when it
belongs to the vocabulary of one of the user's categories (see liverec.datasets.demo.topics for
what "belongs" means — units, counted words and wording common to many categories do not). The
items' own tags are judged the same way against the item's category (category ids left out, they
are always right). Wrong tags are split into off-topic, common wording and unknown (template
words, units, fragments), and the most frequent wrong ones are listed.

Prints JSON and a markdown table (and writes both under benchmarks/results/).

    python benchmarks/tag_quality.py [--users 400] [--items 2400] [--k 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from dataclasses import asdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _report import publish  # noqa: E402  (benchmarks/ is the script's own directory)

from liverec.datasets.demo import REFERENCE_TIME, build_demo_world  # noqa: E402
from liverec.datasets.demo.topics import TagPrecision, tag_precision, user_topics  # noqa: E402
from liverec.engine import Engine  # noqa: E402


def _row(name: str, r: TagPrecision) -> str:
    return (f"| {name} | {r.precision:.3f} | {r.micro:.3f} | {r.off_topic:.3f} | {r.common:.3f} | {r.unknown:.3f} "
            f"| {r.users} | {r.tags} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--items", type=int, default=2400)
    parser.add_argument("--k", type=int, default=5, help="top tags judged per user and per item")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    t0 = time.perf_counter()
    world = build_demo_world(seed=args.seed, n_items=args.items, n_users=args.users, now=REFERENCE_TIME)
    tmp = tempfile.mkdtemp(prefix="liverec-bench-")
    engine = Engine.open(f"sqlite:///{tmp}/tags.db")
    engine.ingest_items(world.items)
    for start in range(0, len(world.events), 5000):
        engine.ingest_events(world.events[start : start + 5000])

    truth = user_topics(world.users)
    shown = {u.user_id: [t for t, _ in engine.interests(u.user_id, k=args.k)] for u in world.users}
    language = {u.user_id: u.language for u in world.users}
    users = {
        "all users": tag_precision(truth, shown, args.k),
        **{f"{lang} users": tag_precision(truth, {u: t for u, t in shown.items() if language[u] == lang}, args.k)
           for lang in ("en", "zh")},
    }
    item_truth = {i.item_id: frozenset(i.categories) for i in world.items}
    item_tags = {i.item_id: [t for t in engine.items.tags(i.item_id) if t not in i.categories] for i in world.items}
    items = {
        f"{lang} items": tag_precision(item_truth, {i.item_id: item_tags[i.item_id] for i in world.items
                                                    if i.language == lang}, args.k)
        for lang in ("en", "zh")
    }
    top = Counter(t for tags in shown.values() for t in tags)
    result = {
        "world": {"seed": args.seed, "items": len(world.items), "users": len(world.users), "events": len(world.events)},
        "k": args.k,
        "seconds": round(time.perf_counter() - t0, 1),
        "users": {name: asdict(r) for name, r in users.items()},
        "items": {name: asdict(r) for name, r in items.items()},
        "most_shown_tags": top.most_common(25),
    }
    lines = [
        f"| top-{args.k} tags of | precision (mean per user/item) | micro | off-topic | common | unknown | n | tags |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *(_row(name, r) for name, r in {**users, **items}.items()),
        "",
        "most frequent wrong tags that name no topic (users): "
        + ", ".join(f"{t} ×{n}" for t, n in users["all users"].worst),
        "",
        "most frequent wrong tags that name no topic (items): "
        + ", ".join(f"{t} ×{n}" for r in items.values() for t, n in r.worst[:8]),
    ]
    publish("tag_quality", result, "\n".join(lines))
    engine.close()


if __name__ == "__main__":
    main()
