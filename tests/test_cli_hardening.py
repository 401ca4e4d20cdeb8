"""The command line under hostile input (issue 12): a bad ``--store`` is one line and exit 2 for
every command (``serve`` included, where it was a traceback and uvicorn's exit 3), a URL's password
is never printed, a secret that is not text refuses to start, and ``liverec ingest`` refuses an
event id reused with other content, all or nothing.

Commands run in-process with typer's CliRunner (``uvicorn.run`` replaced by a recorder, so a serve
that passes its checks never listens), except one ``serve`` run as a real process, to see its exit
code as an operator would.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from liverec.engine import Engine
from tests.test_cli_service import run

pytestmark = pytest.mark.usefixtures("no_liverec_environment")
PASSWORD = "hunter2hunter2"
T0 = 1_767_225_600.0


def assert_refused(result: Result, *words: str) -> None:
    """Exit code 2 and exactly one line, ``error: …``, on stderr, with no password in it."""
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    for word in words:
        assert word in result.stderr, result.stderr


def _bad_stores(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Store URLs that cannot be opened, each with a word its refusal must hold."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    return {
        "unknown scheme": ("bogus://x", "unknown scheme 'bogus'"),
        "password": (f"postgres://ann:{PASSWORD}@db.example/shop", "postgres://ann:***@db.example/shop"),
        "parent is a file": (f"sqlite:///{blocker}/shop.db", "cannot open sqlite store"),
        "NUL": (f"sqlite:///{tmp_path}/sh\x00op.db", "NUL"),
    }


BAD_STORES = ["unknown scheme", "password", "parent is a file", "NUL"]


# ---------------------------------------------------------------- a bad --store


@pytest.mark.parametrize("case", BAD_STORES)
def test_serve_with_a_bad_store_and_a_keys_file_is_one_line_and_exit_2(
    tmp_path: Path, served: list[dict[str, Any]], case: str
) -> None:
    # With a keys file the key check opens no store: the bad one used to be found only by the
    # server's startup, a traceback and exit 3.
    url, words = _bad_stores(tmp_path)[case]
    assert_refused(run("serve", "--store", url, env={"LIVEREC_KEYS_FILE": str(tmp_path / "keys.db")}), words)
    assert_refused(run("serve", "--store", url), words)
    assert served == []


@pytest.mark.parametrize("case", BAD_STORES)
@pytest.mark.parametrize("command", [("recommend", "u1"), ("interests", "u1"), ("forget", "u1"), ("train",),
                                     ("similar", "i1"), ("search", "tent"), ("keys", "list")])
def test_every_command_refuses_a_bad_store_in_one_line(tmp_path: Path, command: tuple[str, ...], case: str) -> None:
    url, words = _bad_stores(tmp_path)[case]
    assert_refused(run(*command, "--store", url), words)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_real_serve_process_with_a_bad_store_exits_2_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEREC_")}
    env |= {"LIVEREC_KEYS_FILE": str(tmp_path / "keys.db"), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "liverec.cli", "serve", "--store", "bogus://x",
                           "--port", str(_free_port())], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr == ("error: store URL 'bogus://x' has unknown scheme 'bogus'; "
                           "known: memory://, sqlite://, postgresql://, postgres://\n")


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize(("toml", "words"), [
    ("user_id_secret = 64", "user_id_secret must be a string of at least 16 bytes, not int"),
    ("user_id_secret = 123456789012345678901234567890", "user_id_secret must be a string"),
    ("user_id_secret = 1e300", "user_id_secret must be a string"),
    ("experiment_salt = 5", "experiment_salt must be a non-empty string"),
])
def test_a_secret_or_salt_that_is_not_text_refuses_to_start_in_one_line(
    tmp_path: Path, served: list[dict[str, Any]], toml: str, words: str
) -> None:
    config = tmp_path / "liverec.toml"
    config.write_text(toml + "\n")
    result = run("serve", "--store", "memory://", "--config", str(config))
    assert_refused(result, words)
    assert "123456789012345678901234567890" not in result.stderr
    assert served == []


# ---------------------------------------------------------------- ingest and reused event ids


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store holding three items (no events)."""
    path = tmp_path_factory.mktemp("shop") / "shop.db"
    with Engine.open(f"sqlite:///{path}") as engine:
        engine.ingest_items([{"item_id": f"i{n}", "title": title, "created_at": T0}
                             for n, title in enumerate(["Hiking tent", "Trail shoes", "Camera bag"])])
    return f"sqlite:///{path}"


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _events(shop: str, user: str) -> list[str]:
    with Engine.open(shop) as engine:
        return sorted(f"{e.event_id}:{e.item_id}" for e in engine.store.events.by_user(user))


def test_ingest_refuses_an_id_twice_in_the_file_with_other_content_naming_its_lines(
    shop: str, tmp_path: Path
) -> None:
    rows = [{"event_id": "c1", "user_id": "cli-a", "type": "view", "item_id": "i0", "timestamp": T0},
            {"event_id": "c2", "user_id": "cli-a", "type": "view", "item_id": "i1", "timestamp": T0},
            {"event_id": "c1", "user_id": "cli-a", "type": "view", "item_id": "i2", "timestamp": T0}]
    result = run("ingest", str(_write(tmp_path / "e.jsonl", rows)), "--store", shop)
    assert_refused(result, "e.jsonl:1,3:", "event 'c1' appears twice", "item_id")
    assert _events(shop, "cli-a") == []


def test_ingest_refuses_an_id_stored_with_other_content_and_stores_nothing_of_the_file(
    shop: str, tmp_path: Path
) -> None:
    first = [{"event_id": "d1", "user_id": "cli-b", "type": "view", "item_id": "i0", "timestamp": T0}]
    assert run("ingest", str(_write(tmp_path / "first.jsonl", first)), "--store", shop).exit_code == 0
    # 6,000 rows: more than one chunk, and the clash is in the last, so the check comes first.
    later = [{"event_id": f"d-new-{n}", "user_id": "cli-b", "type": "view", "item_id": "i1", "timestamp": T0 + n}
             for n in range(6000)]
    later.append({"event_id": "d1", "user_id": "cli-b", "type": "click", "item_id": "i0", "timestamp": T0})
    result = run("ingest", str(_write(tmp_path / "later.jsonl", later)), "--store", shop)
    assert_refused(result, "later.jsonl:6001:", "event 'd1' is already stored", "type")
    assert _events(shop, "cli-b") == ["d1:i0"]


def test_ingesting_a_file_again_is_idempotent_even_without_timestamps(shop: str, tmp_path: Path) -> None:
    rows = [{"event_id": "f1", "user_id": "cli-c", "type": "view", "item_id": "i0"},
            {"event_id": "f2", "user_id": "cli-c", "type": "click", "item_id": "i1", "timestamp": T0},
            {"event_id": "f1", "user_id": "cli-c", "type": "view", "item_id": "i0"}]
    path = _write(tmp_path / "again.jsonl", rows)
    for _ in range(2):
        result = run("ingest", str(path), "--store", shop)
        assert result.exit_code == 0, result.stderr
    assert _events(shop, "cli-c") == ["f1:i0", "f2:i1"]


# ---------------------------------------------------------------- startup failures


@pytest.mark.parametrize("damage", ["garbage manifest", "manifest not an object", "model file missing"])
def test_serve_with_an_unreadable_snapshot_exits_2_in_one_line(shop: str, tmp_path: Path, damage: str) -> None:
    """A snapshot that cannot be read (a torn copy, a hand edit) stops ``serve`` in one line naming
    the snapshot and what to do, before the server starts: not uvicorn's startup traceback."""
    db = tmp_path / "shop.db"
    shutil.copy(shop.removeprefix("sqlite:///"), db)
    snapshot = tmp_path / "shop.db.models" / "v0001"
    snapshot.mkdir(parents=True)
    (snapshot.parent / "CURRENT").write_text("v0001\n")
    manifest = {"garbage manifest": "{not json", "manifest not an object": "[1, 2]",
                "model file missing": json.dumps({"format": 2, "models": {"als": "liverec.models.als.ALSModel"}})}
    (snapshot / "manifest.json").write_text(manifest[damage])
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEREC_")} | {"HF_HUB_OFFLINE": "1",
                                                                                     "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "liverec.cli", "serve", "--store", f"sqlite:///{db}",
                           "--port", str(_free_port())], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "v0001" in done.stderr and "Traceback" not in done.stderr, done.stderr


# ---------------------------------------------------------------- forget with pseudonyms


def test_forget_pseudonymises_the_id_as_the_service_does(shop: str, tmp_path: Path) -> None:
    """With a user_id_secret, the service stores pseudonyms: ``liverec forget alice --config``
    must erase the user the service knows as alice, not look for the raw id."""
    from liverec.service.privacy import Pseudonymizer

    secret = "a-secret-of-enough-length-for-hmac"
    db = tmp_path / "shop.db"
    shutil.copy(shop.removeprefix("sqlite:///"), db)
    stored = Pseudonymizer(secret).user_id("alice")
    with Engine.open(f"sqlite:///{db}") as engine:
        engine.ingest_events([{"event_id": "p1", "user_id": stored, "type": "click", "item_id": "i0", "timestamp": T0}])
    config = tmp_path / "liverec.toml"
    config.write_text(f'user_id_secret = "{secret}"\n')
    result = run("forget", "alice", "--store", f"sqlite:///{db}", "--config", str(config))
    assert result.exit_code == 0, result.stderr
    assert "erased 1 event" in result.stdout
    with Engine.open(f"sqlite:///{db}") as engine:
        assert engine.store.events.by_user(stored) == []
