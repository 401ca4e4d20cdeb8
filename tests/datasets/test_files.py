"""Reading items and events from JSONL, CSV and TSV files, plain or gzipped."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from liverec.core.errors import InvalidInputError
from liverec.core.types import Event, Item
from liverec.datasets.files import read_records

ITEMS = [
    {"item_id": "i1", "title": "Trail shoes", "categories": ["hiking", "running"], "attributes": {"price": 89.5}},
    {"item_id": "i2", "title": "轻薄笔记本电脑", "language": "zh", "available": False, "created_at": 1700000000},
]

CSV_ITEMS = (
    "item_id,title,description,categories,tags,attributes,available,created_at\n"
    'i1,Trail shoes,"Light, grippy",hiking|running,,"{""price"": 89.5, ""colors"": [""red""]}",true,1700000000\n'
    "i2,轻薄笔记本电脑,,laptops| |,thin|light,,no,2024-01-02T03:04:05Z\n"
)

CSV_EVENTS = (
    "event_id,user_id,type,item_id,value,text,timestamp\n"
    "e1,u1,view,i1,,,1700000000.5\n"
    'e2,u1,review,i1,4,"Great grip, comfy",1700000100\n'
    "e3,u2,search,,,trail shoes,1700000200\n"
)


def records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    return list(read_records(path))


def test_jsonl_gives_the_objects_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(ITEMS[0]) + "\n\n" + json.dumps(ITEMS[1], ensure_ascii=False) + "\n", encoding="utf-8")
    assert records(path) == [(1, ITEMS[0]), (3, ITEMS[1])]  # the blank line 2 is skipped
    assert [Item.from_dict(r).item_id for _, r in records(path)] == ["i1", "i2"]


def test_jsonl_gz_reads_like_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for item in ITEMS:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    assert records(path) == [(1, ITEMS[0]), (2, ITEMS[1])]


def test_ndjson_and_json_extensions_are_jsonl(tmp_path: Path) -> None:
    for name in ("e.ndjson", "e.json"):
        path = tmp_path / name
        path.write_text('{"user_id": "u1", "type": "view", "item_id": "i1"}\n')
        assert records(path) == [(1, {"user_id": "u1", "type": "view", "item_id": "i1"})]


def test_csv_items_split_lists_parse_json_numbers_and_booleans(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text(CSV_ITEMS, encoding="utf-8")
    assert records(path) == [
        (
            2,
            {
                "item_id": "i1",
                "title": "Trail shoes",
                "description": "Light, grippy",
                "categories": ["hiking", "running"],
                "attributes": {"price": 89.5, "colors": ["red"]},
                "available": True,
                "created_at": 1700000000.0,
            },
        ),
        (
            3,
            {
                "item_id": "i2",
                "title": "轻薄笔记本电脑",
                "categories": ["laptops"],  # blank list entries are dropped
                "tags": ["thin", "light"],
                "available": False,
                "created_at": "2024-01-02T03:04:05Z",  # not a number: left for Item to parse
            },
        ),
    ]
    item = Item.from_dict(records(path)[1][1])
    assert item.created_at == 1704164645.0


def test_csv_events(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(CSV_EVENTS, encoding="utf-8")
    assert records(path) == [
        (2, {"event_id": "e1", "user_id": "u1", "type": "view", "item_id": "i1", "timestamp": 1700000000.5}),
        (
            3,
            {
                "event_id": "e2",
                "user_id": "u1",
                "type": "review",
                "item_id": "i1",
                "value": 4.0,
                "text": "Great grip, comfy",
                "timestamp": 1700000100.0,
            },
        ),
        (4, {"event_id": "e3", "user_id": "u2", "type": "search", "text": "trail shoes", "timestamp": 1700000200.0}),
    ]
    events = [Event.from_dict(r) for _, r in records(path)]
    assert [e.type.value for e in events] == ["view", "review", "search"]
    assert events[2].item_id is None


def test_tsv_and_csv_gz(tmp_path: Path) -> None:
    tsv = tmp_path / "events.tsv"
    tsv.write_text("user_id\ttype\titem_id\ttimestamp\nu1\tclick\ti1\t5\n")
    assert records(tsv) == [(2, {"user_id": "u1", "type": "click", "item_id": "i1", "timestamp": 5.0})]
    gz = tmp_path / "events.csv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.write(CSV_EVENTS)
    plain = tmp_path / "events.csv"
    plain.write_text(CSV_EVENTS, encoding="utf-8")
    assert records(gz) == records(plain)
    assert [line for line, _ in records(gz)] == [2, 3, 4]


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "file.jsonl"
    path.write_text('{"user_id": "u1"}\n{"user_id": "u2"}\n{"user_id": u3}\n{"user_id": "u4"}\n')
    rows = read_records(path)
    assert next(rows) == (1, {"user_id": "u1"})
    assert next(rows) == (2, {"user_id": "u2"})
    with pytest.raises(InvalidInputError, match=r"file\.jsonl:3: not valid JSON") as info:
        next(rows)
    assert info.value.value == 3
    assert str(info.value).startswith(str(path))


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "file.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(InvalidInputError, match=r"file\.jsonl:2: expected a JSON object"):
        records(path)


def test_csv_bad_attributes_and_extra_values(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,attributes\ni1,Shoes,{}\ni2,Tent,{not json}\n")
    with pytest.raises(InvalidInputError, match=r"items\.csv:3: attributes is not a JSON object") as info:
        records(path)
    assert info.value.field == "attributes"
    path.write_text("item_id,title\ni1,Shoes,extra\n")
    with pytest.raises(InvalidInputError, match=r"items\.csv:2: more values than columns"):
        records(path)


def test_csv_unreadable_available_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,available\ni1,Shoes,maybe\n")
    with pytest.raises(InvalidInputError, match="maybe"):
        records(path)


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("items.txt", "'.txt'"),
        ("items", "'no extension'"),
        ("items.parquet", "'.parquet'"),
        ("items.gz", "'no extension'"),
    ],
)
def test_unknown_extension_is_named(tmp_path: Path, name: str, named: str) -> None:
    path = tmp_path / name
    path.write_text("x")
    expected = f"cannot tell the format from {re.escape(named)}; use .jsonl or .csv"
    with pytest.raises(InvalidInputError, match=expected) as info:
        records(path)
    assert info.value.field == "path"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(InvalidInputError, match=r"nope\.jsonl: no such file") as info:
        records(path)
    assert info.value.value == str(path)
