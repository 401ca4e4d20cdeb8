"""MovieLens-100k and MovieLens-1M: movies with their genres, and time-stamped 1-5 star ratings.

Both come from GroupLens (Harper & Konstan 2015, "The MovieLens Datasets", ACM TiiS 5(4):19):

- ml-100k: ``u.data`` (``user<TAB>item<TAB>rating<TAB>timestamp``), ``u.item`` (``|``-separated:
  id, title, release date, video release date, IMDb URL, one 0/1 flag per genre) and ``u.genre``
  (``name|index``, the order of those flags);
- ml-1m: ``movies.dat`` (``id::title::genre|genre``) and ``ratings.dat``
  (``user::item::rating::timestamp``), or any ``ratings*.dat[.gz]`` when only part of it is at hand.

The item files are Latin-1 (``Mis\\xe9rables``). User and item ids are the data set's own numbers,
as strings, so a row of the result can be checked against the files. Every movie is an item,
rated or not: the catalog is the catalog.
"""

from __future__ import annotations

import calendar
import re
from operator import attrgetter
from pathlib import Path
from typing import Any

from liverec.core.errors import InvalidInputError
from liverec.core.types import MAX_ID_LENGTH, MAX_TITLE_LENGTH, Event, EventType, Item
from liverec.datasets._common import RowPolicy, first_existing, gc_paused, read_lines, require_dir
from liverec.datasets.base import Dataset

LATIN_1 = "latin-1"
# The order of u.item's genre flags when u.genre is absent (it is the same in every ml-100k release).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
# "unknown" marks a movie without a genre; as a category it would make all such movies look alike.
NOT_A_GENRE = "unknown"
MONTHS = {name: n for n, name in enumerate(calendar.month_abbr) if name}  # not strptime's %b: locale-free
YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")
FLAGS = ("0", "1")
HOLDS = "u.data + u.item (MovieLens-100k) or movies.dat + ratings*.dat[.gz] (MovieLens-1M)"
_RATE = EventType.RATE
INF = float("inf")


def read_movielens(directory: str | Path, *, skip_bad: bool = False) -> Dataset:
    """Read MovieLens-100k or -1M from ``directory``, whichever files it holds.

    Parameters
    ----------
    directory
        The unpacked ``ml-100k`` or ``ml-1m`` folder.
    skip_bad
        Skip malformed rows, recording each in ``Dataset.skipped``, instead of raising
        :class:`~liverec.core.errors.InvalidInputError` naming file, line and problem.

    Returns
    -------
    Dataset
        One ``rate`` event per rating (value 1-5, the data set's timestamp, id ``ml-USER-ITEM``),
        sorted by time with ties in file order; one item per movie with its genres as categories.
    """
    directory = Path(directory)
    require_dir(directory, "movielens", HOLDS)
    rows = RowPolicy(skip_bad)
    if first_existing(directory, ("u.data", "u.data.gz")) is not None:
        with gc_paused():
            return _read_100k(directory, rows)
    if (directory / "movies.dat").is_file():
        with gc_paused():
            return _read_1m(directory, rows)
    raise InvalidInputError(f"{directory} holds no MovieLens files; expected {HOLDS}",
                            field="path", value=str(directory))


def _read_100k(directory: Path, rows: RowPolicy) -> Dataset:
    genre_path = directory / "u.genre"
    genres = _read_genres(genre_path) if genre_path.is_file() else ML100K_GENRES
    items = _read_u_item(directory / "u.item", genres, rows)
    ratings = first_existing(directory, ("u.data", "u.data.gz"))
    assert ratings is not None  # read_movielens only comes here when it exists
    events = _read_ratings([ratings], "\t", {i.item_id for i in items}, rows, "u.item")
    notes = [
        "created_at is the release date from u.item; unknown or before 1970 (not a valid time here) gives 0",
        *_count_notes(items, events),
        *rows.note(),
    ]
    return Dataset(name="movielens-100k", items=items, events=events, skipped=rows.skipped, notes=notes)


def _read_1m(directory: Path, rows: RowPolicy) -> Dataset:
    items = _read_movies_dat(directory / "movies.dat", rows)
    ratings = _ratings_files(directory)
    events = _read_ratings(ratings, "::", {i.item_id for i in items}, rows, "movies.dat")
    notes = ["created_at is 1 January of the year in the title; unknown or before 1970 gives 0"]
    if [p.name for p in ratings] not in (["ratings.dat"], ["ratings.dat.gz"]):
        users = len({e.user_id for e in events})
        listed = _count_lines(directory / "users.dat")
        of = f" of the {listed:,} in users.dat" if listed else ""
        notes.append(f"PARTIAL ratings: read {', '.join(p.name for p in ratings)} instead of the full ratings.dat; "
                     f"{len(events):,} ratings of {users:,} users{of} (the full set has 1,000,209 ratings)")
    notes += [*_count_notes(items, events), *rows.note()]
    return Dataset(name="movielens-1m", items=items, events=events, skipped=rows.skipped, notes=notes)


def _ratings_files(directory: Path) -> list[Path]:
    """``ratings.dat`` (or its gzip); failing that every other ``ratings*.dat[.gz]``, by name."""
    full = first_existing(directory, ("ratings.dat", "ratings.dat.gz"))
    if full is not None:
        return [full]
    parts = sorted(p for p in directory.glob("ratings*.dat*") if p.name.endswith((".dat", ".dat.gz")))
    if not parts:
        raise InvalidInputError(f"{directory} holds movies.dat but no ratings.dat or ratings*.dat[.gz]",
                                field="path", value=str(directory))
    return parts


def _read_genres(path: Path) -> tuple[str, ...]:
    """Genre names in flag order from ``u.genre``; a bad line always raises (it defines the columns)."""
    strict = RowPolicy(skip_bad=False)
    by_index: dict[int, str] = {}
    for line_no, line in read_lines(path, LATIN_1):
        name, _, index = line.rpartition("|")
        if not name or not index.isdigit():
            strict.bad(path, line_no, f"expected 'genre|index', got {line!r}")
        by_index[int(index)] = name
    if sorted(by_index) != list(range(len(by_index))):
        strict.bad(path, 1, f"genre indices {sorted(by_index)} are not 0 to {len(by_index) - 1}")
    return tuple(by_index[n] for n in range(len(by_index)))


def _read_u_item(path: Path, genres: tuple[str, ...], rows: RowPolicy) -> list[Item]:
    n_fields = 5 + len(genres)
    items: list[Item] = []
    first_line: dict[str, int] = {}
    for line_no, line in read_lines(path, LATIN_1):
        parts = line.split("|")
        if len(parts) != n_fields:
            rows.bad(path, line_no, f"expected {n_fields} '|'-separated fields (id, title, release date, "
                                    f"video release date, IMDb URL, {len(genres)} genre flags), got {len(parts)}")
            continue
        item_id, title, released, _video, url = parts[:5]
        flags = parts[5:]
        problem = _item_problem(item_id, title, first_line) or next(
            (f"genre flag {f!r} for {g} is not 0 or 1" for f, g in zip(flags, genres, strict=True) if f not in FLAGS),
            None,
        )
        created_at, year = 0.0, None
        if problem is None and released:
            parsed = _parse_release_date(released)
            if parsed is None:
                problem = f"release date {released!r} is not a date like 01-Jan-1995"
            else:
                created_at, year = parsed
        if problem is not None:
            rows.bad(path, line_no, problem)
            continue
        attributes: dict[str, Any] = {}
        if year is not None:
            attributes["year"] = year
        if url:
            attributes["imdb_url"] = url
        categories = tuple(g for f, g in zip(flags, genres, strict=True) if f == "1" and g != NOT_A_GENRE)
        first_line[item_id] = line_no
        # language: the titles are English (a few foreign titles); en is the only other choice than zh.
        items.append(Item(item_id, title, categories=categories, language="en", attributes=attributes,
                          created_at=created_at))
    return items


def _read_movies_dat(path: Path, rows: RowPolicy) -> list[Item]:
    items: list[Item] = []
    first_line: dict[str, int] = {}
    for line_no, line in read_lines(path, LATIN_1):
        parts = line.split("::")
        if len(parts) != 3:
            rows.bad(path, line_no, f"expected 3 '::'-separated fields (id, title, genres), got {len(parts)}")
            continue
        item_id, title, genre_field = parts
        problem = _item_problem(item_id, title, first_line)
        genres = tuple(g for g in genre_field.split("|") if g)
        if problem is None and any(not g.strip() for g in genres):
            problem = f"genres {genre_field!r} hold an empty name"
        if problem is not None:
            rows.bad(path, line_no, problem)
            continue
        attributes: dict[str, Any] = {}
        created_at = 0.0
        if (match := YEAR_IN_TITLE.search(title)) is not None:
            year = int(match.group(1))
            attributes["year"] = year
            created_at = max(0.0, float(calendar.timegm((year, 1, 1, 0, 0, 0))))
        first_line[item_id] = line_no
        items.append(Item(item_id, title, categories=genres, language="en", attributes=attributes,
                          created_at=created_at))
    return items


def _item_problem(item_id: str, title: str, first_line: dict[str, int]) -> str | None:
    if not item_id.isdigit():
        return f"movie id {item_id!r} is not a number"
    if item_id in first_line:
        return f"movie id {item_id} appears again (first on line {first_line[item_id]})"
    if not title.strip():
        return f"movie {item_id} has an empty title"
    if len(title) > MAX_TITLE_LENGTH:
        return f"the title of movie {item_id} is {len(title)} characters long; at most {MAX_TITLE_LENGTH} are allowed"
    return None


def _parse_release_date(text: str) -> tuple[float, int] | None:
    """(epoch seconds, year) of a date like ``01-Jan-1995``; seconds are 0 before 1970."""
    day, _, rest = text.partition("-")
    month_name, _, year_text = rest.partition("-")
    month = MONTHS.get(month_name)
    if month is None or not day.isdigit() or not year_text.isdigit() or len(year_text) != 4:
        return None
    year = int(year_text)
    if not 1 <= int(day) <= calendar.monthrange(year, month)[1]:
        return None
    return max(0.0, float(calendar.timegm((year, month, int(day), 0, 0, 0)))), year


def _read_ratings(paths: list[Path], sep: str, item_ids: set[str], rows: RowPolicy, items_file: str) -> list[Event]:
    """``user SEP item SEP rating SEP timestamp`` rows as ``rate`` events, sorted by time (stable).

    Every field is checked here, so the events are built with :meth:`Event.trusted`: validating
    half a million ratings again would double the read time. The checks run inline and only a
    failing row pays for :func:`_rating_problem` to say what is wrong with it.
    """
    events: list[Event] = []
    append, trusted = events.append, Event.trusted
    canonical = {i: i for i in item_ids}
    users: dict[str, str] = {}  # one string per user, shared by all their events
    seen: set[str] = set()  # event ids; where a repeated one was first seen is looked up only then
    for path in paths:
        for line_no, line in read_lines(path):
            try:
                user, item, rating_text, ts_text = line.split(sep)
                rating, ts = float(rating_text), float(ts_text)
            except ValueError:  # a wrong number of fields or a number that is not one
                rows.bad(path, line_no, _rating_problem(line, sep, item_ids, items_file))
                continue
            item_id = canonical.get(item)
            if (item_id is None or not 1.0 <= rating <= 5.0 or not 0.0 <= ts < INF
                    or not user.isdigit() or len(user) > MAX_ID_LENGTH):
                rows.bad(path, line_no, _rating_problem(line, sep, item_ids, items_file))
                continue
            user_id = users.setdefault(user, user)
            event_id = f"ml-{user_id}-{item_id}"
            if event_id in seen:
                where, at = _first_rating(paths, sep, user, item)
                rows.bad(path, line_no, f"user {user} rated movie {item} again (first on {where.name} line {at})")
                continue
            seen.add(event_id)
            append(trusted(event_id, user_id, _RATE, item_id, rating, None, ts, None))
    events.sort(key=attrgetter("timestamp"))  # list.sort is stable: equal times keep file order
    return events


def _first_rating(paths: list[Path], sep: str, user: str, item: str) -> tuple[Path, int]:
    """Where ``user`` first rated ``item``: read again, as this is only asked when they rated it twice."""
    prefix = f"{user}{sep}{item}{sep}"
    for path in paths:
        for line_no, line in read_lines(path):
            if line.startswith(prefix):
                return path, line_no
    return paths[0], 0  # not reached: the rating was read from these files


def _rating_problem(line: str, sep: str, item_ids: set[str], items_file: str) -> str:
    """What is wrong with a ratings row the fast checks in :func:`_read_ratings` refused."""
    parts = line.split(sep)
    if len(parts) != 4:
        return f"expected 4 {sep!r}-separated fields (user, item, rating, timestamp), got {len(parts)}"
    user, item, rating, ts = parts
    if not user.isdigit():
        return f"user id {user!r} is not a number"
    if len(user) > MAX_ID_LENGTH:
        return f"user id is {len(user)} characters long; at most {MAX_ID_LENGTH} are allowed"
    if item not in item_ids:
        return f"movie {item!r} is not in {items_file}"
    try:
        value = float(rating)
    except ValueError:
        return f"rating {rating!r} is not a number"
    if not 1.0 <= value <= 5.0:  # NaN fails this too
        return f"rating {rating!r} is out of range; expected 1 to 5"
    try:
        seconds = float(ts)
    except ValueError:
        return f"timestamp {ts!r} is not a number of seconds"
    if not 0.0 <= seconds < INF:
        return f"timestamp {ts!r} is not a valid time"
    return f"row {line!r} is malformed"  # not reached: the fast checks refuse nothing else


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    return sum(1 for _ in read_lines(path, LATIN_1))


def _count_notes(items: list[Item], events: list[Event]) -> list[str]:
    users = {e.user_id for e in events}
    unrated = len(items) - len({e.item_id for e in events})
    note = f"{len(users):,} users, {len(items):,} movies, {len(events):,} ratings"
    return [note + (f"; {unrated:,} movies have no rating here and are kept" if unrated else "")]
