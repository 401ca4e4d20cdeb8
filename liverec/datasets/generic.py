"""A data set in liverec's own terms: an items file and an events file, CSV or JSONL, plain or gzipped.

The rows are :class:`~liverec.core.types.Item` and :class:`~liverec.core.types.Event` fields, as
:mod:`liverec.datasets.files` reads them (CSV list fields separated by ``|``). Two things differ
from ingesting the same rows through the API, both so that reading a file twice gives the same
data set: an item without ``created_at`` gets 0 (unknown), not "now", and an event without a
``timestamp`` is a malformed row, not "now".
"""

from __future__ import annotations

import gzip
import re
import tempfile
from collections.abc import Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any

from liverec.core.errors import InvalidInputError
from liverec.core.types import Event, EventType, Item
from liverec.datasets._common import RowPolicy, gc_paused, require_dir
from liverec.datasets.base import Dataset
from liverec.datasets.files import read_records

EXTENSIONS = (".csv", ".tsv", ".jsonl", ".ndjson", ".json")
HOLDS = "items.(csv|jsonl)[.gz] and events.(csv|jsonl)[.gz]"


def read_generic(directory: str | Path, *, skip_bad: bool = False) -> Dataset:
    """Read ``items.*`` and ``events.*`` from ``directory``; events come out sorted by time, stably.

    Parameters
    ----------
    directory
        A folder holding one items file and one events file (``.csv``, ``.tsv``, ``.jsonl``,
        ``.ndjson`` or ``.json``, each optionally ``.gz``).
    skip_bad
        Skip malformed rows, recording each in ``Dataset.skipped``, instead of raising
        :class:`~liverec.core.errors.InvalidInputError` naming file, line and problem. An
        event naming an item the items file lacks is malformed: the engine would refuse it.
    """
    directory = Path(directory)
    require_dir(directory, "csv", HOLDS)
    items_path, events_path = _find(directory, "items"), _find(directory, "events")
    rows = RowPolicy(skip_bad)
    with gc_paused():
        items = _read_items(items_path, rows)
        events = _read_events(events_path, {i.item_id for i in items}, rows)
    users = len({e.user_id for e in events})
    notes = [f"{users:,} users, {len(items):,} items, {len(events):,} events", *rows.note()]
    return Dataset(name=directory.name, items=items, events=events, skipped=rows.skipped, notes=notes)


def _find(directory: Path, stem: str) -> Path:
    names = [f"{stem}{ext}{gz}" for ext in EXTENSIONS for gz in ("", ".gz")]
    found = [directory / n for n in names if (directory / n).is_file()]
    if len(found) == 1:
        return found[0]
    if found:
        raise InvalidInputError(f"{directory} holds several {stem} files ({', '.join(p.name for p in found)}); "
                                "keep one", field="path", value=str(directory))
    raise InvalidInputError(f"{directory} holds no {stem} file; expected one of {', '.join(names)}",
                            field="path", value=str(directory))


def _records(path: Path, rows: RowPolicy) -> Iterator[tuple[int, dict[str, Any]]]:
    """:func:`read_records`, going on past lines it cannot parse when ``rows`` skips bad rows.

    ``read_records`` stops at a line it cannot parse (JSON that does not parse, a CSV row with
    too many values) and has no way to pass over it. So, when skipping, each such line is
    recorded and blanked in a temporary copy (blank lines are skipped and keep the numbering),
    and reading starts again from there, passing over what was already given: fine for the odd
    broken line, quadratic for a file full of them. A skip hook in ``read_records`` would
    make this unnecessary.
    """
    done = 0
    source = path
    blanked: set[int] = set()
    with tempfile.TemporaryDirectory(prefix="liverec-skip-") as scratch:
        while True:
            try:
                for line_no, record in read_records(source):
                    if line_no > done:
                        done = line_no
                        yield line_no, record
                return
            except InvalidInputError as exc:
                found = re.match(rf"{re.escape(str(source))}:(\d+): (.*)", str(exc), re.DOTALL)
                if found is None or not rows.skip_bad:
                    raise
                line = int(found.group(1))
                if line in blanked:  # the copy did not get past it: do not loop
                    raise
                rows.bad(path, line, found.group(2))
                blanked.add(line)
                source = _blank_lines(path, blanked, Path(scratch))


def _blank_lines(path: Path, lines: set[int], scratch: Path) -> Path:
    """A copy of ``path`` (gunzipped, same format suffix) with the given 1-based ``lines`` emptied."""
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    kept = [b"" if n in lines else text for n, text in enumerate(data.split(b"\n"), start=1)]
    copy = scratch / path.name.removesuffix(".gz")
    copy.write_bytes(b"\n".join(kept))
    return copy


def _read_items(path: Path, rows: RowPolicy) -> list[Item]:
    items: list[Item] = []
    first_line: dict[str, int] = {}
    for line_no, record in _records(path, rows):
        if record.get("created_at") is None:
            record["created_at"] = 0.0
        try:
            item = Item.from_dict(record)
        except InvalidInputError as exc:
            rows.bad(path, line_no, str(exc))
            continue
        if item.item_id in first_line:
            rows.bad(path, line_no, f"item {item.item_id!r} appears again (first on line {first_line[item.item_id]})")
            continue
        first_line[item.item_id] = line_no
        items.append(item)
    return items


def _read_events(path: Path, item_ids: set[str], rows: RowPolicy) -> list[Event]:
    events: list[Event] = []
    for line_no, record in _records(path, rows):
        if record.get("timestamp") is None:
            rows.bad(path, line_no, "timestamp is missing; a data set's events need their times")
            continue
        try:
            event = Event.from_dict(record)
        except InvalidInputError as exc:
            rows.bad(path, line_no, str(exc))
            continue
        if event.type is not EventType.SEARCH and event.item_id not in item_ids:
            rows.bad(path, line_no, f"item {event.item_id!r} is not in the items file")
            continue
        events.append(event)
    events.sort(key=attrgetter("timestamp"))  # stable: equal times keep file order
    return events
