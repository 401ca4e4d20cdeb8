"""The key store contract on PostgreSQL, plus what only keys shared by several workers promise:
a key created or revoked through one worker is honoured by the others within the reload interval,
verifying never touches the database, and the database holds digests, never tokens."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from liverec.core.errors import InvalidInputError, NotFoundError, StorageError
from liverec.storage import postgres_keys
from liverec.storage.postgres import PostgresUrl
from liverec.storage.postgres_feedback import PostgresFeedbackLog
from liverec.storage.postgres_keys import PostgresKeyStore
from liverec.testing.feedback_contract import run_threads
from liverec.testing.keystore_contract import TOKEN_RE, KeyStoreContract, KeyStoreFactory
from tests.storage.test_postgres_feedback import sql

pytestmark = pytest.mark.services


class TestPostgresKeyStore(KeyStoreContract):
    @pytest.fixture
    def make_keys(self, postgres_url: str) -> KeyStoreFactory:
        return lambda: PostgresKeyStore(PostgresUrl(postgres_url))


def _open(url: str, reload_interval: float = 1.0) -> PostgresKeyStore:
    return PostgresKeyStore(PostgresUrl(url), reload_interval=reload_interval)


def _seconds_until(condition: Callable[[], bool], limit: float = 5.0) -> float:
    """How long ``condition`` took to hold, polled every 5 ms; fails past ``limit``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < limit, "the condition never held"
        time.sleep(0.005)
    return time.monotonic() - start


# ---------------------------------------------------------------- two workers, one database


def test_a_key_created_or_revoked_through_one_worker_is_honoured_by_another_within_the_interval(
    postgres_url: str,
) -> None:
    cli, server = _open(postgres_url), _open(postgres_url, reload_interval=0.1)
    token, key = cli.create("from the cli", ["read"])
    assert _seconds_until(lambda: server.verify(token) == key) < 1.0
    assert server.list() == [key]
    cli.revoke(key.key_id)
    assert cli.verify(token) is None  # at once where it was revoked
    assert _seconds_until(lambda: server.verify(token) is None) < 1.0
    assert len(server) == 0
    server.close()
    cli.close()


def test_a_worker_revokes_a_key_it_has_not_loaded_yet_and_honours_that_at_once(postgres_url: str) -> None:
    a, b = _open(postgres_url), _open(postgres_url, reload_interval=3600)
    token, key = a.create("a", ["read"])
    assert b.revoke(key.key_id) == key  # b never loaded the key: revoke reads the database
    assert b.verify(token) is None
    with pytest.raises(NotFoundError):
        b.revoke(key.key_id)
    a.close()
    b.close()


def test_verify_never_asks_the_database(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cli, server = _open(postgres_url), _open(postgres_url, reload_interval=3600)
    token, key = server.create("mine", ["ingest"])
    other_token, _ = cli.create("the cli's", ["read"])

    def refused(action: str) -> Any:
        raise AssertionError(f"verify asked the database ({action})")

    monkeypatch.setattr(server._db, "access", refused)
    monkeypatch.setattr(server._db, "transaction", refused)
    for _ in range(50):
        assert server.verify(token) == key
    assert server.verify(other_token) is None  # not before the next check, an hour away
    assert len(server) == 1
    monkeypatch.undo()
    server.close()
    cli.close()


def test_unchanged_keys_are_not_read_again(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = _open(postgres_url)
    token, key = cli.create("a", ["read"])
    server = _open(postgres_url, reload_interval=0.01)
    reads: list[int] = []
    real = postgres_keys._read_keys

    def counting(conn: Any) -> Any:
        reads.append(1)
        return real(conn)

    monkeypatch.setattr(postgres_keys, "_read_keys", counting)
    time.sleep(0.2)  # about twenty checks of the version
    assert reads == []
    cli.create("b", ["read"])
    reads.clear()
    _seconds_until(lambda: len(server) == 2)
    time.sleep(0.1)
    assert reads == [1]  # the one change, read once
    assert server.verify(token) == key
    server.close()
    cli.close()


def test_concurrent_creates_through_two_workers_lose_nothing(postgres_url: str) -> None:
    stores = [_open(postgres_url, reload_interval=0.05), _open(postgres_url, reload_interval=0.05)]
    tokens: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(10):
            token, _ = stores[n % 2].create(f"t{n}-{i}", ["read"])
            with lock:
                tokens.append(token)

    run_threads(work, 6)
    assert sql(postgres_url, "SELECT COUNT(*), MAX(version) FROM api_keys, api_keys_version") == [(60, 60)]
    _seconds_until(lambda: all(len(store) == 60 for store in stores))
    assert all(store.verify(token) is not None for store in stores for token in tokens)
    for store in stores:
        store.close()


# ---------------------------------------------------------------- what the database holds


def test_the_database_holds_digests_never_tokens_or_secrets(postgres_url: str) -> None:
    with_keys = _open(postgres_url)
    token, key = with_keys.create("ingest bot", ["ingest", "read"])
    secret = TOKEN_RE.fullmatch(token).group(2)  # type: ignore[union-attr]
    [(key_id, name, scopes, created, digest)] = sql(
        postgres_url, "SELECT key_id, name, scopes, created, token_sha256 FROM api_keys")
    assert (key_id, name, sorted(scopes), created) == (key.key_id, "ingest bot", ["ingest", "read"], key.created)
    assert bytes(digest) == hashlib.sha256(token.encode()).digest()
    [(dump,)] = sql(postgres_url, "SELECT string_agg(k::text, ' ') FROM api_keys AS k")
    assert token not in dump and secret not in dump
    with_keys.close()


def test_workers_opening_at_once_migrate_each_component_once(postgres_url: str) -> None:
    sql(postgres_url, f"CREATE SCHEMA {PostgresUrl(postgres_url).schema}")
    start = threading.Barrier(6)
    logs: list[PostgresFeedbackLog] = []
    stores: list[PostgresKeyStore] = []
    errors: list[BaseException] = []

    def open_one(n: int) -> None:  # what workers starting together do: open their log and their keys
        start.wait()
        try:
            if n % 2:
                logs.append(PostgresFeedbackLog(PostgresUrl(postgres_url)))
            else:
                stores.append(_open(postgres_url, reload_interval=0.05))
        except BaseException as exc:  # reported below
            errors.append(exc)

    run_threads(open_one, 6)
    assert errors == []
    assert sql(postgres_url, "SELECT component, version FROM schema_migrations ORDER BY component") == [
        ("feedback", 1), ("keys", 1)]
    assert sql(postgres_url, "SELECT version FROM api_keys_version") == [(0,)]
    assert sql(postgres_url, "SELECT served FROM feedback_size") == [(0,)]
    token, key = stores[0].create("a", ["read"])
    _seconds_until(lambda: all(store.verify(token) == key for store in stores))
    for n, log in enumerate(logs):
        log.record_served(f"r{n}", "control", "u", ["x"])
    assert [(c.name, c.requests) for c in logs[0].counts()] == [("control", 3)]
    for log in logs:
        log.close()
    for store in stores:
        store.close()


def test_a_reopened_store_sees_every_key_and_no_revoked_one(postgres_url: str) -> None:
    keys = _open(postgres_url)
    token, key = keys.create("a", ["read", "ingest"])
    revoked_token, revoked = keys.create("b", ["admin"])
    keys.revoke(revoked.key_id)
    keys.close()
    keys.close()
    reopened = _open(postgres_url)
    assert reopened.list() == [key]
    assert reopened.verify(token) == key
    assert reopened.verify(revoked_token) is None
    reopened.close()


# ---------------------------------------------------------------- refusals and failures


@pytest.mark.parametrize("name", ["nul\x00name", "lone \ud800"])
def test_a_name_postgresql_cannot_hold_is_refused_naming_the_field(postgres_url: str, name: str) -> None:
    keys = _open(postgres_url)
    with pytest.raises(InvalidInputError) as err:
        keys.create(name, ["read"])
    assert err.value.field == "name"
    assert len(keys) == 0 and sql(postgres_url, "SELECT COUNT(*) FROM api_keys") == [(0,)]
    keys.close()


@pytest.mark.parametrize("key_id", ["nul\x00", "\ud800", "DEADBEEF", 12345])
def test_revoking_an_id_no_key_can_have_is_not_found(postgres_url: str, key_id: Any) -> None:
    keys = _open(postgres_url)
    with pytest.raises(NotFoundError) as err:
        keys.revoke(key_id)
    assert (err.value.kind, err.value.key) == ("api_key", str(key_id))
    keys.close()


@pytest.mark.parametrize("interval", [0, -1.0, float("nan"), float("inf"), True, "1"])
def test_the_reload_interval_must_be_a_positive_number(postgres_url: str, interval: Any) -> None:
    with pytest.raises(InvalidInputError) as err:
        _open(postgres_url, reload_interval=interval)
    assert err.value.field == "reload_interval"


def test_a_worker_keeps_its_keys_while_the_database_fails_and_catches_up_after(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cli = _open(postgres_url)
    token, key = cli.create("a", ["read"])
    server = _open(postgres_url, reload_interval=0.01)
    real = server._db.access

    def unreachable(action: str) -> Any:
        raise StorageError(f"key store: {action} failed: the server went away")

    with caplog.at_level(logging.WARNING, logger="liverec.storage.postgres_keys"):
        monkeypatch.setattr(server._db, "access", unreachable)
        cli.revoke(key.key_id)
        time.sleep(0.2)  # about twenty failed checks
        assert server.verify(token) == key  # the keys read last stay in force
    assert [r.getMessage() for r in caplog.records] == [
        "key store: reading the keys failed: the server went away; keeping the 1 keys read before"]
    monkeypatch.setattr(server._db, "access", real)
    assert _seconds_until(lambda: server.verify(token) is None) < 1.0
    server.close()
    cli.close()


def test_a_driver_failure_is_a_storage_error(postgres_url: str) -> None:
    keys = _open(postgres_url)
    sql(postgres_url, "DROP TABLE api_keys_version")
    with pytest.raises(StorageError, match="creating a key"):
        keys.create("a", ["read"])
    keys.close()


def test_a_closed_store_knows_no_key_and_refuses_the_rest(postgres_url: str) -> None:
    keys = _open(postgres_url)
    token, _ = keys.create("a", ["read"])
    keys.close()
    assert keys.verify(token) is None
    for call in (lambda: keys.create("b", ["read"]), keys.list, lambda: len(keys), lambda: keys.revoke("0000abcd")):
        with pytest.raises(StorageError, match="closed"):
            call()
    assert sql(postgres_url, "SELECT name FROM api_keys") == [("a",)]
