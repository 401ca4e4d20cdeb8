"""``liverec keys create|list|revoke`` and ``liverec serve``'s checks before it listens.

Run in-process with typer's CliRunner. ``uvicorn.run`` is replaced by a recorder, so a serve that
passes its checks shows what it would have served instead of listening on a port.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from liverec.cli import app
from liverec.storage import open_key_store, open_store

TOKEN_RE = re.compile(r"lr_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("no_liverec_environment")


@pytest.fixture
def store(tmp_path: Path) -> str:
    """An empty store: keys and serve are given one that exists (a missing one: test_cli_newcomer.py)."""
    url = f"sqlite:///{tmp_path}/shop.db"
    open_store(url).close()
    return url


@pytest.fixture
def keys_path(tmp_path: Path) -> Path:
    return tmp_path / "shop.db.keys.db"


def verify(path: Path, token: str) -> Any:
    """What the key database at ``path`` says ``token`` is (None: no such key)."""
    keys = open_key_store(path)
    try:
        return keys.verify(token)
    finally:
        keys.close()


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


def assert_refused(result: Result, message: str) -> None:
    """Exit code 2 and exactly one line, ``error: …``, on stderr."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


def create(store: str, name: str = "x", *scopes: str) -> tuple[Result, str]:
    args = ["keys", "create", "--name", name, "--store", store]
    for scope in scopes or ("read",):
        args += ["--scope", scope]
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    tokens = TOKEN_RE.findall(result.stdout)
    assert len(tokens) == 1, result.stdout
    return result, tokens[0]


# ---------------------------------------------------------------- keys


def test_keys_create_prints_the_token_once_and_stores_only_its_hash(store: str, keys_path: Path) -> None:
    result, token = create(store, "x", "read")
    key_id = token.split("_")[1]
    assert f"created key {key_id} (x; scopes: read)" in result.stdout
    assert result.stdout.count(token) == 1 and token in result.stdout.splitlines()
    for file in keys_path.parent.glob(keys_path.name + "*"):  # the database, its WAL and shared memory
        stored = file.read_bytes()
        assert token.encode() not in stored and token.split("_", 2)[2].encode() not in stored
    conn = sqlite3.connect(keys_path)
    digests = conn.execute("SELECT token_sha256 FROM api_keys").fetchall()
    assert digests == [(hashlib.sha256(token.encode()).hexdigest(),)]
    conn.close()
    assert keys_path.stat().st_mode & 0o077 == 0  # only the owner reads the hashes
    key = verify(keys_path, token)
    assert key is not None and (key.key_id, key.name, key.scopes) == (key_id, "x", frozenset({"read"}))


def test_keys_create_takes_repeated_and_comma_separated_scopes(store: str, keys_path: Path) -> None:
    _, token = create(store, "bot", "ingest,read", "admin")
    key = verify(keys_path, token)
    assert key is not None and key.scopes == frozenset({"ingest", "read", "admin"})


def test_keys_create_with_a_bad_scope_exits_2(store: str, keys_path: Path) -> None:
    result = run("keys", "create", "--name", "x", "--scope", "write", "--store", store)
    assert_refused(result, "error: scope 'write' is not one of ingest, read, admin")
    assert not keys_path.exists()


def test_keys_list_shows_ids_names_and_scopes_but_no_secret(store: str) -> None:
    _, first = create(store, "reader", "read")
    _, second = create(store, "ops", "admin")
    result = run("keys", "list", "--store", store)
    assert result.exit_code == 0
    assert "2 API key(s)" in result.stdout
    for token, name, scope in ((first, "reader", "read"), (second, "ops", "admin")):
        line = next(line for line in result.stdout.splitlines() if token.split("_")[1] in line)
        assert name in line and scope in line
        assert token.split("_", 2)[2] not in result.stdout


def test_keys_revoke_removes_the_key(store: str, keys_path: Path) -> None:
    _, token = create(store, "x", "read")
    _, kept = create(store, "y", "read")
    key_id = token.split("_")[1]
    result = run("keys", "revoke", key_id, "--store", store)
    assert result.exit_code == 0
    assert f"revoked key {key_id} (x)" in result.stdout
    listing = run("keys", "list", "--store", store).stdout
    assert "1 API key(s)" in listing and key_id not in listing and kept.split("_")[1] in listing
    assert verify(keys_path, token) is None and verify(keys_path, kept) is not None
    assert_refused(run("keys", "revoke", key_id, "--store", store), f"error: no API key with id '{key_id}'")


def test_keys_take_an_explicit_keys_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "keys.db"
    result = run("keys", "create", "--name", "x", "--scope", "read", "--store", "memory://",
                 "--keys-file", str(path))
    assert result.exit_code == 0
    assert verify(path, TOKEN_RE.findall(result.stdout)[0]) is not None
    assert "1 API key(s)" in run("keys", "list", "--keys-file", str(path)).stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]  # no store was opened for it


def test_keys_for_a_memory_store_without_a_keys_file_exit_2() -> None:
    assert_refused(run("keys", "list", "--store", "memory://"), "a memory:// store keeps no keys")


# ---------------------------------------------------------------- serve


def test_serve_on_a_public_host_without_keys_exits_2_naming_the_host(
    store: str, served: list[dict[str, Any]]
) -> None:
    result = run("serve", "--host", "0.0.0.0", "--store", store)
    assert_refused(result, "error: refusing to listen on 0.0.0.0 without API keys")
    assert result.stdout == ""
    assert served == []


def test_serve_on_a_public_host_with_a_key_serves(store: str, served: list[dict[str, Any]]) -> None:
    create(store, "ops", "admin")
    result = run("serve", "--host", "0.0.0.0", "--port", "8123", "--store", store, "--behind-proxy")
    assert result.exit_code == 0, result.stderr
    assert [(c["host"], c["port"]) for c in served] == [("0.0.0.0", 8123)]


def test_serve_on_loopback_needs_no_key(store: str, served: list[dict[str, Any]]) -> None:
    assert run("serve", "--store", store).exit_code == 0
    assert [(c["host"], c["port"]) for c in served] == [("127.0.0.1", 8000)]


def test_serve_options_override_the_environment_which_overrides_the_file(
    tmp_path: Path, store: str, served: list[dict[str, Any]]
) -> None:
    config = tmp_path / "liverec.toml"
    config.write_text(f'store = "{store}"\nport = 9100\nhost = "127.0.0.1"\n')
    assert run("serve", "--config", str(config)).exit_code == 0
    assert run("serve", "--config", str(config), env={"LIVEREC_PORT": "9200"}).exit_code == 0
    assert run("serve", "--config", str(config), "--port", "9300", env={"LIVEREC_PORT": "9200"}).exit_code == 0
    assert [c["port"] for c in served] == [9100, 9200, 9300]


def test_an_unknown_liverec_variable_makes_serve_exit_2(store: str, served: list[dict[str, Any]]) -> None:
    result = run("serve", "--store", store, env={"LIVEREC_FOO": "1"})
    assert_refused(result, "error: unknown environment setting LIVEREC_FOO")
    assert served == []


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("max_bacth = 5", "unknown setting(s) in"),
        ("port = 0", "port must be a positive integer, got 0"),
        ("[engine]\nencodr = 'x'", "unknown setting(s): encodr"),
        ("[[variants]]\nname = 'a'\ndivresity = 0.5", "variants[0] has unknown key 'divresity'"),
        ("user_id_secret = 'short'", "at least 16 are needed"),
    ],
)
def test_a_bad_settings_file_makes_serve_exit_2_with_one_line(
    tmp_path: Path, store: str, served: list[dict[str, Any]], toml: str, message: str
) -> None:
    config = tmp_path / "liverec.toml"
    config.write_text(toml + "\n")
    assert_refused(run("serve", "--store", store, "--config", str(config)), message)
    assert served == []


def test_a_legacy_json_key_file_beside_the_store_is_imported_and_its_keys_serve(
    tmp_path: Path, store: str, keys_path: Path, served: list[dict[str, Any]]
) -> None:
    token = "lr_0000abcd_" + "s" * 43
    legacy = tmp_path / "shop.db.keys.json"
    legacy.write_text('{"version": 1, "keys": [{"key_id": "0000abcd", "name": "ops", "scopes": ["admin"], '
                      f'"created": 1.5, "token_sha256": "{hashlib.sha256(token.encode()).hexdigest()}"}}]}}')
    result = run("serve", "--host", "0.0.0.0", "--store", store, "--behind-proxy")  # off loopback: a key
    assert result.exit_code == 0, result.stderr
    assert [c["host"] for c in served] == ["0.0.0.0"]
    assert not legacy.exists() and (tmp_path / "shop.db.keys.json.imported").exists()
    assert "1 API key(s)" in run("keys", "list", "--store", store).stdout
    key = verify(keys_path, token)
    assert key is not None and (key.key_id, key.name, key.scopes) == ("0000abcd", "ops", frozenset({"admin"}))


def test_a_corrupt_legacy_json_key_file_stops_serve_naming_it(tmp_path: Path, store: str,
                                                             served: list[dict[str, Any]]) -> None:
    legacy = tmp_path / "shop.db.keys.json"
    legacy.write_text("{half written")
    assert_refused(run("serve", "--store", store), f"keys file {legacy} is corrupt")
    assert served == []
