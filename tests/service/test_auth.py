"""API keys: tokens verify, are stored only as hashes, carry scopes, and survive other processes."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liverec.core.errors import InvalidInputError, NotFoundError, StorageError
from liverec.service.auth import SCOPES, ApiKey, KeyRing, default_keys_path

TOKEN_RE = re.compile(r"lr_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "liverec.db.keys.json"


@pytest.fixture
def ring(path: Path) -> KeyRing:
    return KeyRing(path)


# -- creating and verifying --------------------------------------------------------------------


def test_create_returns_a_well_formed_token_and_its_key(ring: KeyRing) -> None:
    token, key = ring.create("ingest bot", ["ingest", "read"])
    match = TOKEN_RE.fullmatch(token)
    assert match is not None
    assert key.key_id == match.group(1)
    assert key.name == "ingest bot"
    assert key.scopes == frozenset({"ingest", "read"})
    assert abs(key.created - time.time()) < 60
    assert len(ring) == 1
    assert ring.list() == [key]


def test_verify_accepts_the_token_it_issued(ring: KeyRing) -> None:
    token, key = ring.create("a", ["read"])
    other_token, other = ring.create("b", ["admin"])
    assert ring.verify(token) == key
    assert ring.verify(other_token) == other


def test_verify_rejects_a_wrong_secret_with_a_real_key_id(ring: KeyRing) -> None:
    token, key = ring.create("a", ["read"])
    last = token[-1]
    tampered = token[:-1] + ("A" if last != "A" else "B")
    assert ring.verify(tampered) is None
    assert ring.verify(f"lr_{key.key_id}_{'x' * 43}") is None
    assert ring.verify(token + "x") is None
    assert ring.verify(token[:-1]) is None


def test_verify_rejects_a_revoked_key_and_revoke_returns_it(ring: KeyRing) -> None:
    token, key = ring.create("a", ["read"])
    kept_token, kept = ring.create("b", ["read"])
    assert ring.revoke(key.key_id) == key
    assert ring.verify(token) is None
    assert ring.verify(kept_token) == kept
    assert ring.list() == [kept]


def test_revoking_an_unknown_key_is_not_found(ring: KeyRing) -> None:
    with pytest.raises(NotFoundError, match="deadbeef") as info:
        ring.revoke("deadbeef")
    assert info.value.kind == "api_key"
    assert info.value.key == "deadbeef"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "lr_",
        "lr__",
        "lr_0123abcd_",
        "lr_0123ABCD_secret",
        "xx_0123abcd_secret",
        "Bearer lr_0123abcd_secret",
        "lr_0123abc_secret",
        "\x00" * 55,
        "lr_0123abcd_" + "é" * 43,
        "lr_0123abcd_\ud800",  # a lone surrogate cannot be encoded as UTF-8
        "lr_0123abcd_" + "a" * 10_000_000,
    ],
)
def test_verify_returns_none_for_malformed_tokens(ring: KeyRing, token: str) -> None:
    ring.create("a", ["read"])
    assert ring.verify(token) is None


@given(st.text())
def test_verify_never_raises_on_any_text(token: str) -> None:
    ring = KeyRing(None)
    ring.create("a", ["read"])
    assert ring.verify(token) is None


@given(st.text(alphabet=st.characters(), max_size=80))
def test_verify_never_raises_on_text_after_a_real_key_id(suffix: str) -> None:
    ring = KeyRing(None)
    _, key = ring.create("a", ["read"])
    assert ring.verify(f"lr_{key.key_id}_{suffix}") is None


def test_verify_tolerates_non_strings(ring: KeyRing) -> None:
    ring.create("a", ["read"])
    assert ring.verify(None) is None  # type: ignore[arg-type]
    assert ring.verify(b"lr_0123abcd_x") is None  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["issued", "wrong secret", "unknown key id", "malformed"])
def test_every_verify_makes_exactly_one_constant_time_comparison(
    ring: KeyRing, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    token, key = ring.create("a", ["read"])
    candidate = {
        "issued": token,
        "wrong secret": f"lr_{key.key_id}_{'x' * 43}",
        "unknown key id": f"lr_{'0' * 8 if key.key_id != '0' * 8 else '1' * 8}_{'x' * 43}",
        "malformed": "garbage",
    }[kind]
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    ring.verify(candidate)
    assert len(calls) == 1
    assert all(len(a) == len(b) == 32 for a, b in calls)


# -- validation --------------------------------------------------------------------------------


def test_scopes_must_be_known(ring: KeyRing) -> None:
    with pytest.raises(InvalidInputError, match="'reed'") as info:
        ring.create("a", ["read", "reed"])
    assert info.value.field == "scopes"
    assert info.value.value == "reed"
    assert len(ring) == 0


def test_scopes_must_not_be_empty(ring: KeyRing) -> None:
    with pytest.raises(InvalidInputError, match="at least one scope") as info:
        ring.create("a", [])
    assert info.value.field == "scopes"


def test_a_lone_string_is_one_scope(ring: KeyRing) -> None:
    _, key = ring.create("a", "ingest")
    assert key.scopes == frozenset({"ingest"})


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_name_must_be_non_empty_and_at_most_100_characters(ring: KeyRing, name: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        ring.create(name, ["read"])
    assert info.value.field == "name"
    assert len(ring) == 0


def test_a_name_of_exactly_100_characters_is_fine(ring: KeyRing) -> None:
    _, key = ring.create("x" * 100, ["read"])
    assert key.name == "x" * 100


# -- scopes ------------------------------------------------------------------------------------


def test_admin_implies_every_other_scope() -> None:
    admin = ApiKey("00000000", "root", frozenset({"admin"}), 0.0)
    assert all(admin.allows(scope) for scope in SCOPES)


def test_plain_scopes_allow_only_themselves() -> None:
    reader = ApiKey("00000000", "dashboard", frozenset({"read"}), 0.0)
    writer = ApiKey("00000001", "pipeline", frozenset({"ingest"}), 0.0)
    assert [reader.allows(s) for s in SCOPES] == [False, True, False]
    assert [writer.allows(s) for s in SCOPES] == [True, False, False]


def test_asking_about_an_unknown_scope_fails_loudly() -> None:
    key = ApiKey("00000000", "root", frozenset({"admin"}), 0.0)
    with pytest.raises(InvalidInputError, match="'raed'"):
        key.allows("raed")


def test_as_dict_lists_scopes_sorted_and_no_secret() -> None:
    key = ApiKey("0000abcd", "n", frozenset({"read", "ingest"}), 12.5)
    assert key.as_dict() == {"key_id": "0000abcd", "name": "n", "scopes": ["ingest", "read"], "created": 12.5}


# -- the file ----------------------------------------------------------------------------------


def test_the_file_holds_hashes_never_tokens_or_secrets(ring: KeyRing, path: Path) -> None:
    token, key = ring.create("ingest bot", ["ingest"])
    secret = TOKEN_RE.fullmatch(token).group(2)  # type: ignore[union-attr]
    text = path.read_text()
    assert token not in text
    assert secret not in text
    data = json.loads(text)
    assert data["version"] == 1
    [entry] = data["keys"]
    assert set(entry) == {"key_id", "name", "scopes", "created", "token_sha256"}
    assert entry["key_id"] == key.key_id
    assert entry["scopes"] == ["ingest"]
    assert entry["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()


def test_the_file_is_private_and_no_temp_file_is_left(ring: KeyRing, path: Path) -> None:
    ring.create("a", ["read"])
    _, key = ring.create("b", ["read"])
    ring.revoke(key.key_id)
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".lock"]


def test_an_existing_world_readable_file_becomes_private_on_write(path: Path) -> None:
    path.write_text('{"version": 1, "keys": []}')
    path.chmod(0o644)
    KeyRing(path).create("a", ["read"])
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_directory_is_created_on_first_write(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "keys.json"
    ring = KeyRing(path)
    assert not path.exists()
    token, key = ring.create("a", ["read"])
    assert KeyRing(path).verify(token) == key


def test_keys_persist_across_instances(ring: KeyRing, path: Path) -> None:
    token, key = ring.create("a", ["read", "ingest"])
    revoked_token, revoked = ring.create("b", ["admin"])
    ring.revoke(revoked.key_id)
    reopened = KeyRing(path)
    assert reopened.list() == [key]
    assert reopened.verify(token) == key
    assert reopened.verify(revoked_token) is None


def test_a_running_ring_sees_another_instances_changes_after_the_interval(path: Path) -> None:
    server = KeyRing(path, reload_interval=0.05)
    cli = KeyRing(path)
    token, key = cli.create("from the cli", ["read"])
    time.sleep(0.06)
    assert server.verify(token) == key
    cli.revoke(key.key_id)
    time.sleep(0.06)
    assert server.verify(token) is None
    assert len(server) == 0


def test_the_file_is_not_checked_more_often_than_the_interval(path: Path) -> None:
    server = KeyRing(path, reload_interval=3600)
    token, _ = KeyRing(path).create("a", ["read"])
    assert server.verify(token) is None


def test_an_unchanged_file_is_not_read_again(ring: KeyRing, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token, key = ring.create("a", ["read"])
    server = KeyRing(path, reload_interval=0.0)
    reads: list[Path] = []
    real = Path.read_bytes

    def counting(self: Path) -> bytes:
        reads.append(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    for _ in range(20):
        assert server.verify(token) == key
    assert reads == []
    ring.create("b", ["read"])
    assert len(server) == 2
    assert reads == [path]


def test_a_key_created_by_another_process_is_seen(path: Path) -> None:
    server = KeyRing(path, reload_interval=0.0)
    script = (
        "import sys; from liverec.service.auth import KeyRing; "
        "token, key = KeyRing(sys.argv[1]).create('cli', ['ingest']); print(token)"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    token = done.stdout.strip()
    key = server.verify(token)
    assert key is not None
    assert key.name == "cli"
    assert key.scopes == frozenset({"ingest"})


def test_a_deleted_file_revokes_every_key(ring: KeyRing, path: Path) -> None:
    token, _ = ring.create("a", ["read"])
    server = KeyRing(path, reload_interval=0.0)
    path.unlink()
    assert server.verify(token) is None


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
def test_a_corrupt_file_is_refused_naming_its_path(path: Path, content: str) -> None:
    path.write_text(content, encoding="latin-1")
    with pytest.raises(StorageError, match=re.escape(str(path))):
        KeyRing(path)


def test_an_unreadable_file_is_refused_naming_its_path(path: Path) -> None:
    path.mkdir()  # reading a directory fails even as root, unlike chmod 000
    with pytest.raises(StorageError, match=re.escape(str(path))):
        KeyRing(path)


def test_a_running_ring_keeps_its_keys_when_the_file_turns_corrupt(
    ring: KeyRing, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token, key = ring.create("a", ["read"])
    server = KeyRing(path, reload_interval=0.0)
    path.write_text("{half written")
    with caplog.at_level(logging.WARNING, logger="liverec.service.auth"):
        assert server.verify(token) == key
        assert server.verify(token) == key
    [warning] = caplog.records  # once per bad version of the file, not at every check
    assert str(path) in warning.getMessage()
    with pytest.raises(StorageError, match=re.escape(str(path))):
        server.create("b", ["read"])  # never write over a file we could not read
    path.write_text('{"version": 1, "keys": []}')
    assert server.verify(token) is None  # a repaired file is read again


def test_in_memory_ring_writes_nothing(tmp_path: Path) -> None:
    before = set(os.listdir(tmp_path))
    ring = KeyRing(None)
    token, key = ring.create("a", ["read"])
    assert ring.verify(token) == key
    assert ring.revoke(key.key_id) == key
    assert len(ring) == 0
    assert set(os.listdir(tmp_path)) == before


# -- concurrency -------------------------------------------------------------------------------


def test_concurrent_creates_from_two_rings_on_one_file_lose_nothing(path: Path) -> None:
    rings = [KeyRing(path, reload_interval=0.0), KeyRing(path, reload_interval=0.0)]
    tokens: list[str] = []
    lock = threading.Lock()

    def work(ring: KeyRing, n: int) -> None:
        for i in range(10):
            token, _ = ring.create(f"t{n}-{i}", ["read"])
            with lock:
                tokens.append(token)

    threads = [threading.Thread(target=work, args=(rings[n % 2], n)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reopened = KeyRing(path)
    assert len(reopened) == 60
    assert all(reopened.verify(token) is not None for token in tokens)
    assert all(len(ring) == 60 for ring in rings)


# -- default path ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///path/to/x.db", Path("path/to/x.db.keys.json")),
        ("sqlite:////srv/liverec/x.db", Path("/srv/liverec/x.db.keys.json")),
        ("SQLITE:///x.db", Path("x.db.keys.json")),
        ("memory://", None),
    ],
)
def test_default_keys_path(url: str, expected: Path | None) -> None:
    assert default_keys_path(url) == expected


@pytest.mark.parametrize("url", ["redis://localhost", "x.db", "sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_default_keys_path_refuses_urls_without_a_file(url: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(repr(url))) as info:
        default_keys_path(url)
    assert info.value.field == "url"
