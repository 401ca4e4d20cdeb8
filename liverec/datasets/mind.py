"""MIND (Microsoft News Dataset, Wu et al., ACL 2020): news articles and what users clicked.

- ``news.tsv``: news id, category, subcategory, title, abstract, URL, title entities, abstract
  entities (JSON lists of Wikidata entities with a ``Label``);
- ``behaviors.tsv``: impression id, user id, time (``11/11/2019 9:05:58 AM``), the user's click
  history (space-separated news ids, oldest first) and the impression's news, each ``N123-1``
  (clicked) or ``N123-0`` (shown, not clicked).

Only clicks become events. A news item shown and not clicked is not a dismissal: the user may
never have looked at it, so it is not emitted at all.
"""

from __future__ import annotations

import calendar
import json
from operator import attrgetter
from pathlib import Path
from typing import Any

from liverec.core.types import MAX_TEXT_LENGTH, MAX_TITLE_LENGTH, Event, EventType, Item
from liverec.datasets._common import RowPolicy, gc_paused, id_problem, read_lines, require_dir, split_long_title
from liverec.datasets.base import Dataset

HOLDS = "news.tsv and behaviors.tsv"
NEWS_FIELDS = ("news id", "category", "subcategory", "title", "abstract", "url", "title entities",
               "abstract entities")
MIN_NEWS_FIELDS = 4  # id, category, subcategory, title; the rest may be missing at the end of a line
BEHAVIOR_FIELDS = ("impression id", "user id", "time", "history", "impressions")
_CLICK = EventType.CLICK


def read_mind(directory: str | Path, *, skip_bad: bool = False) -> Dataset:
    """Read a MIND folder (``MINDsmall_train`` and the like) holding news.tsv and behaviors.tsv.

    Parameters
    ----------
    directory
        The folder with ``news.tsv`` and ``behaviors.tsv``.
    skip_bad
        Skip malformed rows, recording each in ``Dataset.skipped``, instead of raising
        :class:`~liverec.core.errors.InvalidInputError` naming file, line and problem.

    Returns
    -------
    Dataset
        Items: one per article (categories = category and subcategory, tags = the entities'
        labels). Events, all ``click``:

        - each clicked impression entry at the impression's time (MIND's times have no zone;
          they are read as UTC), id ``mind-IMPRESSION-POSITION``, session = the impression;
        - each history entry of a user, whose time MIND does not give: the history of the
          user's first impression is placed just before it, one second apart and in order
          (its last click one second before the impression), id ``mind-USER-hPOSITION``.

        Clicks on news that ``news.tsv`` lacks cannot refer to an item and are dropped;
        ``notes`` count them (a sample of MIND is not self-contained).
    """
    directory = Path(directory)
    require_dir(directory, "mind", HOLDS)
    rows = RowPolicy(skip_bad)
    with gc_paused():
        items = _read_news(directory / "news.tsv", rows)
        events, notes = _read_behaviors(directory / "behaviors.tsv", {i.item_id: i.item_id for i in items}, rows)
    users = len({e.user_id for e in events})
    notes = [*notes, f"{users:,} users, {len(items):,} news, {len(events):,} click events", *rows.note()]
    return Dataset(name=directory.name or "mind", items=items, events=events, skipped=rows.skipped, notes=notes)


def _read_news(path: Path, rows: RowPolicy) -> list[Item]:
    items: list[Item] = []
    first_line: dict[str, int] = {}
    for line_no, line in read_lines(path):
        parts = line.split("\t")
        if not MIN_NEWS_FIELDS <= len(parts) <= len(NEWS_FIELDS):
            rows.bad(path, line_no, f"expected {len(NEWS_FIELDS)} tab-separated fields "
                                    f"({', '.join(NEWS_FIELDS)}), got {len(parts)}")
            continue
        parts += [""] * (len(NEWS_FIELDS) - len(parts))
        news_id, category, subcategory, title, abstract, url, title_entities, abstract_entities = parts
        problem = id_problem(news_id, "news id")
        if problem is None and news_id in first_line:
            problem = f"news {news_id} appears again (first on line {first_line[news_id]})"
        if problem is None and not title.strip():
            problem = f"news {news_id} has an empty title"
        tags: list[str] = []
        for field, text in (("title entities", title_entities), ("abstract entities", abstract_entities)):
            if problem is None:
                labels = _entity_labels(text)
                if labels is None:
                    problem = f"{field} of news {news_id} are not a JSON list of entities"
                else:
                    tags += labels
        if problem is not None:
            rows.bad(path, line_no, problem)
            continue
        title, abstract = split_long_title(title.strip(), abstract.strip(), MAX_TITLE_LENGTH)
        attributes: dict[str, Any] = {"url": url} if url else {}
        categories = tuple(dict.fromkeys(c.strip() for c in (category, subcategory) if c.strip()))
        first_line[news_id] = line_no
        # language: MIND is English news (Microsoft News, US market).
        items.append(Item(news_id, title, abstract[:MAX_TEXT_LENGTH], categories=categories,
                          tags=tuple(dict.fromkeys(tags)), language="en", attributes=attributes))
    return items


def _entity_labels(text: str) -> list[str] | None:
    """The ``Label`` of each entity in a MIND entity list, or None when it is not one."""
    if not text.strip():
        return []
    try:
        entities = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(entities, list) or not all(isinstance(e, dict) for e in entities):
        return None
    labels = (e.get("Label") for e in entities)
    return [label.strip() for label in labels if isinstance(label, str) and label.strip()]


def _read_behaviors(path: Path, news: dict[str, str], rows: RowPolicy) -> tuple[list[Event], list[str]]:
    """Click events (see :func:`read_mind`) and notes counting what could not become one."""
    impressions: list[tuple[str, str, float, list[str], list[str]]] = []  # id, user, time, history, clicked
    unlabelled = shown = 0
    for line_no, line in read_lines(path):
        parts = line.split("\t")
        if len(parts) != len(BEHAVIOR_FIELDS):
            rows.bad(path, line_no, f"expected {len(BEHAVIOR_FIELDS)} tab-separated fields "
                                    f"({', '.join(BEHAVIOR_FIELDS)}), got {len(parts)}")
            continue
        impression_id, user, time_text, history_text, shown_text = parts
        ts = parse_mind_time(time_text)
        problem = id_problem(impression_id, "impression id") or id_problem(user, "user id") or (
            f"time {time_text!r} is not like 11/15/2019 8:55:22 AM" if ts is None else None)
        clicked: list[str] = []
        for entry in shown_text.split():
            if problem is not None:
                break
            news_id, dash, label = entry.rpartition("-")
            if not dash:  # the MIND test set has no labels: nothing says what was clicked
                unlabelled += 1
            elif label == "1" and news_id:
                clicked.append(news_id)
            elif label == "0" and news_id:
                shown += 1
            else:
                problem = f"impression entry {entry!r} is not NEWSID-1 (clicked) or NEWSID-0 (not clicked)"
        if problem is not None:
            rows.bad(path, line_no, problem)
            continue
        assert ts is not None  # a None time is a problem above
        impressions.append((impression_id, user, ts, history_text.split(), clicked))

    first: dict[str, tuple[float, list[str]]] = {}  # user -> (time, history) of their first impression
    for _, user, ts, history, _ in impressions:
        if user not in first or ts < first[user][0]:  # equal times: the earlier line comes first
            first[user] = (ts, history)
    other_histories = sum(1 for _, user, _, history, _ in impressions if history != first[user][1])
    repeats = sum(len(history) - len(set(history)) for _, history in first.values())

    events: list[Event] = []
    trusted = Event.trusted
    kept_history = total_history = 0
    for user, (start, history) in first.items():
        total_history += len(history)
        for k, news_id in enumerate(history):
            item_id = news.get(news_id)
            if item_id is not None:
                kept_history += 1
                ts = start - (len(history) - k)
                events.append(trusted(f"mind-{user}-h{k}", user, _CLICK, item_id, None, None, ts, None))
    kept_clicks = total_clicks = 0
    for impression_id, user, ts, _, clicked in impressions:
        session = f"mind-{impression_id}"
        total_clicks += len(clicked)
        for k, news_id in enumerate(clicked):
            item_id = news.get(news_id)
            if item_id is not None:
                kept_clicks += 1
                events.append(trusted(f"{session}-{k}", user, _CLICK, item_id, None, None, ts, session))
    events.sort(key=attrgetter("timestamp"))

    notes = [
        "times are read as UTC (MIND gives none); history clicks, which have no time, are placed before "
        "the user's first impression, one second apart in order, the last one second before it",
        f"history clicks: {kept_history:,} of {total_history:,} kept; {total_history - kept_history:,} refer to "
        f"news not in news.tsv and were dropped",
        f"impression clicks: {kept_clicks:,} of {total_clicks:,} kept; {total_clicks - kept_clicks:,} refer to "
        f"news not in news.tsv and were dropped",
        f"{shown:,} impression entries shown but not clicked give no event (not a dismissal)",
    ]
    if unlabelled:
        notes.append(f"{unlabelled:,} impression entries carry no click label (as in MIND's test set) and give no "
                     "event")
    if repeats:
        notes.append(f"{repeats:,} history entries repeat a news id already in the same history; each is a click "
                     "event of its own")
    if other_histories:
        notes.append(f"{other_histories:,} impressions have a history other than their user's first impression; "
                     "only the first impression's history is used")
    return events, notes


def parse_mind_time(text: str) -> float | None:
    """Epoch seconds (as UTC) of a MIND time like ``11/15/2019 8:55:22 AM``, or None.

    Parsed by hand: ``strptime``'s ``%p`` depends on the locale, and this runs per impression.

    >>> parse_mind_time("11/15/2019 8:55:22 PM") - parse_mind_time("11/15/2019 8:55:22 AM")
    43200.0
    >>> parse_mind_time("11/15/2019 12:05:00 AM") is None
    False
    """
    date, _, rest = text.strip().partition(" ")
    clock, _, half = rest.partition(" ")
    month, day, year = (date.split("/") + ["", "", ""])[:3]
    hour, minute, second = (clock.split(":") + ["", "", ""])[:3]
    numbers = (month, day, year, hour, minute, second)
    if half not in ("AM", "PM") or not all(n.isdigit() for n in numbers):
        return None
    mo, d, y, h, mi, s = (int(n) for n in numbers)
    if not (1 <= mo <= 12 and y >= 1970 and 1 <= d <= calendar.monthrange(y, mo)[1]
            and 1 <= h <= 12 and mi < 60 and s < 60):
        return None
    h = h % 12 + (12 if half == "PM" else 0)
    return float(calendar.timegm((y, mo, d, h, mi, s)))
