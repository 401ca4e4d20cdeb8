"""Issue 19's acceptance: a 10,000-click bot on one demo-world item, on a trained SQLite engine.

The item stays out of trending, co-visitation for real users is unchanged, the bot's events are
stored and quarantined, and releasing the bot restores what its events teach.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from liverec.core.errors import NotFoundError
from liverec.core.types import Event, EventType
from liverec.datasets.demo import REFERENCE_TIME, DemoWorld, build_demo_world
from liverec.engine import Engine
from tests._worlds import world_engine

BOT = "bot-7"
CLICKS = 10_000


@pytest.fixture(scope="module")
def world() -> DemoWorld:
    return build_demo_world(seed=7, n_items=600, n_users=100, now=REFERENCE_TIME)  # a quarter: trains in seconds


@pytest.fixture(scope="module")
def trained(world: DemoWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("bot") / "shop.db"
    eng = world_engine(world, train=True, url=f"sqlite:///{path}")
    yield eng
    eng.close()


def _trending(eng: Engine, k: int = 10) -> list[str]:
    assert eng.snapshot is not None
    return list(eng.snapshot.models["trending"].recommend_ranked(k)[0])


def _score(eng: Engine, item_id: str) -> float:
    assert eng.snapshot is not None
    return float(eng.snapshot.models["trending"].score_of([item_id])[0])


def _covisit(eng: Engine) -> np.ndarray:
    assert eng.snapshot is not None
    return eng.snapshot.models["covisit"].counts().toarray()


def _bot_clicks(target: str, others: list[str], start: float, gap: float, user: str) -> list[Event]:
    """``CLICKS`` clicks on ``target``, every tenth on one of ``others`` instead (so the bot forms
    co-visitation pairs a real user's items could be paired with)."""
    return [Event(f"{user}-{k}", user, EventType.CLICK, target if k % 10 else others[k // 10 % len(others)],
                  timestamp=start + k * gap) for k in range(CLICKS)]


@pytest.mark.parametrize("gap", [0.2, 30.0], ids=["burst", "timer"])  # burst: duplicates too
def test_a_click_bot_moves_neither_trending_nor_covisitation(trained: Engine, world: DemoWorld, gap: float) -> None:
    eng = trained
    user = f"{BOT}-{gap}"
    before_trending, before_covisit = _trending(eng), _covisit(eng)
    target = next(i.item_id for i in world.items if i.item_id not in before_trending)
    start = max(e.timestamp for e in world.events) + 60.0
    clicks = _bot_clicks(target, before_trending[:5], start, gap, user)
    for first in range(0, CLICKS, 500):
        eng.ingest_events(clicks[first : first + 500])

    assert target not in _trending(eng)
    np.testing.assert_array_equal(_covisit(eng), before_covisit)
    assert len(eng.store.events.by_user(user)) == CLICKS  # stored, never dropped
    [entry] = [q for q in eng.quarantined("user") if q.key == user]
    assert entry.reason.split(":")[0] in {"burst", "repeats", "regularity"}
    with pytest.raises(NotFoundError):
        eng.state(user)  # their events teach nothing, their own state included

    if gap < eng.cleaning.settings.duplicate_seconds:  # the burst ends here; the timer goes through trainings
        score = _score(eng, target)
        eng.release("user", user)
        assert _score(eng, target) > score  # the clicks that are not duplicates of one 0.2 s before count
        assert eng.quarantine_user(user, "test: a known bot")
        assert _score(eng, target) == pytest.approx(score, rel=1e-9)
        return
    # Training leaves the bot out too.
    eng.train()
    assert target not in _trending(eng)
    np.testing.assert_array_equal(_covisit(eng), before_covisit)

    # Released, the bot's clicks count again, at once in the online models and the user's state,
    # and in the next training.
    quarantined_score = _score(eng, target)
    eng.release("user", user)
    assert target in _trending(eng)
    assert len(eng.state(user).recent) > 0
    released_score = _score(eng, target)
    eng.train()
    assert _score(eng, target) == pytest.approx(released_score, rel=1e-6)
    # Quarantined again by an admin, they are taken back at once.
    assert eng.quarantine_user(user, "test: a known bot")
    assert _score(eng, target) == pytest.approx(quarantined_score, rel=1e-6)
    assert target not in _trending(eng)


def test_quarantine_survives_a_reopen_and_is_erased_with_the_user(trained: Engine) -> None:
    assert trained.quarantine_user("someone", "test")
    assert not trained.quarantine_user("someone", "test again")  # held once, first reason kept
    reopened = Engine.open(trained.store.url)
    try:
        assert [q.reason for q in reopened.quarantined("user") if q.key == "someone"] == ["test"]
    finally:
        reopened.close()
    trained.forget_user("someone")
    assert all(q.key != "someone" for q in trained.quarantined())
    with pytest.raises(NotFoundError):
        trained.release("user", "someone")
