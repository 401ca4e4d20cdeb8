"""Read items or events from JSONL or CSV files into the dicts ``Engine.ingest_*`` accepts.

CSV columns are the Item/Event field names; list fields (categories, tags) are separated by
``|`` and ``attributes`` is a JSON object; an empty cell is an absent field. Bad rows raise an
error naming file, line and problem: a half-ingested file is worse than a clear stop.
docs/ingest.md is the reference of both formats.

>>> _from_csv({"item_id": "i1", "title": "Tent", "categories": "hiking|camping", "available": "no",
...            "description": ""}, Path("items.csv"), 2)
{'item_id': 'i1', 'title': 'Tent', 'categories': ['hiking', 'camping'], 'available': False}
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from liverec.core.errors import InvalidInputError

LIST_FIELDS = ("categories", "tags")
NUMBER_FIELDS = ("value", "rating", "timestamp", "created_at")  # rating: a review's value (Event.from_dict)
TRUE_WORDS = ("1", "true", "yes")
FALSE_WORDS = ("0", "false", "no")


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig", newline="")  # -sig: spreadsheets write a BOM


def _format(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if ext in (".csv", ".tsv"):
        return ext[1:]
    raise InvalidInputError(f"{path}: cannot tell the format from {ext or 'no extension'!r}; use .jsonl or .csv",
                            field="path", value=str(path))


def read_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record) from a JSONL, CSV or TSV file (optionally gzipped)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"{path}: no such file", field="path", value=str(path))
    fmt = _format(path)
    with _open(path) as fh:
        if fmt == "jsonl":
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"{path}:{line_no}: not valid JSON ({exc.msg})", field="line",
                                            value=line_no) from None
                if not isinstance(record, dict):
                    raise InvalidInputError(f"{path}:{line_no}: expected a JSON object", field="line", value=line_no)
                yield line_no, record
            return
        reader = csv.DictReader(fh, delimiter="\t" if fmt == "tsv" else ",")
        for row in reader:
            yield reader.line_num, _from_csv(row, path, reader.line_num)


def _from_csv(row: dict[str, Any], path: Path, line_no: int) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, raw in row.items():
        if key is None:
            raise InvalidInputError(f"{path}:{line_no}: more values than columns", field="line", value=line_no)
        if raw is None or raw == "":
            continue
        if key in LIST_FIELDS:
            record[key] = [v for v in raw.split("|") if v.strip()]
        elif key in NUMBER_FIELDS:
            try:
                record[key] = float(raw)
            except ValueError:
                record[key] = raw  # an ISO time; the model validates it
        elif key == "available":
            flag = raw.strip().lower()
            if flag not in TRUE_WORDS + FALSE_WORDS:
                raise InvalidInputError(
                    f"{path}:{line_no}: available {raw!r} is not one of {', '.join(TRUE_WORDS + FALSE_WORDS)}",
                    field="available", value=raw,
                )
            record[key] = flag in TRUE_WORDS
        elif key == "attributes":
            try:
                record[key] = json.loads(raw)
            except json.JSONDecodeError:
                raise InvalidInputError(f"{path}:{line_no}: attributes is not a JSON object", field="attributes",
                                        value=raw) from None
        else:
            record[key] = raw
    return record
