"""The contract every :class:`~liverec.storage.base.Store` keeps, as one reusable test suite.

Subclass :class:`StoreContract` in a test module and override the ``make_store`` fixture to
return a function that opens the backend under test::

    class TestSqliteStore(StoreContract):
        @pytest.fixture
        def make_store(self, tmp_path):
            return lambda: SqliteStore(tmp_path / "liverec.db")

Each test runs on a few hand-made events and items whose right answer is known and asserts it
exactly, so a backend passes only if it returns what the reference :class:`MemoryStore` returns.
A store must also know where it lives (``location``, equal to ``locate(url)``) and open its
feedback log and key store; their own contracts are ``feedback_contract`` and ``keystore_contract``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from liverec.core.errors import InvalidInputError, NotFoundError, StorageError
from liverec.core.types import Event, EventType, Item
from liverec.storage import locate, open_store
from liverec.storage.base import Catalog, EventLog, FeedbackLog, KeyStore, Store, StoreLocation, VectorCache
from liverec.storage.quarantine import Quarantined

StoreFactory = Callable[[], Store]


def make_events() -> list[Event]:
    """Six events of three users, deliberately not in time order, with ties at t=10."""
    return [
        Event("e1", "u1", EventType.VIEW, "i1", timestamp=10.0, session_id="s1"),
        Event("e2", "u1", EventType.CLICK, "i2", timestamp=5.0, session_id="s1"),
        Event("e3", "u2", EventType.PURCHASE, "i1", value=2.0, timestamp=7.0),
        Event("e4", "u2", EventType.SEARCH, None, text="red shoes", timestamp=10.0),
        Event("e5", "u1", EventType.RATE, "i3", value=4.0, timestamp=10.0),
        Event("e6", "u3", EventType.REVIEW, "i2", value=5.0, text="很好, great", timestamp=20.0),
    ]


def make_items() -> list[Item]:
    """Three items using every field, one in Chinese."""
    return [
        Item("i1", "Red running shoes", "Light shoes for the road", ("shoes",), ("red", "running"), "en",
             {"price": 59.9, "sizes": [40, 41]}, True, 100.0),
        Item("i2", "蓝色外套", "冬天的外套", ("coats",), (), "zh", {}, False, 200.0),
        Item("i3", "Teapot", created_at=300.0),
    ]  # fmt: skip


def _ids(events: Iterable[Event]) -> list[str]:
    return [event.event_id for event in events]


class StoreContract:
    """Tests every store backend must pass; subclasses override :meth:`make_store`."""

    @pytest.fixture
    def make_store(self) -> StoreFactory:
        """Return a function that opens a new, empty store of the backend under test."""
        raise NotImplementedError("override the make_store fixture in the subclass")

    @pytest.fixture
    def store(self, make_store: StoreFactory) -> Iterator[Store]:
        store = make_store()
        yield store
        store.close()

    def test_is_a_store(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert isinstance(store.events, EventLog)
        assert isinstance(store.catalog, Catalog)
        assert isinstance(store.vectors, VectorCache)
        assert store.url
        assert store.events.count() == 0 and store.catalog.count() == 0

    # --- where it lives ------------------------------------------------------------------------

    def test_knows_its_location_as_locate_reads_it_from_the_url(self, store: Store) -> None:
        where = store.location
        assert isinstance(where, StoreLocation)
        assert where.url == store.url
        assert locate(store.url) == where
        assert where.name
        if where.directory is None:
            assert where.side(".models") is None
        else:
            assert where.directory.is_absolute()
            assert where.side(".models") == where.directory / f"{where.name}.models"
            assert where.side(".keys.db") == where.directory / f"{where.name}.keys.db"

    def test_shared_says_whether_another_open_of_the_url_sees_the_data(self, store: Store) -> None:
        store.events.append(make_events()[:2])
        other = open_store(store.url)
        try:
            assert other.events.count() == (2 if store.location.shared else 0)
        finally:
            other.close()

    def test_opens_a_working_feedback_log(self, store: Store) -> None:
        log = store.feedback_log()
        try:
            assert isinstance(log, FeedbackLog)
            log.record_served("r1", "control", "u1", ["i1", "i2"])
            assert log.record("r1", "click", ["i2"]).clicks == 1
            assert [(c.name, c.requests, c.impressions, c.clicks) for c in log.counts()] == [("control", 1, 1, 1)]
        finally:
            log.close()

    def test_keys_created_through_one_key_store_are_seen_by_the_next(self, store: Store) -> None:
        keys = store.key_store()
        assert isinstance(keys, KeyStore)
        token, key = keys.create("ops", ["admin"])
        keys.close()
        again = store.key_store()
        try:
            assert again.verify(token) == key
            assert again.list() == [key]
        finally:
            again.close()

    # --- the event log -------------------------------------------------------------------------

    def test_append_returns_number_of_new_events(self, store: Store) -> None:
        assert store.events.append(make_events()) == 6
        assert store.events.count() == 6
        assert store.events.append([]) == 0

    def test_retry_of_the_same_batch_stores_nothing_twice(self, store: Store) -> None:
        store.events.append(make_events())
        assert store.events.append(make_events()) == 0
        assert store.events.count() == 6
        assert _ids(store.events.all()) == ["e2", "e3", "e1", "e4", "e5", "e6"]

    def test_a_batch_with_an_internal_duplicate_counts_it_once(self, store: Store) -> None:
        first, second = make_events()[:2]
        assert store.events.append([first, second, first]) == 2
        assert store.events.count() == 2

    def test_existing_names_exactly_the_stored_ids(self, store: Store) -> None:
        store.events.append(make_events()[:2])
        ids = [e.event_id for e in make_events()]
        assert store.events.existing(ids) == set(ids[:2])
        assert store.events.existing([]) == set()

    def test_get_many_returns_the_stored_events_by_id(self, store: Store) -> None:
        events = make_events()
        store.events.append(events[:3])
        found = store.events.get_many(["e3", "e9", "e1", "e3"])
        assert found == {"e1": events[0], "e3": events[2]}
        assert isinstance(found["e3"].type, EventType)
        assert store.events.get_many([]) == {}

    def test_get_many_returns_the_first_content_of_a_reused_id(self, store: Store) -> None:
        store.events.append([Event("e1", "u1", EventType.VIEW, "i1", timestamp=1.0)])
        store.events.append([Event("e1", "u2", EventType.CLICK, "i9", timestamp=2.0)])
        assert store.events.get_many(["e1"]) == {"e1": Event("e1", "u1", EventType.VIEW, "i1", timestamp=1.0)}

    def test_get_many_forgets_an_erased_users_events(self, store: Store) -> None:
        store.events.append(make_events())
        store.events.delete_user("u1")
        assert set(store.events.get_many(_ids(make_events()))) == {"e3", "e4", "e6"}

    def test_a_partly_known_batch_counts_only_the_new_events(self, store: Store) -> None:
        events = make_events()
        store.events.append(events[:4])
        assert store.events.append(events[2:]) == 2
        assert store.events.count() == 6

    def test_an_event_id_reused_with_other_content_keeps_the_first(self, store: Store) -> None:
        store.events.append([Event("e1", "u1", EventType.VIEW, "i1", timestamp=1.0)])
        assert store.events.append([Event("e1", "u1", EventType.VIEW, "i9", timestamp=2.0)]) == 0
        assert [event.item_id for event in store.events.all()] == ["i1"]

    def test_events_come_back_equal_in_every_field(self, store: Store) -> None:
        store.events.append(make_events())
        by_id = {event.event_id: event for event in store.events.all()}
        assert by_id == {event.event_id: event for event in make_events()}
        assert isinstance(by_id["e4"].type, EventType)

    def test_append_of_a_non_event_stores_nothing(self, store: Store) -> None:
        batch: list[Any] = [make_events()[0], {"user_id": "u1", "type": "view", "item_id": "i1"}]
        with pytest.raises(InvalidInputError, match="element 1 is dict") as caught:
            store.events.append(batch)
        assert caught.value.field == "events"
        assert store.events.count() == 0

    def test_by_user_is_in_time_order_even_when_appended_out_of_order(self, store: Store) -> None:
        store.events.append(make_events())
        # e1 and e5 share t=10: arrival order breaks the tie.
        assert _ids(store.events.by_user("u1")) == ["e2", "e1", "e5"]
        assert _ids(store.events.by_user("u2")) == ["e3", "e4"]
        store.events.append([Event("e0", "u1", EventType.VIEW, "i4", timestamp=1.0)])
        assert _ids(store.events.by_user("u1")) == ["e0", "e2", "e1", "e5"]

    def test_by_user_of_an_unknown_user_is_empty(self, store: Store) -> None:
        store.events.append(make_events())
        assert store.events.by_user("nobody") == []

    def test_between_includes_start_and_excludes_end(self, store: Store) -> None:
        store.events.append(make_events())
        assert _ids(store.events.between(7.0, 10.0)) == ["e3"]
        assert _ids(store.events.between(7.0, 20.0)) == ["e3", "e1", "e4", "e5"]
        assert _ids(store.events.between(10.0, 10.0)) == []
        assert _ids(store.events.between(20.0, 21.0)) == ["e6"]
        assert _ids(store.events.between(21.0, 99.0)) == []

    def test_all_is_in_time_order_then_arrival(self, store: Store) -> None:
        store.events.append(make_events())
        assert _ids(store.events.all()) == ["e2", "e3", "e1", "e4", "e5", "e6"]

    def test_reads_stream_past_any_page_size(self, store: Store) -> None:
        # Appended newest first, in pairs sharing a timestamp, so only (timestamp, arrival) sorts them.
        events = [
            Event(f"x{n}", f"u{n % 7}", EventType.VIEW, f"i{n % 11}", timestamp=float((4999 - n) // 2))
            for n in range(5000)
        ]
        assert store.events.append(events) == 5000
        in_time_order = [events[n] for n in sorted(range(5000), key=lambda n: (events[n].timestamp, n))]
        assert _ids(store.events.all()) == _ids(in_time_order)
        window = [event for event in in_time_order if 1000.0 <= event.timestamp < 2100.0]
        assert len(window) == 2200
        assert _ids(store.events.between(1000.0, 2100.0)) == _ids(window)

    def test_a_read_through_a_position_holds_exactly_what_was_stored_by_then(self, store: Store) -> None:
        assert store.events.position() == 0
        store.events.append(make_events()[:4])
        read = store.events.position()
        # stored later: one dated before everything, one between, one after, and a retry of a stored one
        late = [Event("late-early", "u2", EventType.VIEW, "i3", timestamp=1.0),
                Event("late-between", "u1", EventType.CLICK, "i1", timestamp=8.0),
                Event("late-after", "u3", EventType.VIEW, "i1", timestamp=99.0)]
        assert store.events.append([*late[:2], make_events()[0]]) == 2
        store.events.append(make_events()[4:])
        store.events.append(late[2:])
        assert _ids(store.events.all(read)) == ["e2", "e3", "e1", "e4"]
        assert _ids(store.events.all()) == ["late-early", "e2", "e3", "late-between", "e1", "e4", "e5", "e6",
                                            "late-after"]
        # what came after the read, in arrival order, up to a time
        assert _ids(store.events.arrived_after(read)) == ["late-early", "late-between", "e5", "e6", "late-after"]
        assert _ids(store.events.arrived_after(read, 10.0)) == ["late-early", "late-between", "e5"]
        now = store.events.position()
        assert now > read and _ids(store.events.arrived_after(now)) == []
        assert store.events.append([make_events()[5]]) == 0 and store.events.position() == now  # a retry stores nothing
        # an erasure takes the user's late events with it; what is stored next is still above every read
        store.events.delete_user("u3")
        assert _ids(store.events.arrived_after(read)) == ["late-early", "late-between", "e5"]
        store.events.append([Event("next", "u4", EventType.VIEW, "i1", timestamp=2.0)])
        assert _ids(store.events.arrived_after(now)) == ["next"]

    def test_late_events_past_a_page_come_back_in_arrival_order(self, store: Store) -> None:
        store.events.append([Event("first", "u0", EventType.VIEW, "i0", timestamp=1e6)])
        read = store.events.position()
        events = [Event(f"x{n}", f"u{n % 7}", EventType.VIEW, f"i{n % 11}", timestamp=float(5000 - n))
                  for n in range(5000)]
        store.events.append(events)
        assert _ids(store.events.arrived_after(read, 1e6)) == _ids(events)

    def test_delete_user_returns_the_count_and_spares_other_users(self, store: Store) -> None:
        store.events.append(make_events())
        assert store.events.delete_user("u1") == 3
        assert store.events.by_user("u1") == []
        assert _ids(store.events.all()) == ["e3", "e4", "e6"]
        assert store.events.count() == 3
        assert store.events.delete_user("u1") == 0
        assert store.events.delete_user("nobody") == 0

    def test_an_erasure_is_recorded_under_a_growing_epoch(self, store: Store) -> None:
        assert store.events.erasure_epoch() == 0
        store.events.append(make_events())
        before = store.events.erasure_epoch()
        store.events.delete_user("u1")
        first = store.events.erasure_epoch()
        assert first > before
        assert store.events.erased_since(before, ["u1", "u2", "nobody"]) == {"u1"}
        assert store.events.erased_since(first, ["u1", "u2"]) == set()
        assert store.events.delete_user("nobody") == 0
        assert store.events.erasure_epoch() == first  # nothing was erased: nothing to scrub
        store.events.delete_user("u2")
        assert store.events.erased_since(before, ["u1", "u2", "u3"]) == {"u1", "u2"}
        assert store.events.erased_since(first, ["u1", "u2", "u3"]) == {"u2"}

    def test_a_user_erased_again_is_erased_since_every_epoch_before(self, store: Store) -> None:
        store.events.append(make_events())
        store.events.delete_user("u1")
        between = store.events.erasure_epoch()
        store.events.append([Event("e7", "u1", EventType.VIEW, "i1", timestamp=30.0)])  # the user came back
        store.events.delete_user("u1")
        assert store.events.erased_since(between, ["u1"]) == {"u1"}

    def test_users_lists_each_user_with_events_once(self, store: Store) -> None:
        assert store.events.users() == []
        store.events.append(make_events())
        assert sorted(store.events.users()) == ["u1", "u2", "u3"]
        store.events.delete_user("u2")
        assert sorted(store.events.users()) == ["u1", "u3"]

    def test_the_store_may_be_used_while_iterating(self, store: Store) -> None:
        store.events.append(make_events())
        seen = [(event.event_id, len(store.events.by_user(event.user_id))) for event in store.events.all()]
        assert seen == [("e2", 3), ("e3", 2), ("e1", 3), ("e4", 2), ("e5", 3), ("e6", 1)]

    def test_appends_from_several_threads_all_arrive_once(self, store: Store) -> None:
        def append_share(thread: int) -> int:
            # Every thread also sends the first event of its neighbour: each of those must count once.
            mine = [Event(f"t{thread}-{n}", f"u{thread}", EventType.VIEW, "i1", timestamp=float(n)) for n in range(50)]
            neighbour = Event(f"t{(thread + 1) % 4}-0", f"u{(thread + 1) % 4}", EventType.VIEW, "i1", timestamp=0.0)
            return sum(store.events.append([event, neighbour]) for event in mine)

        with ThreadPoolExecutor(max_workers=4) as pool:
            new = sum(pool.map(append_share, range(4)))
        assert new == 200
        assert store.events.count() == 200
        assert sorted(store.events.users()) == ["u0", "u1", "u2", "u3"]
        assert [event.timestamp for event in store.events.by_user("u2")] == [float(n) for n in range(50)]

    # --- the catalog ---------------------------------------------------------------------------

    def test_items_come_back_equal_in_every_field(self, store: Store) -> None:
        assert store.catalog.upsert(make_items()) == 3
        for item in make_items():
            assert store.catalog.get(item.item_id) == item
        assert store.catalog.get("i1").attributes == {"price": 59.9, "sizes": [40, 41]}

    def test_upsert_replaces_content_but_keeps_count_and_place(self, store: Store) -> None:
        store.catalog.upsert(make_items())
        renamed = Item("i1", "Blue running shoes", tags=("blue",), created_at=100.0)
        assert store.catalog.upsert([renamed]) == 1
        assert store.catalog.count() == 3
        assert store.catalog.get("i1") == renamed
        assert [item.item_id for item in store.catalog.all()] == ["i1", "i2", "i3"]

    def test_the_last_of_two_versions_in_one_batch_wins(self, store: Store) -> None:
        store.catalog.upsert([Item("i1", "First", created_at=1.0), Item("i1", "Second", created_at=1.0)])
        assert store.catalog.count() == 1
        assert store.catalog.get("i1").title == "Second"

    def test_catalog_all_is_in_first_insertion_order(self, store: Store) -> None:
        items = make_items()
        store.catalog.upsert([items[2], items[0]])
        store.catalog.upsert([items[1], items[2]])
        assert [item.item_id for item in store.catalog.all()] == ["i3", "i1", "i2"]

    def test_get_of_an_unknown_item_raises_not_found(self, store: Store) -> None:
        store.catalog.upsert(make_items())
        with pytest.raises(NotFoundError, match="'nope'") as caught:
            store.catalog.get("nope")
        assert (caught.value.kind, caught.value.key) == ("item", "nope")

    def test_get_many_leaves_unknown_ids_out(self, store: Store) -> None:
        store.catalog.upsert(make_items())
        found = store.catalog.get_many(["i3", "nope", "i1"])
        assert sorted(found) == ["i1", "i3"]
        assert found["i3"] == make_items()[2]
        assert store.catalog.get_many([]) == {}

    def test_delete_returns_whether_the_item_existed(self, store: Store) -> None:
        store.catalog.upsert(make_items())
        assert store.catalog.delete("i2") is True
        assert store.catalog.delete("i2") is False
        assert store.catalog.count() == 2
        with pytest.raises(NotFoundError):
            store.catalog.get("i2")

    def test_an_item_with_attributes_json_cannot_hold_is_refused(self, store: Store) -> None:
        odd = Item("i9", "Odd", attributes={"colours": {"red", "blue"}}, created_at=1.0)
        with pytest.raises(InvalidInputError, match="'i9'") as caught:
            store.catalog.upsert([make_items()[0], odd])
        assert caught.value.field == "attributes"
        assert store.catalog.count() == 0

    # --- the vector cache ----------------------------------------------------------------------

    def test_vectors_round_trip_exactly_as_float32(self, store: Store) -> None:
        rng = np.random.default_rng(0)
        vectors: dict[str, np.ndarray] = {"k1": rng.standard_normal(8), "k2": rng.standard_normal(8).astype(np.float32)}
        store.vectors.put_many("use", vectors)
        found = store.vectors.get_many("use", ["k2", "k1", "missing"])
        assert sorted(found) == ["k1", "k2"]
        for key, vector in vectors.items():
            assert found[key].dtype == np.float32
            assert np.array_equal(found[key], vector.astype(np.float32))

    def test_vectors_are_keyed_by_encoder(self, store: Store) -> None:
        store.vectors.put_many("use", {"k": np.array([1.0, 2.0], dtype=np.float32)})
        store.vectors.put_many("e5", {"k": np.array([3.0, 4.0, 5.0], dtype=np.float32)})
        assert store.vectors.get_many("use", ["k"])["k"].tolist() == [1.0, 2.0]
        assert store.vectors.get_many("e5", ["k"])["k"].tolist() == [3.0, 4.0, 5.0]
        assert store.vectors.get_many("minilm", ["k"]) == {}

    def test_putting_a_vector_again_replaces_it(self, store: Store) -> None:
        store.vectors.put_many("use", {"k": np.array([1.0, 2.0], dtype=np.float32)})
        store.vectors.put_many("use", {"k": np.array([0.5], dtype=np.float32)})
        assert store.vectors.get_many("use", ["k"])["k"].tolist() == [0.5]

    def test_changing_a_returned_vector_does_not_change_the_cache(self, store: Store) -> None:
        store.vectors.put_many("use", {"k": np.array([1.0, 2.0], dtype=np.float32)})
        store.vectors.get_many("use", ["k"])["k"][0] = 99.0
        assert store.vectors.get_many("use", ["k"])["k"].tolist() == [1.0, 2.0]

    def test_delete_removes_vectors_of_every_encoder(self, store: Store) -> None:
        store.vectors.put_many("use", {"k": np.array([1.0], dtype=np.float32), "j": np.array([2.0], dtype=np.float32)})
        store.vectors.put_many("e5", {"k": np.array([3.0], dtype=np.float32)})
        assert store.vectors.delete(["k", "missing"]) == 2
        assert store.vectors.get_many("use", ["k", "j"]).keys() == {"j"}
        assert store.vectors.get_many("e5", ["k"]) == {}
        assert store.vectors.delete([]) == 0

    def test_key_salt_is_random_bytes_of_each_store(self, store: Store, make_store: StoreFactory) -> None:
        salt = store.vectors.key_salt
        assert isinstance(salt, bytes) and len(salt) >= 16
        assert store.vectors.key_salt == salt
        other = make_store()  # the same store again if it is shared (a file), else a new one
        try:
            assert (other.vectors.key_salt == salt) is store.location.shared
        finally:
            other.close()

    def test_a_vector_that_is_not_one_dimensional_is_refused(self, store: Store) -> None:
        with pytest.raises(InvalidInputError, match="'k'"):
            store.vectors.put_many("use", {"ok": np.ones(2), "k": np.ones((2, 2))})
        assert store.vectors.get_many("use", ["ok", "k"]) == {}

    # --- quarantine ----------------------------------------------------------------------------

    def test_quarantine_adds_once_releases_and_versions(self, store: Store) -> None:
        q = store.quarantine
        v0 = q.version()
        bot = Quarantined("user", "bot", "bot", "burst: 61 events", 5.0)
        spam = Quarantined("event", "e6", "u3", "spam: a link", 6.0)
        assert q.add([bot, spam, Quarantined("user", "bot", "bot", "again", 7.0)]) == 2
        assert q.add([bot]) == 0  # held already: the first reason stays
        v1 = q.version()
        assert v1 > v0
        assert q.entries() == [bot, spam]
        assert q.entries("event") == [spam]
        assert q.keys("user") == {"bot"} and q.keys("event") == {"e6"}
        assert q.release("user", "bot") == bot
        assert q.release("user", "bot") is None
        assert q.version() > v1 and q.keys("user") == set()
        with pytest.raises(InvalidInputError, match="kind"):
            q.release("robot", "bot")

    def test_quarantine_forgets_an_erased_user(self, store: Store) -> None:
        q = store.quarantine
        q.add([Quarantined("user", "u3", "u3", "why", 1.0), Quarantined("event", "e6", "u3", "why", 1.0),
               Quarantined("user", "u1", "u1", "why", 1.0)])
        assert q.forget_user("u3") == 2
        assert [e.key for e in q.entries()] == ["u1"]

    # --- lifetime ------------------------------------------------------------------------------

    def test_a_closed_store_refuses_further_use(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.events.append(make_events())
        store.close()
        store.close()
        with pytest.raises(StorageError, match="closed"):
            store.events.count()
        with pytest.raises(StorageError, match="closed"):
            store.catalog.get("i1")
        with pytest.raises(StorageError, match="closed"):
            store.vectors.get_many("use", ["k"])
