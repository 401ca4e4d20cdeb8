"""The ``liverec`` command line on a tiny bilingual catalog: one store, trained once for the module.

Thirty items in three categories (cameras, hiking, laptops; a few titles in Chinese) and ~150
events of eight users who each stay within one category. Commands are run in-process with
typer's CliRunner against a SQLite store; every error must exit 2 with ``error: …`` on stderr.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from liverec.cli import app
from liverec.storage import open_store

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TAG_HALF_LIFE = 3 * 86400.0  # Settings' default

CAMERAS = {
    "cam01": "Mirrorless camera with 24MP sensor",
    "cam02": "Full-frame DSLR camera body",
    "cam03": "50mm f/1.8 prime lens for portraits",
    "cam04": "Carbon fiber camera tripod",
    "cam05": "Waterproof 4K action camera",
    "cam06": "Instant film camera",
    "cam07": "Camera shoulder bag with padded inserts",
    "cam08": "微单数码相机 2400万像素",
    "cam09": "长焦变焦镜头 70-200mm",
    "cam10": "128GB SD memory card for cameras",
}
HIKING = {
    "hike01": "Lightweight two-person hiking tent",
    "hike02": "Waterproof leather hiking boots",
    "hike03": "40L hiking backpack with rain cover",
    "hike04": "Aluminium trekking poles",
    "hike05": "Down sleeping bag for cold nights",
    "hike06": "Portable camping gas stove",
    "hike07": "Trail running shoes with grippy soles",
    "hike08": "户外登山背包 50升",
    "hike09": "超轻露营帐篷 双人",
    "hike10": "Hiking water filter bottle",
}
LAPTOPS = {
    "lap01": "Ultralight 13-inch laptop",
    "lap02": "Gaming laptop with RTX graphics",
    "lap03": "Business notebook computer, 14-inch",
    "lap04": "2-in-1 convertible touchscreen laptop",
    "lap05": "轻薄笔记本电脑 14英寸 长续航",
    "lap06": "高性能游戏笔记本电脑",
    "lap07": "Affordable lightweight laptop for students",
    "lap08": "Chromebook laptop, 11-inch",
    "lap09": "Mobile workstation laptop, 16-inch",
    "lap10": "Thin and light notebook with long battery life",
}
CATALOG = {"cameras": CAMERAS, "hiking": HIKING, "laptops": LAPTOPS}
CATEGORY_OF = {item_id: cat for cat, titles in CATALOG.items() for item_id in titles}
HIKE = list(HIKING)
CAM = list(CAMERAS)
LAP = list(LAPTOPS)

# Who browses what: views (in a rotated order) then clicks, each user in their own session.
BROWSING: dict[str, list[str]] = {
    "u2": HIKE,
    "u3": HIKE[2:],
    "u4": CAM,
    "u5": CAM[3:] + CAM[:3],
    "u6": LAP,
    "u7": LAP[2:],
    "u8": HIKE[4:] + HIKE[:4],
}
U1_SEEN = HIKE[:6]  # u1, the user under test, is into hiking and has seen hike01-hike06


@dataclass(frozen=True)
class Row:
    user_id: str
    type: str
    item_id: str = ""
    value: str = ""
    text: str = ""
    timestamp: float = 0.0


def _events() -> list[Row]:
    rows: list[Row] = []
    for n, (user, items) in enumerate(BROWSING.items()):
        t = T0 + 7200.0 * n
        for step in range(len(items)):
            rows.append(Row(user, "view", items[(n + step) % len(items)], timestamp=t))
            t += 60.0
        for item_id in items:
            rows.append(Row(user, "click", item_id, timestamp=t))
            t += 60.0
    t = T0 + 7200.0 * len(BROWSING)
    u1 = [Row("u1", "search", text="lightweight tent", timestamp=t)]
    u1 += [Row("u1", "view", item_id, timestamp=t + 60.0 * (k + 1)) for k, item_id in enumerate(U1_SEEN)]
    u1 += [Row("u1", "click", item_id, timestamp=t + 600.0 + 60.0 * k) for k, item_id in enumerate(HIKE[:3])]
    u1.append(Row("u1", "add_to_cart", "hike03", timestamp=t + 900.0))
    u1.append(Row("u1", "review", "hike01", value="5", text="Great tent, light and easy to pitch", timestamp=t + 960.0))
    return rows + u1


EVENTS = _events()
EVENT_WEIGHTS = {"view": 1.0, "click": 1.5, "add_to_cart": 3.0, "review": 3.0, "search": 2.0}


def write_items(path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for category, titles in CATALOG.items():
            for item_id, title in titles.items():
                record = {"item_id": item_id, "title": title, "categories": [category], "created_at": T0 - 86400.0}
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_events(path: Path, rows: list[Row]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user_id", "type", "item_id", "value", "text", "timestamp"])
        for r in rows:
            writer.writerow([r.user_id, r.type, r.item_id, r.value, r.text, repr(r.timestamp)])


@dataclass(frozen=True)
class Trained:
    dir: Path
    url: str
    train_stdout: str


runner = CliRunner()


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def squeezed(text: str) -> str:
    """``text`` without any whitespace: immune to where the console wrapped or folded a line."""
    return "".join(text.split())


def assert_error(result: Result, message: str, *, quiet: bool = True) -> None:
    """Exit code 2 and ``error: <message>`` on stderr (``quiet``: and nothing on stdout)."""
    assert result.exit_code == 2, result.output
    if quiet:
        assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert squeezed(message) in squeezed(result.stderr)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("cli")
    url = f"sqlite:///{root}/t.db"
    write_items(root / "items.jsonl")
    write_events(root / "events.csv", EVENTS)
    result = run("ingest", str(root / "items.jsonl"), "--kind", "items", "--store", url)
    assert result.exit_code == 0, result.output
    assert squeezed(f"ingested 30 items into {url}") in squeezed(result.stdout)
    result = run("ingest", str(root / "events.csv"), "--store", url)
    assert result.exit_code == 0, result.output
    assert squeezed(f"ingested {len(EVENTS)} events into {url}") in squeezed(result.stdout)
    result = run("train", "--store", url)
    assert result.exit_code == 0, result.output
    return Trained(root, url, result.stdout)


@pytest.fixture
def store_copy(trained: Trained, tmp_path: Path) -> str:
    """A copy of the trained store, for tests that change it (the module's store stays intact)."""
    copy = tmp_path / "copy"
    shutil.copytree(trained.dir, copy)
    return f"sqlite:///{copy}/t.db"


def json_out(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_data_is_the_size_the_docstring_says() -> None:
    assert len(CATEGORY_OF) == 30
    assert 140 <= len(EVENTS) <= 160
    assert {r.type for r in EVENTS} == {"view", "click", "add_to_cart", "search", "review"}


def test_train_reports_a_snapshot(trained: Trained) -> None:
    models = trained.dir / "t.db.models"
    assert (models / "CURRENT").read_text() == "v0001"
    manifest = json.loads((models / "v0001" / "manifest.json").read_text())
    assert manifest["report"]["events"] == len(EVENTS)
    assert manifest["report"]["items"] == 30
    assert manifest["report"]["users"] == 8
    assert '"version": "v0001"' in trained.train_stdout  # the report, printed as JSON


def test_recommend_json_gives_k_unseen_items_with_reasons(trained: Trained) -> None:
    items = json_out(run("recommend", "u1", "--k", "4", "--json", "--store", trained.url))["items"]
    assert len(items) == 4
    ids = [r["item_id"] for r in items]
    assert len(set(ids)) == 4
    assert not set(ids) & set(U1_SEEN)
    for r in items:
        assert set(r) == {"item_id", "score", "reasons"}
        assert isinstance(r["score"], float)
        assert r["reasons"], r
        assert all(set(reason) == {"kind", "text", "evidence"} for reason in r["reasons"])
    # u1 has only ever touched hiking items and hiking users viewed hike07-hike10 alongside them
    assert set(ids) == {"hike07", "hike08", "hike09", "hike10"}


def test_recommend_include_seen(trained: Trained) -> None:
    items = json_out(run("recommend", "u1", "--k", "10", "--include-seen", "--json", "--store", trained.url))["items"]
    assert set(U1_SEEN) & {r["item_id"] for r in items}


def test_recommend_category_filter(trained: Trained) -> None:
    items = json_out(run("recommend", "u1", "--category", "laptops", "--k", "3", "--json", "--store", trained.url))
    assert len(items["items"]) == 3
    assert {CATEGORY_OF[r["item_id"]] for r in items["items"]} == {"laptops"}
    hiking = json_out(run("recommend", "u1", "--category", "hiking", "--json", "--store", trained.url))["items"]
    assert {r["item_id"] for r in hiking} == {"hike07", "hike08", "hike09", "hike10"}  # all unseen hiking items
    excluded = json_out(
        run("recommend", "u1", "--exclude-category", "hiking", "--k", "5", "--json", "--store", trained.url)
    )["items"]
    assert len(excluded) == 5
    assert "hiking" not in {CATEGORY_OF[r["item_id"]] for r in excluded}


def test_recommend_table(trained: Trained) -> None:
    result = run("recommend", "u1", "--k", "2", "--store", trained.url)
    assert result.exit_code == 0, result.output
    assert "recommendations for u1" in result.stdout


def test_similar_json(trained: Trained) -> None:
    items = json_out(run("similar", "hike01", "--k", "3", "--json", "--store", trained.url))["items"]
    ids = [r["item_id"] for r in items]
    assert len(ids) == 3 and "hike01" not in ids
    assert {CATEGORY_OF[i] for i in ids} == {"hiking"}
    assert all(r["reasons"][0]["evidence"] == "hike01" for r in items)


def test_search_is_cross_lingual(trained: Trained) -> None:
    items = json_out(run("search", "轻薄笔记本电脑", "--k", "3", "--json", "--store", trained.url))["items"]
    assert len(items) == 3
    # lap05 says exactly this, but USE puts lap06 (高性能游戏笔记本电脑) a hair closer (0.677 vs 0.673)
    assert [CATEGORY_OF[r["item_id"]] for r in items] == ["laptops"] * 3
    assert {"lap05", "lap06"} <= {r["item_id"] for r in items}
    for r in items:
        assert r["reasons"] == [{"kind": "search", "text": "matches '轻薄笔记本电脑'", "evidence": "轻薄笔记本电脑"}]
    english = json_out(run("search", "camera lens", "--k", "2", "--json", "--store", trained.url))["items"]
    assert {CATEGORY_OF[r["item_id"]] for r in english} == {"cameras"}


def test_interests_json(trained: Trained) -> None:
    interests = json_out(run("interests", "u1", "--k", "3", "--json", "--store", trained.url))["interests"]
    assert len(interests) == 3
    assert interests[0]["tag"] == "hiking"  # every item u1 touched is in the hiking category
    u1 = [r for r in EVENTS if r.user_id == "u1" and r.item_id]
    last = max(r.timestamp for r in EVENTS if r.user_id == "u1")
    expected = sum(EVENT_WEIGHTS[r.type] * 2.0 ** (-(last - r.timestamp) / TAG_HALF_LIFE) for r in u1)
    assert interests[0]["weight"] == pytest.approx(expected, abs=1e-4)  # a 5-star review counts in full


def test_forget_then_interests_is_an_error(store_copy: str) -> None:
    url = store_copy
    result = run("forget", "u1", "--store", url)
    assert result.exit_code == 0, result.output
    assert "erased 12 events and 0 served lists of u1; no live state was held" in result.stdout
    assert_error(run("interests", "u1", "--store", url), "user 'u1' has no events")
    assert json_out(run("interests", "u2", "--k", "1", "--json", "--store", url))["interests"][0]["tag"] == "hiking"


def test_ingest_bad_event_type_names_value_and_line(trained: Trained, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    write_events(path, [Row("u1", "view", "hike01", timestamp=T0), Row("u1", "clik", "hike02", timestamp=T0)])
    result = run("ingest", str(path), "--store", trained.url)
    assert_error(result, f"{path}:3: event type 'clik' is not one of view, click")


def test_ingest_is_all_or_nothing(trained: Trained, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    write_events(path, [Row("u9", "view", "hike01", timestamp=T0), Row("u9", "clik", "hike02", timestamp=T0)])
    assert run("ingest", str(path), "--store", trained.url).exit_code == 2
    assert_error(run("interests", "u9", "--store", trained.url), "user 'u9' has no events")


def test_ingest_unknown_item_names_it(trained: Trained, tmp_path: Path) -> None:
    path = tmp_path / "unknown.csv"
    write_events(path, [Row("u9", "view", "hike99", timestamp=T0)])
    # known items are checked by the engine, after the progress bar has started on stdout
    result = run("ingest", str(path), "--store", trained.url)
    assert_error(result, "refers to unknown item 'hike99'", quiet=False)


def test_ingest_of_a_long_file_is_all_or_nothing(store_copy: str, tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    rows = [Row("u10", "view", HIKE[n % 10], timestamp=T0 + n) for n in range(5000)]
    write_events(path, [*rows, Row("u10", "view", "hike99", timestamp=T0 + 5000)])
    result = run("ingest", str(path), "--store", store_copy)
    assert_error(result, "refers to unknown item 'hike99'", quiet=False)
    assert_error(run("interests", "u10", "--store", store_copy), "user 'u10' has no events")


def test_a_long_error_is_still_one_line(trained: Trained, tmp_path: Path) -> None:
    folder = tmp_path / ("long-directory-name-" * 10)  # longer than any terminal is wide
    folder.mkdir()
    path = folder / "bad.csv"
    write_events(path, [Row("u1", "view", "hike01", timestamp=T0), Row("u1", "clik", "hike02", timestamp=T0)])
    result = run("ingest", str(path), "--store", trained.url)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("item_id", ["[/oops]", "[red]x"])
def test_error_text_is_printed_verbatim(trained: Trained, item_id: str) -> None:
    result = run("similar", item_id, "--store", trained.url)
    assert result.exit_code == 2
    assert result.stderr == f"error: item {item_id!r} is not in the catalog\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("recommend", "u1", "--k", "0"), "error: k 0 must be an integer from 1 to 1000"),
        (("recommend", "u1", "--k", "1001"), "error: k 1001 must be an integer from 1 to 1000"),
        (("recommend", "u1", "--diversity", "2"), "error: diversity 2.0 must be between 0 and 1"),
        (("similar", "nope"), "error: item 'nope' is not in the catalog"),
        (("search", "  "), "error: query must be a non-empty text"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(trained: Trained, args: tuple[str, ...], message: str) -> None:
    result = run(*args, "--store", trained.url)
    assert_error(result, message)
    assert result.stderr == message + "\n"


def test_ingest_unknown_kind(trained: Trained) -> None:
    result = run("ingest", str(trained.dir / "items.jsonl"), "--kind", "widgets", "--store", trained.url)
    assert_error(result, "error: --kind 'widgets' must be items or events")
    assert result.stderr == "error: --kind 'widgets' must be items or events\n"


def test_ingest_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.jsonl"
    result = run("ingest", str(path), "--store", f"sqlite:///{tmp_path}/never.db")
    assert_error(result, f"{path}: no such file")
    assert not (tmp_path / "never.db").exists()  # nothing opened for a file that is not there


def test_train_without_events(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    open_store(url).close()  # an empty store (a missing one is refused: tests/test_cli_newcomer.py)
    assert_error(
        run("train", "--store", url),
        "there are no events to train on; ingest events first",
        quiet=False,
    )


def test_bad_store_url(tmp_path: Path) -> None:
    assert_error(run("interests", "u1", "--store", "redis://localhost"), "has unknown scheme 'redis'")


@pytest.mark.parametrize(
    ("command", "phrase"),
    [
        ((), "a real-time, language-aware recommender engine"),
        (("ingest",), "Ingest items or events"),
        (("train",), "Train every model"),
        (("recommend",), "Recommend items for a user"),
        (("similar",), "Items similar to an item"),
        (("search",), "Semantic, cross-lingual search"),
        (("interests",), "A user's interest tags"),
        (("forget",), "Erase a user's events"),
        (("demo",), "Build the bilingual demo world"),
    ],
)
def test_help(command: tuple[str, ...], phrase: str) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert phrase in result.stdout
    if command:
        assert "--store" in result.stdout
    else:
        for name in ("ingest", "train", "recommend", "similar", "search", "interests", "forget", "demo"):
            assert name in result.stdout


def test_demo_tells_the_interest_shift_end_to_end(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/demo.db"
    args = ["demo", "--store", store, "--no-serve", "--items", "700", "--users", "120"]
    for run in (1, 2):  # a rerun on the same store tells the same story
        result = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        before = re.search(r"recommendations now \(([^)]*)\)", result.output)
        after = re.search(r"recommendations after \(([^)]*)\)", result.output)
        assert before and after, result.output
        assert "cameras" in before.group(1) and "hiking" not in before.group(1)
        hiking = re.search(r"hiking ×(\d+)", after.group(1))
        assert hiking and int(hiking.group(1)) >= 3, after.group(1)
        assert "no retraining" in result.output
        assert (run == 2) == ("reset" in result.output)


def test_synth_streams_a_seeded_world_into_a_store_and_refuses_a_bad_size(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/synth.db"
    result = run("synth", "--store", url, "--items", "300", "--events", "2000", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "Stored300itemsand2000events" in squeezed(result.stdout)
    store = open_store(url, create=False)
    try:
        assert store.catalog.count() == 300 and store.events.count() == 2000
    finally:
        store.close()
    assert_error(run("synth", "--store", f"sqlite:///{tmp_path}/bad.db", "--items", "0"),
                 "items must be an integer >= 1, got 0")
