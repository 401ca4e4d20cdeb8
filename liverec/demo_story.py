"""The narrated demo behind ``liverec demo``: build the world, train, watch one user's interest move."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.progress import Progress
from rich.table import Table

from liverec.core.types import Recommendation
from liverec.datasets.demo import DemoWorld, build_demo_world
from liverec.engine import Engine

NARRATED_FROM = "cameras"
NEW_INTEREST = "hiking"
BURST = 3
BURST_LEAD = 600.0  # the burst starts ten minutes ago: its events are seconds apart and all in the past


def pick_user(world: DemoWorld, category: str) -> str:
    """The simulated user whose history leans most on ``category`` (ties: most events)."""
    counts: dict[str, Counter[str]] = {}
    for e in world.events:
        if e.item_id is not None:
            counts.setdefault(e.user_id, Counter())[world.category_of(e.item_id)] += 1
    ranked = sorted(counts, key=lambda u: (-counts[u][category] / sum(counts[u].values()), -sum(counts[u].values()), u))
    return ranked[0]


def category_mix(engine: Engine, recs: list[Recommendation]) -> str:
    cats = Counter(c for r in recs if (it := engine.items.find(r.item_id)) for c in it.categories[:1])
    return ", ".join(f"{c} ×{n}" for c, n in cats.most_common())


def _recs_table(engine: Engine, recs: list[Recommendation], title: str) -> Table:
    # Whole titles, wrapped in their column: a cut title hides what tells two items apart.
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("item", overflow="fold", ratio=3)
    table.add_column("category", no_wrap=True)
    table.add_column("why", overflow="fold", ratio=4)
    for n, r in enumerate(recs, 1):
        item = engine.items.get(r.item_id)
        table.add_row(str(n), item.title, ", ".join(item.categories), "; ".join(x.text for x in r.reasons))
    return table


def _earlier_clock(engine: Engine, world: DemoWorld) -> float | None:
    """The ``now`` an earlier run built this store's demo world with, when it was another one.

    The world is rebuilt at the wall clock on every run, but a store that already holds it must
    get the same events again (an event id sent with another time is a conflict): the first of
    the world's events found in the store tells by how much its clock was shifted.
    """
    probe = {e.event_id: e for e in world.events[:200]}
    for event_id, stored in engine.store.events.get_many(probe).items():
        mine = probe[event_id]
        if (stored.type, stored.item_id) == (mine.type, mine.item_id):
            now = world.reference_time + (stored.timestamp - mine.timestamp)
            return now if now != world.reference_time else None
    return None


def _tags(engine: Engine, user_id: str) -> str:
    return ", ".join(f"{t} ({w:.1f})" for t, w in engine.interests(user_id, k=8))


def run_demo(
    *,
    store: str,
    seed: int,
    user_id: str | None,
    n_items: int = 2400,
    n_users: int = 400,
    console: Console,
    progress: Callable[[], Progress],
    train: Callable[[Engine], Any],
) -> None:
    """Build the demo world into ``store``, train, and narrate one user's real-time shift."""
    t0 = time.perf_counter()
    with progress() as bar:
        task = bar.add_task("building the demo world", total=1)
        world = build_demo_world(seed=seed, n_items=n_items, n_users=n_users)
        bar.update(task, advance=1)
    engine = Engine.open(store)
    earlier = _earlier_clock(engine, world)
    if earlier is not None:
        world = build_demo_world(seed=seed, n_items=n_items, n_users=n_users, now=earlier)
    console.print(
        f"demo world: {len(world.items)} items in {len(world.categories)} categories, "
        f"{len(world.users)} users, {len(world.events)} events up to "
        f"{datetime.fromtimestamp(world.reference_time, UTC):%Y-%m-%d %H:%M} UTC"
    )
    with progress() as bar:
        task = bar.add_task("ingesting items (encoding texts)", total=len(world.items))
        for start in range(0, len(world.items), 256):
            items = world.items[start : start + 256]
            engine.ingest_items(items)
            bar.update(task, advance=len(items))
        task = bar.add_task("ingesting events", total=len(world.events))
        for start in range(0, len(world.events), 2000):
            events = world.events[start : start + 2000]
            engine.ingest_events(events)
            bar.update(task, advance=len(events))
    user = user_id or pick_user(world, NARRATED_FROM)
    if len(engine.store.events.by_user(user)) != len(world.events_of(user)):
        # A rerun on the same store: put the user back to their simulated history before
        # training, so the story starts where it did the first time.
        engine.forget_user(user)
        engine.ingest_events(world.events_of(user))
        console.print(f"[dim]reset {user} to their simulated history (an earlier run had moved them)[/]")
    report = train(engine)
    console.print(
        f"trained snapshot {report.version} in {report.seconds.get('total', 0):.1f}s; "
        f"recall weights tuned on {report.validation_users} held-out next events: "
        + ", ".join(f"{k}={v:g}" for k, v in report.weights.items())
        + f" (NDCG@10 {report.validation.get('ndcg@10', 0):.3f}"
        + f" vs {report.validation.get('ndcg@10_equal_weights', 0):.3f} with equal weights)"
    )

    before = engine.recommend(user, k=10)
    console.print(Panel.fit(f"[bold]{user}[/] — interests: {_tags(engine, user)}", title="who we follow"))
    console.print(_recs_table(engine, before, f"recommendations now ({category_mix(engine, before)})"))

    last = max(e.timestamp for e in engine.store.events.by_user(user))
    burst = world.burst(user, NEW_INTEREST, n=BURST, start=max(last + 60.0, time.time() - BURST_LEAD))
    t_apply = time.perf_counter()
    engine.ingest_events(burst)
    after = engine.recommend(user, k=10)
    ms = (time.perf_counter() - t_apply) * 1000
    lines = "\n".join(f"  {e.type.value:<12} {engine.items.get(e.item_id or '').title}" for e in burst)
    console.print(Panel.fit(f"{user} now does {len(burst)} things in '{NEW_INTEREST}':\n{lines}", title="new interest"))
    console.print(f"[dim]ingest + next recommend took {ms:.0f} ms — no retraining[/]")
    console.print(f"interests now: {_tags(engine, user)}")
    console.print(_recs_table(engine, after, f"recommendations after ({category_mix(engine, after)})"))
    console.print(f"[green]demo finished in {time.perf_counter() - t0:.0f}s; store: {store}[/]")
    engine.close()
