"""The store contract against every backend, plus what only SQLite promises, and open_store's and
locate's URL parsing."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from liverec import storage
from liverec.core.errors import InvalidInputError, StorageError
from liverec.core.types import Event, EventType
from liverec.storage import MemoryStore, SqliteStore, StoreLocation, locate, open_store, register_backend
from liverec.storage.sqlite import SCHEMA_VERSION
from liverec.testing.store_contract import StoreContract, StoreFactory, make_events, make_items


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_large_batch_keeps_arrival_order_and_counts_each_new_event_once(backend: str, tmp_path: Path) -> None:
    # 350 events span several INSERT statements in SQLite; every third shares one timestamp.
    store = MemoryStore() if backend == "memory" else SqliteStore(tmp_path / "liverec.db")
    store.events.append([Event("n7", "u1", EventType.VIEW, "i1", timestamp=5.0)])
    batch = [Event(f"n{k}", f"u{k % 4}", EventType.CLICK, f"i{k}", timestamp=float(k % 3 and k)) for k in range(350)]
    duplicates = [batch[5], batch[150], batch[349]]  # a retry inside the batch, across statements
    assert store.events.append(batch[:200] + duplicates + batch[200:]) == 349  # n7 was stored before
    assert store.events.count() == 350
    at_zero = [e.event_id for e in store.events.between(0.0, 1.0)]
    assert at_zero == [f"n{k}" for k in range(0, 350, 3)]  # same time: the order they arrived in
    stored_n7 = [e for e in store.events.by_user("u1") if e.event_id == "n7"]
    assert stored_n7 == [Event("n7", "u1", EventType.VIEW, "i1", timestamp=5.0)]  # the first content is kept
    store.close()


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def make_store(self) -> StoreFactory:
        return MemoryStore

    def test_has_no_directory(self) -> None:
        assert MemoryStore().location.directory is None

    def test_lives_nowhere_on_disk_and_in_no_other_process(self) -> None:
        assert MemoryStore().location == StoreLocation("memory://", None, "memory", shared=False)


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> StoreFactory:
        return lambda: SqliteStore(tmp_path / "liverec.db")

    def test_its_directory_is_the_directory_of_the_file(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "data" / "liverec.db")
        assert store.location.directory == tmp_path.resolve() / "data"
        assert store.url == f"sqlite:///{tmp_path}/data/liverec.db"
        assert store.location == StoreLocation(store.url, tmp_path.resolve() / "data", "liverec.db", shared=True)
        assert store.location.side(".models") == tmp_path.resolve() / "data" / "liverec.db.models"
        store.close()

    def test_data_survives_close_and_reopen(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "liverec.db")
        store.events.append(make_events())
        store.catalog.upsert(make_items())
        store.vectors.put_many("use", {"k": np.array([0.1, 0.2], dtype=np.float32)})
        store.close()

        reopened = SqliteStore(tmp_path / "liverec.db")
        assert [event.event_id for event in reopened.events.all()] == ["e2", "e3", "e1", "e4", "e5", "e6"]
        assert list(reopened.catalog.all()) == make_items()
        assert reopened.vectors.get_many("use", ["k"])["k"].tolist() == np.array([0.1, 0.2], np.float32).tolist()
        assert reopened.events.append(make_events()) == 0
        reopened.close()

    def test_runs_in_wal_mode_with_full_sync_and_a_schema_version(self, tmp_path: Path) -> None:
        SqliteStore(tmp_path / "liverec.db").close()
        conn = sqlite3.connect(tmp_path / "liverec.db")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        conn.close()

    def test_a_batch_that_fails_midway_stores_nothing(self, tmp_path: Path) -> None:
        store = SqliteStore(tmp_path / "liverec.db")
        store.events.append(make_events()[:1])
        # A trigger makes SQLite itself fail on the second new event of the batch, after the first was inserted.
        other = sqlite3.connect(tmp_path / "liverec.db")
        other.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.user_id = 'bad'"
            " BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
        )
        other.commit()
        other.close()
        batch = [
            Event("n1", "u9", EventType.VIEW, "i1", timestamp=1.0),
            Event("n2", "bad", EventType.VIEW, "i1", timestamp=2.0),
            Event("n3", "u9", EventType.VIEW, "i1", timestamp=3.0),
        ]
        with pytest.raises(StorageError, match="appending 3 events failed: refused by test trigger"):
            store.events.append(batch)
        assert [event.event_id for event in store.events.all()] == ["e1"]
        # The connection is usable again: no transaction was left open.
        assert store.events.append([batch[0], batch[2]]) == 2
        store.close()

    def test_a_file_from_a_newer_schema_is_refused(self, tmp_path: Path) -> None:
        conn = sqlite3.connect(tmp_path / "liverec.db")
        conn.execute("PRAGMA user_version = 99")
        conn.close()
        with pytest.raises(StorageError, match="schema version 99"):
            SqliteStore(tmp_path / "liverec.db")

    def test_a_file_that_is_not_a_database_raises_storage_error(self, tmp_path: Path) -> None:
        (tmp_path / "liverec.db").write_bytes(b"not a database at all" * 100)
        with pytest.raises(StorageError, match="cannot open sqlite store"):
            SqliteStore(tmp_path / "liverec.db")


class TestOpenStore:
    def test_memory_url(self) -> None:
        store = open_store("memory://")
        assert isinstance(store, MemoryStore)
        assert store.url == "memory://"

    def test_sqlite_url_with_a_relative_path(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        store = open_store("sqlite:///data/liverec.db")
        assert isinstance(store, SqliteStore)
        assert store.location.directory == tmp_path.resolve() / "data"
        assert store.url == "sqlite:///data/liverec.db"
        store.close()

    def test_sqlite_url_with_an_absolute_path(self, tmp_path: Path) -> None:
        store = open_store(f"sqlite:///{tmp_path}/liverec.db")
        assert str(tmp_path).startswith("/")
        assert isinstance(store, SqliteStore)
        assert store.location.directory == tmp_path.resolve()
        assert (tmp_path / "liverec.db").exists()
        store.close()

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("mysql://localhost/liverec", "unknown scheme 'mysql'; known: memory://, sqlite://, postgresql://, postgres://"),
            ("foo", "'foo' has no scheme; expected one of memory://, sqlite://"),
            ("liverec.db", "'liverec.db' has no scheme"),
            ("sqlite://liverec.db", "has no file path; expected sqlite:///relative/path.db"),
            ("sqlite:///", "has no file path"),
            ("sqlite:///:memory:", "use memory://"),
        ],
    )
    def test_bad_urls_are_refused_naming_the_url(self, url: str, message: str) -> None:
        with pytest.raises(InvalidInputError, match=re.escape(message)) as caught:
            open_store(url)
        assert caught.value.field == "url"
        assert caught.value.value == url
        assert repr(url) in str(caught.value)


class TestLocate:
    @pytest.mark.parametrize(
        ("url", "as_stored", "directory", "name"),
        [
            ("sqlite:///path/to/x.db", "sqlite:///path/to/x.db", "path/to", "x.db"),
            ("SQLITE:///x.db", "sqlite:///x.db", ".", "x.db"),
            ("sqlite:///data//shop.db", "sqlite:///data/shop.db", "data", "shop.db"),
        ],
    )
    def test_a_relative_sqlite_url_lives_under_the_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, as_stored: str, directory: str, name: str
    ) -> None:
        monkeypatch.chdir(tmp_path)
        where = locate(url)
        assert where == StoreLocation(as_stored, (tmp_path / directory).resolve(), name, shared=True)
        assert where.side(".keys.db") == (tmp_path / directory).resolve() / f"{name}.keys.db"
        assert list(tmp_path.iterdir()) == []  # nothing was opened or created

    def test_an_absolute_sqlite_url(self) -> None:
        where = locate("sqlite:////srv/liverec/x.db")
        assert (where.url, where.name, where.shared) == ("sqlite:////srv/liverec/x.db", "x.db", True)
        assert where.directory == Path("/srv/liverec").resolve()
        assert where.side(".feedback.db") == Path("/srv/liverec").resolve() / "x.db.feedback.db"

    def test_memory_lives_nowhere(self) -> None:
        assert locate("memory://") == StoreLocation("memory://", None, "memory", shared=False)
        assert locate("memory://").side(".keys.db") is None

    @pytest.mark.parametrize("url", ["redis://localhost", "x.db", "sqlite://", "sqlite:///", "sqlite:///:memory:"])
    def test_urls_open_store_refuses_are_refused_the_same_way(self, url: str) -> None:
        with pytest.raises(InvalidInputError, match=re.escape(repr(url))) as info:
            locate(url)
        assert info.value.field == "url"
        with pytest.raises(InvalidInputError) as opened:
            open_store(url)
        assert str(opened.value) == str(info.value)

    def test_a_registered_backend_is_opened_and_located_by_its_scheme(self) -> None:
        seen: list[tuple[str, str]] = []

        def open_fake(url: str, rest: str) -> MemoryStore:
            seen.append((url, rest))
            return MemoryStore(url)

        def locate_fake(url: str, rest: str) -> StoreLocation:
            return StoreLocation(url, None, rest or "fake", shared=False)

        register_backend("fake", open=open_fake, locate=locate_fake)
        try:
            assert open_store("FAKE://abc").url == "FAKE://abc"
            assert seen == [("FAKE://abc", "abc")]
            assert locate("fake://abc") == StoreLocation("fake://abc", None, "abc", shared=False)
            with pytest.raises(InvalidInputError, match="already registered"):
                register_backend("fake", open=open_fake, locate=locate_fake)
            with pytest.raises(InvalidInputError, match="known: memory://, sqlite://, postgresql://, postgres://, fake://"):
                open_store("nope://")
        finally:
            del storage._BACKENDS["fake"]
