"""Issue 19: a spam review is stored but never learned from, so it is never a reason's evidence.

The control case is the same flow with a genuine review of the same item: that one is cited,
so the spam case's silence is the screen's doing, not a reason that would never have been given.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from liverec.core.types import Event, EventType
from liverec.datasets.demo import REFERENCE_TIME, DemoWorld, build_demo_world
from liverec.engine import Engine
from tests._worlds import world_engine

SPAM = {
    "en": "Great!!! Buy cheap followers at www.best-deals-4u.biz, use promo code WIN50, WhatsApp +1 555 0100",
    "zh": "好评返现十元，加微信 wx12345 领取优惠券，全场五折",
}


@pytest.fixture(scope="module")
def world() -> DemoWorld:
    return build_demo_world(seed=11, n_items=300, n_users=40, now=REFERENCE_TIME)


@pytest.fixture
def engine(world: DemoWorld) -> Iterator[Engine]:
    eng = world_engine(world)
    yield eng
    eng.close()


def _cited(eng: Engine, user_id: str, item_id: str, now: float) -> list[str]:
    recs = eng.recommend(user_id, k=20, now=now)
    return [r.text for rec in recs for r in rec.reasons if r.evidence == item_id]


def _review(user_id: str, item_id: str, text: str, at: float) -> Event:
    return Event(f"{user_id}-review", user_id, EventType.REVIEW, item_id, timestamp=at, text=text)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_spam_review_is_stored_quarantined_and_never_evidence(engine: Engine, world: DemoWorld,
                                                                language: str) -> None:
    item = world.items[3].item_id
    at = max(e.timestamp for e in world.events) + 60
    engine.ingest_events([_review("spammer", item, SPAM[language], at)])

    assert engine.store.events.get_many(["spammer-review"])  # stored, never dropped
    [entry] = engine.quarantined("event")
    assert (entry.key, entry.user_id) == ("spammer-review", "spammer")
    assert entry.reason.startswith("spam")
    assert _cited(engine, "spammer", item, at + 1) == []
    assert all(SPAM[language][:20] not in r.text for rec in engine.recommend("spammer", k=20, now=at + 1)
               for r in rec.reasons)

    engine.release("event", "spammer-review")  # an admin's call: then it is learned from and cited
    assert engine.state("spammer").recent
    assert _cited(engine, "spammer", item, at + 1)


def test_a_genuine_review_of_the_same_item_is_cited(engine: Engine, world: DemoWorld) -> None:
    item = world.items[3].item_id
    at = max(e.timestamp for e in world.events) + 60
    title = world.items[3].title
    engine.ingest_events([_review("reader", item, f"I really liked the {title}, it works well and arrived fast.", at)])
    assert engine.quarantined("event") == []
    assert _cited(engine, "reader", item, at + 1)
