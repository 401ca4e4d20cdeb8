"""A newcomer's first commands (issue 13): no silent mistakes, and output that explains itself.

A command that only reads refuses a store that is not there (exit 2, one line, nothing created);
``ingest`` and ``demo`` create one, ``serve`` and ``keys create`` only with ``--create``. A user
with no events gets what a new visitor sees, and is told so. Help shows flags as flags; tables say
why scores do not descend and never cut a title; ``forget`` answers in a sentence; JSON says what
was asked.

Commands run in-process with typer's CliRunner, on the bilingual catalog of tests/test_cli.py
plus two long titles, ingested into a directory that does not exist yet and trained once.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from liverec.core.errors import NotFoundError, StorageError
from liverec.engine import Engine
from liverec.storage import open_store
from tests.test_cli import EVENTS, T0, squeezed, write_events, write_items
from tests.test_cli_service import assert_refused, run

pytestmark = pytest.mark.usefixtures("no_liverec_environment")

LONG_TITLES = {
    "long01": "Ultralight waterproof two-person backpacking tent with aluminium poles and a footprint",
    "long02": "超轻防水双人徒步露营帐篷铝合金帐杆附带地布和收纳袋适合四季户外使用",
}
ITEMS = 30 + len(LONG_TITLES)
NO_STORE = "create one with `liverec ingest` or `liverec demo`"
MMR_NOTE = "ordered for diversity (MMR), not by score alone"


@dataclass(frozen=True)
class Shop:
    root: Path
    path: Path
    url: str


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """The catalog ingested into ``new/dir/shop.db`` (neither directory exists before), then trained."""
    root = tmp_path_factory.mktemp("newcomer")
    write_items(root / "items.jsonl")
    with (root / "items.jsonl").open("a", encoding="utf-8") as fh:
        for item_id, title in LONG_TITLES.items():
            record = {"item_id": item_id, "title": title, "categories": ["hiking"], "created_at": T0 - 86400.0}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    write_events(root / "events.csv", EVENTS)
    path = root / "new" / "dir" / "shop.db"
    url = f"sqlite:///{path}"
    for args in (("ingest", str(root / "items.jsonl"), "--kind", "items"), ("ingest", str(root / "events.csv")),
                 ("train",)):
        result = run(*args, "--store", url)
        assert result.exit_code == 0, result.output
    return Shop(root, path, url)


@pytest.fixture
def shop_copy(shop: Shop, tmp_path: Path) -> str:
    """A copy of the trained store, for a test that changes it."""
    shutil.copytree(shop.path.parent, tmp_path / "copy")
    return f"sqlite:///{tmp_path}/copy/shop.db"


def rows(result: Result) -> list[list[str]]:
    """The cells of each row of the table in ``result``, a wrapped cell's lines joined by newlines."""
    out: list[list[str]] = []
    for line in result.stdout.splitlines():
        cells = line.split("│")[1:-1]
        if len(cells) < 6:
            continue
        if cells[0].strip():
            out.append([cell.strip() for cell in cells])
        else:  # a wrapped row continues
            out[-1] = [f"{old}\n{cell.strip()}".strip() for old, cell in zip(out[-1], cells, strict=True)]
    return out


def json_of(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---------------------------------------------------------------- a store that is not there


READ_ONLY = [("recommend", "u01"), ("similar", "i1"), ("search", "tent"), ("interests", "u01"),
             ("forget", "u01"), ("train",), ("keys", "list"), ("keys", "revoke", "0000abcd")]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_command_that_reads_refuses_a_store_that_is_not_there_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///typo/mine_typo.db"  # relative, in a directory that does not exist either
    assert_refused(run(*command, "--store", url), f"error: no store at {url}; {NO_STORE}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [("keys", "list"), ("keys", "revoke", "0000abcd")], ids=" ".join)
def test_keys_refuse_a_keys_file_that_is_not_there(tmp_path: Path, command: tuple[str, ...]) -> None:
    path = tmp_path / "typo" / "keys.db"
    assert_refused(run(*command, "--keys-file", str(path)), f"error: no key file at {path}\n")
    assert list(tmp_path.iterdir()) == []


def test_listing_or_revoking_keys_of_a_store_without_any_creates_no_key_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    open_store(url).close()
    before = sorted(p.name for p in tmp_path.iterdir())
    listed = run("keys", "list", "--store", url)
    assert listed.exit_code == 0 and "0 API key(s)" in listed.stdout
    assert_refused(run("keys", "revoke", "0000abcd", "--store", url), "error: no API key with id '0000abcd'\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_serve_starts_an_empty_store_only_with_create(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    url = f"sqlite:///{tmp_path}/new/shop.db"
    assert_refused(run("serve", "--store", url), f"no store at {url}; {NO_STORE}, or pass --create")
    assert list(tmp_path.iterdir()) == [] and served == []
    result = run("serve", "--store", url, "--create")
    assert result.exit_code == 0, result.stderr
    assert len(served) == 1 and (tmp_path / "new" / "shop.db").is_file()
    assert run("serve", "--store", url).exit_code == 0  # it exists now: no flag needed
    assert len(served) == 2


def test_keys_create_starts_a_store_only_with_create(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    args = ["keys", "create", "--name", "ops", "--scope", "admin", "--store", url]
    assert_refused(run(*args), f"no store at {url}; {NO_STORE}, or pass --create")
    assert list(tmp_path.iterdir()) == []
    result = run(*args, "--create")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "shop.db").is_file() and (tmp_path / "shop.db.keys.db").is_file()
    assert "1 API key(s)" in run("keys", "list", "--store", url).stdout


def test_a_memory_store_always_exists() -> None:
    open_store("memory://", create=False).close()
    # the refusal is about the user, not the store
    assert_refused(run("interests", "u1", "--store", "memory://"), "error: user 'u1' has no events\n")


def test_open_store_without_create_opens_only_what_exists(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a/b/shop.db"
    with pytest.raises(NotFoundError, match="no store at") as refused:
        open_store(url, create=False)
    assert (refused.value.kind, refused.value.key) == ("store", url)
    assert list(tmp_path.iterdir()) == []
    open_store(url).close()  # the library default still creates
    store = open_store(url, create=False)
    assert store.events.count() == 0
    store.close()
    # A path that cannot be a file is not "no store": opening names the real problem, creating nothing.
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(StorageError, match="cannot open sqlite store"):
        open_store(f"sqlite:///{tmp_path}/a-file/shop.db", create=False)


def test_engine_open_without_create_refuses_a_missing_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/typo.db"
    with pytest.raises(NotFoundError, match="no store at"):
        Engine.open(url, create=False)
    assert list(tmp_path.iterdir()) == []


def test_ingest_creates_its_store_and_directory(shop: Shop) -> None:
    assert shop.path.is_file()  # ingested into new/dir/, which did not exist
    assert json_of(run("similar", "hike01", "--k", "1", "--json", "--store", shop.url))["items"]


# ---------------------------------------------------------------- a user with no events


def test_recommend_for_a_user_with_no_events_shows_what_a_new_visitor_sees(shop: Shop) -> None:
    result = run("recommend", "newbie", "--store", shop.url)
    assert result.exit_code == 0, result.output
    assert result.stderr == "newbie has no events yet: showing what a new visitor sees\n"
    assert len(rows(result)) == 10
    listed = json_of(run("recommend", "newbie", "--k", str(ITEMS), "--json", "--store", shop.url))
    assert listed["new_visitor"] is True and len(listed["items"]) == ITEMS
    known = run("recommend", "u1", "--store", shop.url)
    assert known.exit_code == 0 and known.stderr == ""


# ---------------------------------------------------------------- output that explains itself


def test_help_shows_flags_without_a_type() -> None:
    commands = [(), ("ingest",), ("train",), ("recommend",), ("similar",), ("search",), ("interests",),
                ("forget",), ("demo",), ("serve",), ("evaluate",), ("keys",), ("keys", "create"),
                ("keys", "list"), ("keys", "revoke")]
    for command in commands:
        result = run(*command, "--help")
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.stdout, (command, result.stdout)
        assert "--help" in result.stdout
    assert "--no-serve" in run("demo", "--help").stdout
    assert "--create" in run("serve", "--help").stdout and "<int>" in run("serve", "--help").stdout


def test_interests_k_counts_tags() -> None:
    line = next(line for line in run("interests", "--help").stdout.splitlines() if "--k" in line)
    assert "interest tags" in line and "items" not in line


def test_a_table_whose_scores_do_not_descend_says_why(shop: Shop) -> None:
    orders = []
    for diversity in ("0", "0.3", "0.7", "1"):
        result = run("recommend", "u1", "--diversity", diversity, "--store", shop.url)
        scores = [float(row[4]) for row in rows(result)]
        descending = scores == sorted(scores, reverse=True)
        assert (MMR_NOTE in result.stdout) == (not descending), (diversity, scores, result.stdout)
        orders.append(descending)
    assert True in orders and False in orders  # both cases were seen
    similar = run("similar", "hike01", "--store", shop.url)
    assert "not by score" not in similar.stdout  # similar items come in score order


def test_titles_in_a_table_are_wrapped_never_cut(shop: Shop) -> None:
    for item_id, title in LONG_TITLES.items():
        result = run("search", title, "--k", "3", "--store", shop.url)
        row = next(row for row in rows(result) if row[1] == item_id)
        assert "\n" in row[2], row  # longer than the column: wrapped
        assert squeezed(row[2]) == squeezed(title)


def test_forget_answers_in_a_sentence_and_the_user_becomes_a_new_visitor(shop_copy: str) -> None:
    events = sum(1 for r in EVENTS if r.user_id == "u8")
    result = run("forget", "u8", "--store", shop_copy)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"erased {events} events and 0 served lists of u8; no live state was held\n"
    again = run("forget", "u8", "--store", shop_copy)
    assert again.stdout == "erased 0 events and 0 served lists of u8; no live state was held\n"
    listed = run("recommend", "u8", "--json", "--store", shop_copy)
    assert listed.stderr == "u8 has no events yet: showing what a new visitor sees\n"
    assert json_of(listed)["new_visitor"] is True


def test_json_says_what_was_asked(shop: Shop) -> None:
    recommended = json_of(run("recommend", "u1", "--k", "3", "--json", "--store", shop.url))
    assert {k: recommended[k] for k in ("user_id", "new_visitor", "model_version")} == {
        "user_id": "u1", "new_visitor": False, "model_version": "v0001"}
    assert len(recommended["items"]) == 3
    assert json_of(run("similar", "hike01", "--k", "2", "--json", "--store", shop.url))["item_id"] == "hike01"
    assert json_of(run("search", "tent", "--k", "2", "--json", "--store", shop.url))["query"] == "tent"
