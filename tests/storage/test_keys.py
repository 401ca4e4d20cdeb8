"""API keys: the key store contract against memory and SQLite, scopes, and what only the SQLite key
store promises (a private file of hashes, other processes' changes seen, the JSON migration)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from liverec.core.errors import InvalidInputError, StorageError
from liverec.storage import (
    SCOPES,
    ApiKey,
    MemoryKeyStore,
    MemoryStore,
    SqliteKeyStore,
    SqliteStore,
    open_key_store,
    open_store,
    sqlite_keys,
)
from liverec.testing.keystore_contract import TOKEN_RE, KeyStoreContract, KeyStoreFactory


class TestMemoryKeyStore(KeyStoreContract):
    @pytest.fixture
    def make_keys(self) -> KeyStoreFactory:
        return MemoryKeyStore


class TestSqliteKeyStore(KeyStoreContract):
    @pytest.fixture
    def make_keys(self, tmp_path: Path) -> KeyStoreFactory:
        return lambda: SqliteKeyStore(tmp_path / "liverec.db.keys.db")


# -- scopes ------------------------------------------------------------------------------------


def test_admin_implies_every_other_scope() -> None:
    admin = ApiKey("00000000", "root", frozenset({"admin"}), 0.0)
    assert all(admin.allows(scope) for scope in SCOPES)


def test_plain_scopes_allow_only_themselves() -> None:
    reader = ApiKey("00000000", "dashboard", frozenset({"read"}), 0.0)
    writer = ApiKey("00000001", "pipeline", frozenset({"ingest"}), 0.0)
    assert SCOPES == ("ingest", "read", "admin")
    assert [reader.allows(s) for s in SCOPES] == [False, True, False]
    assert [writer.allows(s) for s in SCOPES] == [True, False, False]


def test_asking_about_an_unknown_scope_fails_loudly() -> None:
    key = ApiKey("00000000", "root", frozenset({"admin"}), 0.0)
    with pytest.raises(InvalidInputError, match="'raed'"):
        key.allows("raed")


def test_as_dict_lists_scopes_sorted_and_no_secret() -> None:
    key = ApiKey("0000abcd", "n", frozenset({"read", "ingest"}), 12.5)
    assert key.as_dict() == {"key_id": "0000abcd", "name": "n", "scopes": ["ingest", "read"], "created": 12.5}


# -- memory ------------------------------------------------------------------------------------


def test_a_memory_key_store_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    keys = MemoryKeyStore()
    token, key = keys.create("a", ["read"])
    assert keys.verify(token) == key
    assert keys.revoke(key.key_id) == key
    assert len(keys) == 0
    assert os.listdir(tmp_path) == []


def test_a_memory_store_hands_out_one_key_store_that_outlives_close() -> None:
    store = MemoryStore()
    keys = store.key_store()
    token, key = keys.create("a", ["read"])
    keys.close()
    assert store.key_store() is keys
    assert store.key_store().verify(token) == key
    assert MemoryStore().key_store().verify(token) is None  # another store, other keys


# -- the SQLite file ---------------------------------------------------------------------------


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "liverec.db.keys.db"


@pytest.fixture
def ring(path: Path) -> SqliteKeyStore:
    keys = SqliteKeyStore(path)
    yield keys
    keys.close()


def _rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT key_id, name, scopes, created, token_sha256 FROM api_keys").fetchall()
    finally:
        conn.close()


def _files(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.name.startswith(path.name)]


def test_the_file_holds_hashes_never_tokens_or_secrets(ring: SqliteKeyStore, path: Path) -> None:
    token, key = ring.create("ingest bot", ["ingest"])
    secret = TOKEN_RE.fullmatch(token).group(2)  # type: ignore[union-attr]
    for file in _files(path):  # the database, its WAL and its shared memory
        data = file.read_bytes()
        assert token.encode() not in data
        assert secret.encode() not in data
    [(key_id, name, scopes, created, digest)] = _rows(path)
    assert (key_id, name, scopes, created) == (key.key_id, "ingest bot", "ingest", key.created)
    assert digest == hashlib.sha256(token.encode()).hexdigest()


def test_the_file_is_private(ring: SqliteKeyStore, path: Path) -> None:
    ring.create("a", ["read"])
    _, key = ring.create("b", ["read"])
    ring.revoke(key.key_id)
    assert {p.name for p in _files(path)} >= {path.name}
    for file in _files(path):
        assert file.stat().st_mode & 0o777 == 0o600, file


def test_an_existing_world_readable_file_becomes_private(path: Path) -> None:
    SqliteKeyStore(path).close()
    path.chmod(0o644)
    keys = SqliteKeyStore(path)
    keys.create("a", ["read"])
    assert path.stat().st_mode & 0o777 == 0o600
    keys.close()


def test_the_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "keys.db"
    ring = SqliteKeyStore(path)
    token, key = ring.create("a", ["read"])
    ring.close()
    reopened = SqliteKeyStore(path)
    assert reopened.verify(token) == key
    reopened.close()


def test_keys_persist_across_instances(ring: SqliteKeyStore, path: Path) -> None:
    token, key = ring.create("a", ["read", "ingest"])
    revoked_token, revoked = ring.create("b", ["admin"])
    ring.revoke(revoked.key_id)
    reopened = SqliteKeyStore(path)
    assert reopened.list() == [key]
    assert reopened.verify(token) == key
    assert reopened.verify(revoked_token) is None
    reopened.close()


def test_a_running_store_sees_another_instances_changes_after_the_interval(path: Path) -> None:
    server = SqliteKeyStore(path, reload_interval=0.05)
    cli = SqliteKeyStore(path)
    token, key = cli.create("from the cli", ["read"])
    time.sleep(0.06)
    assert server.verify(token) == key
    cli.revoke(key.key_id)
    time.sleep(0.06)
    assert server.verify(token) is None
    assert len(server) == 0
    server.close()
    cli.close()


def test_the_file_is_not_checked_more_often_than_the_interval(path: Path) -> None:
    server = SqliteKeyStore(path, reload_interval=3600)
    cli = SqliteKeyStore(path)
    token, _ = cli.create("a", ["read"])
    assert server.verify(token) is None
    assert len(server) == 0
    server.close()
    cli.close()


def test_unchanged_keys_are_not_read_again(ring: SqliteKeyStore, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token, key = ring.create("a", ["read"])
    server = SqliteKeyStore(path, reload_interval=0.0)
    reads: list[Path] = []
    real = sqlite_keys._read_keys

    def counting(conn: sqlite3.Connection, where: Path) -> dict[str, object]:
        reads.append(where)
        return real(conn, where)  # type: ignore[return-value]

    monkeypatch.setattr(sqlite_keys, "_read_keys", counting)
    for _ in range(20):
        assert server.verify(token) == key
    assert reads == []
    ring.create("b", ["read"])  # reads once in its own transaction
    reads.clear()
    assert len(server) == 2
    assert reads == [path]
    server.close()


def test_a_key_created_or_revoked_by_another_process_is_honoured_within_a_second(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "shop.db")
    server = store.key_store()  # the service's: the default reload interval
    create = (
        "import sys; from liverec.storage import open_store; "
        "keys = open_store(sys.argv[1]).key_store(); token, key = keys.create('cli', ['ingest']); print(token)"
    )
    done = subprocess.run([sys.executable, "-c", create, store.url], capture_output=True, text=True, check=True)
    token = done.stdout.strip()
    time.sleep(1.05)
    key = server.verify(token)
    assert key is not None
    assert (key.name, key.scopes) == ("cli", frozenset({"ingest"}))
    revoke = (
        "import sys; from liverec.storage import open_store; "
        "open_store(sys.argv[1]).key_store().revoke(sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", revoke, store.url, key.key_id], capture_output=True, text=True, check=True)
    time.sleep(1.05)
    assert server.verify(token) is None
    server.close()
    store.close()


def test_a_file_that_is_not_a_database_is_refused_naming_it(path: Path) -> None:
    path.write_bytes(b"\x00garbage that is not sqlite" * 100)
    with pytest.raises(StorageError, match=re.escape(str(path))):
        SqliteKeyStore(path)


def test_an_unreadable_path_is_refused_naming_it(path: Path) -> None:
    path.mkdir()  # opening a directory fails even as root, unlike chmod 000
    with pytest.raises(StorageError, match=re.escape(str(path))):
        SqliteKeyStore(path)


def test_a_json_key_file_given_as_the_path_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"version": 1, "keys": []}')
    with pytest.raises(StorageError, match="JSON key file of an earlier liverec") as info:
        SqliteKeyStore(path)
    assert str(path) in str(info.value)
    assert path.read_text() == '{"version": 1, "keys": []}'


def test_a_row_that_makes_no_sense_is_refused_naming_the_file(ring: SqliteKeyStore, path: Path) -> None:
    ring.create("a", ["read"])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE api_keys SET scopes = 'root'")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match=re.escape(f"key store {path} is corrupt")):
        SqliteKeyStore(path)


def test_a_running_store_keeps_its_keys_when_a_reread_fails(
    ring: SqliteKeyStore, path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token, key = ring.create("a", ["read"])
    server = SqliteKeyStore(path, reload_interval=0.0)
    real = sqlite_keys._read_keys

    def failing(conn: sqlite3.Connection, where: Path) -> dict[str, object]:
        raise StorageError(f"key store {where} is corrupt: test")

    other = SqliteKeyStore(path)
    other.create("b", ["read"])  # a change, so the server re-reads
    monkeypatch.setattr(sqlite_keys, "_read_keys", failing)
    with caplog.at_level(logging.WARNING, logger="liverec.storage.sqlite_keys"):
        assert server.verify(token) == key
        assert server.verify(token) == key
    [warning] = caplog.records  # once per failing spell, not at every check
    assert str(path) in warning.getMessage()
    with pytest.raises(StorageError, match=re.escape(str(path))):
        server.create("c", ["read"])  # never write beside keys we could not read
    monkeypatch.setattr(sqlite_keys, "_read_keys", real)
    other.revoke(key.key_id)
    assert server.verify(token) is None  # a healthy file is read again
    assert len(server) == 1
    server.close()
    other.close()


def test_a_closed_store_knows_no_key_and_refuses_writes(ring: SqliteKeyStore, path: Path) -> None:
    token, _ = ring.create("a", ["read"])
    ring.close()
    assert ring.verify(token) is None
    with pytest.raises(StorageError, match="closed"):
        ring.create("b", ["read"])
    with pytest.raises(StorageError, match="closed"):
        ring.list()
    with pytest.raises(StorageError, match="closed"):
        len(ring)


def test_concurrent_creates_from_two_stores_on_one_file_lose_nothing(path: Path) -> None:
    rings = [SqliteKeyStore(path, reload_interval=0.0), SqliteKeyStore(path, reload_interval=0.0)]
    tokens: list[str] = []
    lock = threading.Lock()

    def work(ring: SqliteKeyStore, n: int) -> None:
        for i in range(10):
            token, _ = ring.create(f"t{n}-{i}", ["read"])
            with lock:
                tokens.append(token)

    threads = [threading.Thread(target=work, args=(rings[n % 2], n)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reopened = SqliteKeyStore(path)
    assert len(reopened) == 60
    assert all(reopened.verify(token) is not None for token in tokens)
    assert all(len(ring) == 60 for ring in rings)
    for ring in [*rings, reopened]:
        ring.close()


# -- where stores keep them, and the JSON key files of earlier versions --------------------------


def test_a_sqlite_store_keeps_its_keys_beside_it(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/shop.db")
    keys = store.key_store()
    assert isinstance(keys, SqliteKeyStore)
    assert keys.path == tmp_path.resolve() / "shop.db.keys.db"
    token, key = keys.create("a", ["read"])
    keys.close()
    elsewhere = store.key_store(tmp_path / "other.db")
    assert (elsewhere.path, elsewhere.verify(token)) == (tmp_path / "other.db", None)
    elsewhere.close()
    assert open_key_store(tmp_path / "shop.db.keys.db").verify(token) == key
    store.close()


def _legacy(path: Path, *keys: tuple[str, str, list[str], float, str]) -> None:
    path.write_text(json.dumps({"version": 1, "keys": [
        {"key_id": key_id, "name": name, "scopes": scopes, "created": created,
         "token_sha256": hashlib.sha256(token.encode()).hexdigest()}
        for key_id, name, scopes, created, token in keys]}))


TOKEN_A = "lr_0000abcd_" + "a" * 43
TOKEN_B = "lr_1234ef00_" + "b" * 43


def test_a_legacy_json_key_file_is_imported_once_and_its_tokens_keep_working(tmp_path: Path) -> None:
    legacy = tmp_path / "shop.db.keys.json"
    _legacy(legacy, ("0000abcd", "ops", ["admin"], 100.0, TOKEN_A),
            ("1234ef00", "bot", ["ingest", "read"], 50, TOKEN_B))
    store = SqliteStore(tmp_path / "shop.db")
    keys = store.key_store()
    assert keys.list() == [ApiKey("1234ef00", "bot", frozenset({"ingest", "read"}), 50.0),
                           ApiKey("0000abcd", "ops", frozenset({"admin"}), 100.0)]
    assert keys.verify(TOKEN_A) == keys.list()[1]
    assert keys.verify(TOKEN_B) == keys.list()[0]
    assert not legacy.exists()
    assert (tmp_path / "shop.db.keys.json.imported").exists()
    keys.revoke("0000abcd")
    keys.close()
    again = store.key_store()  # nothing left to import: the revoked key stays revoked
    assert again.verify(TOKEN_A) is None and again.verify(TOKEN_B) is not None
    again.close()
    store.close()


def test_a_legacy_file_is_left_alone_when_the_key_database_has_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "shop.db")
    keys = store.key_store()
    token, _ = keys.create("new", ["read"])
    keys.close()
    legacy = tmp_path / "shop.db.keys.json"
    _legacy(legacy, ("0000abcd", "ops", ["admin"], 100.0, TOKEN_A))
    with caplog.at_level(logging.WARNING, logger="liverec.storage.sqlite_keys"):
        keys = store.key_store()
    assert [k.name for k in keys.list()] == ["new"]
    assert keys.verify(TOKEN_A) is None and keys.verify(token) is not None
    assert legacy.exists()
    assert str(legacy) in caplog.text
    keys.close()
    store.close()


def test_an_explicit_key_file_imports_nothing(tmp_path: Path) -> None:
    _legacy(tmp_path / "shop.db.keys.json", ("0000abcd", "ops", ["admin"], 100.0, TOKEN_A))
    store = SqliteStore(tmp_path / "shop.db")
    keys = store.key_store(tmp_path / "keys.db")
    assert len(keys) == 0
    assert (tmp_path / "shop.db.keys.json").exists()
    keys.close()
    store.close()


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"version": 2, "keys": []}',
        '{"version": 1, "keys": [{"key_id": "nothex!!"}]}',
        '{"version": 1, "keys": [{"key_id": "0000abcd", "name": "a", "scopes": ["root"], '
        '"created": 1, "token_sha256": "' + "0" * 64 + '"}]}',
        '{"version": 1, "keys": [{"key_id": "0000abcd", "name": "a", "scopes": ["read"], '
        '"created": 1, "token_sha256": "short"}]}',
        b"\xff\xfe".decode("latin-1"),
        "[" * 100_000,
    ],
)
def test_a_corrupt_legacy_file_is_refused_naming_it(tmp_path: Path, content: str) -> None:
    legacy = tmp_path / "shop.db.keys.json"
    legacy.write_text(content, encoding="latin-1")
    store = SqliteStore(tmp_path / "shop.db")
    with pytest.raises(StorageError, match=re.escape(f"keys file {legacy} is corrupt")):
        store.key_store()
    assert legacy.read_text(encoding="latin-1") == content  # left for the operator to repair
    store.close()
