"""The store contract on PostgreSQL, plus what only PostgreSQL promises: URLs, migrations once,
several processes' worth of pools on one schema, bulk batches, and recovery after the server drops
its connections."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from liverec.core.errors import InvalidInputError, StorageError
from liverec.core.types import Event, EventType, Item
from liverec.storage import StoreLocation, locate, open_store, postgres, postgres_snapshots
from liverec.storage.postgres import PostgresStore, PostgresUrl
from liverec.testing.store_contract import StoreContract, StoreFactory, make_events

pytestmark = pytest.mark.services


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def make_store(self, postgres_url: str) -> StoreFactory:
        return lambda: PostgresStore(postgres_url)


def test_the_url_keeps_liverecs_parameters_from_libpq_and_locates_snapshots(tmp_path: Path) -> None:
    url = f"postgresql://ann:secret@db.example:6543/shop?schema=eu&snapshots={tmp_path}&sslmode=require&pool=3"
    parsed = PostgresUrl(url)
    assert parsed.conninfo == "postgresql://ann:secret@db.example:6543/shop?sslmode=require"
    assert (parsed.schema, parsed.pool, parsed.database) == ("eu", 3, "shop")
    assert locate(url) == StoreLocation(url, tmp_path.resolve(), "shop.eu", shared=True)
    assert locate(url).side(".models") == tmp_path.resolve() / "shop.eu.models"
    assert PostgresUrl("postgres://127.0.0.1/test").schema == "liverec"


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("postgresql://ann:hunter2@db/shop?schema=Drop;Table", "schema"),
        ("postgresql://ann:hunter2@db/shop?pool=0", "pool"),
        ("postgresql://ann:hunter2@db/shop?pool=many", "pool"),
        ("postgresql://ann:hunter2@db:port/shop", "port"),
    ],
)
def test_a_bad_url_is_refused_by_name_without_its_password(url: str, names: str) -> None:
    with pytest.raises(InvalidInputError, match=names) as caught:
        locate(url)
    assert "hunter2" not in str(caught.value)


def test_an_unreachable_server_is_a_storage_error_without_the_password() -> None:
    with pytest.raises(StorageError, match="cannot open postgresql store") as caught:
        open_store("postgresql://ann:hunter2@127.0.0.1:1/test?connect_timeout=1")
    assert "hunter2" not in str(caught.value)


def test_open_store_opens_both_schemes(postgres_url: str) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        store = open_store(url)
        assert isinstance(store, PostgresStore) and store.location.shared
        store.close()


def test_workers_opening_at_once_migrate_once_and_share_one_salt(postgres_url: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(PostgresStore(postgres_url))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({store.vectors.key_salt for store in stores}) == 1
    with stores[0].database.access("reading migrations") as conn:
        rows = conn.execute("SELECT component, version FROM schema_migrations ORDER BY component, version").fetchall()
    assert rows == [("snapshots", n) for n in range(1, len(postgres_snapshots._MIGRATIONS) + 1)] + [
        ("store", n) for n in range(1, len(postgres._MIGRATIONS) + 1)]  # each version once
    for store in stores:
        store.close()


def test_an_event_appended_through_one_pool_is_read_through_another(postgres_url: str) -> None:
    a, b = PostgresStore(postgres_url), PostgresStore(postgres_url)
    assert a.events.append(make_events()) == 6
    assert [e.event_id for e in b.events.by_user("u1")] == ["e2", "e1", "e5"]
    assert b.events.append(make_events()) == 0  # a retry through the other worker stores nothing twice
    assert b.events.delete_user("u2") == 2
    assert a.events.erased_since(0, ["u1", "u2", "u3"]) == {"u2"}
    a.close()
    b.close()


def test_a_bulk_batch_is_stored_once_in_arrival_order(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    batch = [Event(f"b{k}", f"u{k % 100}", EventType.VIEW, f"i{k % 977}", timestamp=float(k // 10))
             for k in range(20_000)]
    assert store.events.append(batch + batch[:50]) == 20_000
    assert store.events.count() == 20_000
    assert [e.event_id for e in store.events.between(3.0, 4.0)] == [f"b{k}" for k in range(30, 40)]
    assert [e.event_id for e in store.events.all()] == [e.event_id for e in batch]  # pages past PAGE_SIZE
    store.close()


def test_text_postgresql_cannot_hold_is_refused_and_nothing_is_stored(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    bad = Event("n1", "u1", EventType.SEARCH, None, text="red\x00shoes", timestamp=1.0)
    with pytest.raises(InvalidInputError, match="NUL"):
        store.events.append([Event("ok", "u1", EventType.VIEW, "i1", timestamp=1.0), bad])
    with pytest.raises(InvalidInputError, match="NUL"):
        store.catalog.upsert([Item("i\x00", "Teapot")])
    assert store.events.count() == 0 and store.catalog.count() == 0
    store.close()


def test_connections_the_server_dropped_are_replaced_without_a_restart(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    store.events.append(make_events())
    schema = PostgresUrl(postgres_url).schema
    import psycopg

    with psycopg.connect(PostgresUrl(postgres_url).conninfo, autocommit=True) as admin:
        # What a server restart does to this process's pool: every connection of it is gone.
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                      " AND application_name = %s", (f"liverec-{schema}",))
    assert store.events.count() == 6
    store.close()


def test_checkpoint_vacuums_after_an_erasure(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    store.events.append(make_events())
    store.events.delete_user("u1")
    store.checkpoint()
    assert store.events.count() == 3
    store.close()


def test_catalog_changes_through_one_worker_are_listed_to_another(postgres_url: str) -> None:
    a, b = PostgresStore(postgres_url), PostgresStore(postgres_url)
    start, _ = b.catalog.changes_since(None)  # type: ignore[attr-defined]
    a.catalog.upsert([Item("i1", "Teapot"), Item("i2", "Kettle"), Item("i1", "Teapot, blue")])
    a.catalog.delete("i2")
    a.catalog.delete("nope")  # nothing deleted: nothing to tell
    position, changed = b.catalog.changes_since(start)  # type: ignore[attr-defined]
    assert changed == ["i1", "i2"] and position > start
    assert b.catalog.changes_since(position) == (position, [])  # type: ignore[attr-defined]
    a.close()
    b.close()


def test_a_catalog_change_wakes_a_waiting_worker_at_once(postgres_url: str) -> None:
    a, b = PostgresStore(postgres_url), PostgresStore(postgres_url)
    b.wait_for_change(5.0)  # the first wait starts listening, and reports the (re)connection
    threading.Timer(0.3, lambda: a.catalog.upsert([Item("i1", "Teapot")])).start()
    assert b.wait_for_change(10.0) is True
    assert b.wait_for_change(0.2) is False  # nothing more was announced
    a.close()
    b.close()


def test_the_training_lock_admits_one_process_of_the_store_at_a_time(postgres_url: str) -> None:
    from liverec.core.errors import ConflictError

    a, b = PostgresStore(postgres_url), PostgresStore(postgres_url)
    with a.exclusive("training"):
        with pytest.raises(ConflictError, match="training"), b.exclusive("training"):
            pass
    with b.exclusive("training"):  # released when the holder's block ended
        pass
    a.close()
    b.close()


def test_the_feedback_log_and_key_store_share_the_stores_pool_and_leave_it_open(postgres_url: str) -> None:
    url = postgres_url.replace("pool=4", "pool=1")
    store = PostgresStore(url)
    log, keys = store.feedback_log(), store.key_store()
    schema = PostgresUrl(url).schema
    log.record_served("r1", "control", "u1", ["i1"])
    keys.create("ops", ["admin"])
    with store.database.access("counting connections") as conn:
        opened = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                              (f"liverec-{schema}",)).fetchone()[0]
    assert opened == 1  # one pool of one connection for the three (three pools would hold three)
    log.close()
    keys.close()
    store.events.append(make_events()[:1])  # closing the shares left the store's pool open
    assert store.events.count() == 1
    store.close()
