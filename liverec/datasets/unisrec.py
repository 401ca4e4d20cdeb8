"""UniSRec / RecBole atomic files: item sequences with a shipped leave-one-out split, and item texts.

UniSRec (Hou et al., KDD 2022) ships each Amazon downstream set as RecBole atomic files:

- ``NAME.train.inter``, ``NAME.valid.inter``, ``NAME.test.inter``, header
  ``user_id:token<TAB>item_id_list:token_seq<TAB>item_id:token``: one row per target with the
  items before it (the last 50 only). Train has a row for every position but the user's last
  two; valid and test have one row per user, whose targets are those last two items;
- ``NAME.text`` (``item_id:token<TAB>text:token_seq``): the item's text keyed by its raw ASIN,
  "title. categories. brand." in one string;
- ``NAME.item2index`` (``ASIN<TAB>index``): the integer an ASIN has in the ``.inter`` files.

Each user's whole sequence is stitched back from those rows (valid/test histories are cut at 50
items, so they alone lose the start of long sequences). The data has no times, only order, so
the reader gives the events synthetic timestamps (see :func:`read_unisrec`). A plain
``NAME.inter`` (``user_id``, ``item_id``, ``timestamp`` and optionally ``rating`` columns)
reads too, without a split.
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

from liverec.core.errors import InvalidInputError
from liverec.core.types import MAX_TEXT_LENGTH, MAX_TITLE_LENGTH, Event, EventType, Item
from liverec.datasets._common import DAY, RowPolicy, gc_paused, id_problem, read_lines, split_long_title
from liverec.datasets.base import Dataset, FixedSplit

STAGES = ("train", "valid", "test")
USER, ITEM_LIST, ITEM, TEXT, TIMESTAMP, RATING = "user_id", "item_id_list", "item_id", "text", "timestamp", "rating"
# The synthetic clock ends where the raw Amazon 2018 reviews end (October 2018), so the times
# look like the data's own era; nothing depends on the exact date.
SYNTHETIC_END = float(calendar.timegm((2018, 10, 1, 0, 0, 0)))
HOLDS = "NAME.train.inter, NAME.valid.inter, NAME.test.inter (or NAME.inter), NAME.text and NAME.item2index"
# The root category's first word starts at least this share of the unambiguous category paths,
# and each further word follows the words before it in at least EXTEND_SHARE of them: a
# subcategory most items share ("... Parts") must not become part of the root (see _category_root).
ROOT_SHARE = 0.9
EXTEND_SHARE = 0.99
# Amazon interactions are purchases (the 2018 "ratings only" files are reviews of bought items).
_PURCHASE, _RATE = EventType.PURCHASE, EventType.RATE


@dataclass
class _Row:
    path: Path
    line: int
    history: list[str]
    target: str


def read_unisrec(path: str | Path, *, skip_bad: bool = False) -> Dataset:
    """Read a UniSRec/RecBole data set: ``path`` is its directory, or ``DIRECTORY/NAME`` to pick one.

    Parameters
    ----------
    path
        A directory holding one data set's files (``Scientific.train.inter``, ...), or the
        directory plus the data set's name when the directory holds several.
    skip_bad
        Skip malformed rows, recording each in ``Dataset.skipped``, instead of raising
        :class:`~liverec.core.errors.InvalidInputError` naming file, line and problem. A user
        with a malformed row is dropped whole: their sequence would have a hole.

    Returns
    -------
    Dataset
        With train/valid/test files: one ``purchase`` event per item of each user's sequence,
        ``item_id`` the ASIN, and ``split`` the shipped valid/test targets. Timestamps are
        synthetic: a user's last item is at 2018-10-01 00:00 UTC plus ``rank / users`` of a day
        (``rank``: the user's order of first appearance in the files), each earlier item one
        day before the next. Every user's order is kept, the global order is deterministic,
        and the last events of all users share a final day, as in a leave-one-out split.
        Items are those of ``NAME.text`` (title = the text's first part, description = the rest)
        plus any the events name without a text (titled by their id).
    """
    directory, name = _locate(Path(path))
    with gc_paused():
        return _read(directory, name, RowPolicy(skip_bad))


def _locate(path: Path) -> tuple[Path, str]:
    """The directory and data set name ``path`` points at."""
    if path.is_dir():
        names = sorted({p.name.removesuffix(".inter").removesuffix(".train") for p in path.glob("*.train.inter")}
                       or {p.name.removesuffix(".inter") for p in path.glob("*.inter")})
        if len(names) == 1:
            return path, names[0]
        if names:
            raise InvalidInputError(f"{path} holds several data sets ({', '.join(names)}); pass {path}/NAME to pick "
                                    "one", field="path", value=str(path))
        raise InvalidInputError(f"{path} holds no .inter files; a unisrec data set is a directory holding {HOLDS}",
                                field="path", value=str(path))
    directory, name = path.parent, path.name
    if (directory / f"{name}.train.inter").is_file() or (directory / f"{name}.inter").is_file():
        return directory, name
    raise InvalidInputError(f"{path} is neither a directory nor DIRECTORY/NAME of a data set ({directory} holds no "
                            f"{name}.train.inter or {name}.inter); a unisrec data set is a directory holding {HOLDS}",
                            field="path", value=str(path))


def _read(directory: Path, name: str, rows: RowPolicy) -> Dataset:
    index_path, text_path = directory / f"{name}.item2index", directory / f"{name}.text"
    by_index = _read_item2index(index_path, rows) if index_path.is_file() else None
    texts = _read_texts(text_path, rows) if text_path.is_file() else {}
    notes: list[str] = []
    if not text_path.is_file():
        notes.append(f"no {text_path.name}: every item is titled by its id")
    if (directory / f"{name}.train.inter").is_file():
        events, split, stitch_notes = _read_splits(directory, name, by_index, rows)
        notes += stitch_notes
    else:
        events, split = _read_plain(directory / f"{name}.inter", by_index, rows), None
        notes.append(f"{name}.inter: events in the file's time order; no shipped split")
    items, item_notes = _items(texts, events, text_path.name)
    users = len({e.user_id for e in events})
    notes += [*item_notes, f"{users:,} users, {len(items):,} items, {len(events):,} events", *rows.note()]
    return Dataset(name=name, items=items, events=events, split=split, skipped=rows.skipped, notes=notes)


def _header(path: Path, wanted: tuple[str, ...]) -> tuple[dict[str, int], list[tuple[int, str]]]:
    """Column positions by field name (the ``:type`` suffix dropped) and the data lines of ``path``."""
    lines = list(read_lines(path))
    if not lines:
        raise InvalidInputError(f"{path}: the file is empty; expected a header naming {', '.join(wanted)}",
                                field="path", value=str(path))
    line_no, header = lines[0]
    columns = {field.partition(":")[0]: n for n, field in enumerate(header.split("\t"))}
    missing = [w for w in wanted if w not in columns]
    if missing:
        raise InvalidInputError(f"{path}:{line_no}: the header {header!r} has no {', '.join(missing)} column",
                                field="header", value=header)
    return columns, lines[1:]


def _read_item2index(path: Path, rows: RowPolicy) -> dict[str, str]:
    """index -> ASIN."""
    by_index: dict[str, str] = {}
    for line_no, line in read_lines(path):
        asin, _, index = line.partition("\t")
        problem = id_problem(asin, "item id") or id_problem(index, "index")
        if problem is None and index in by_index:
            problem = f"index {index} is given to {by_index[index]!r} already"
        if problem is not None:
            rows.bad(path, line_no, problem)
            continue
        by_index[index] = asin
    return by_index


def _read_texts(path: Path, rows: RowPolicy) -> dict[str, str]:
    """ASIN -> text, in file order."""
    columns, lines = _header(path, (ITEM, TEXT))
    item_col, text_col = columns[ITEM], columns[TEXT]
    width = len(columns)
    texts: dict[str, str] = {}
    for line_no, line in lines:
        # The text is the last column and may itself hold a tab: split no further than the columns.
        parts = line.split("\t", width - 1)
        if len(parts) < width:
            parts += [""] * (width - len(parts))  # an item without text: the trailing tab was stripped
        asin, text = parts[item_col], parts[text_col]
        problem = id_problem(asin, "item id")
        if problem is None and asin in texts:
            problem = f"item {asin!r} has a text already"
        if problem is not None:
            rows.bad(path, line_no, problem)
            continue
        texts[asin] = text
    return texts


def _read_splits(
    directory: Path, name: str, by_index: dict[str, str] | None, rows: RowPolicy
) -> tuple[list[Event], FixedSplit, list[str]]:
    per_user: dict[str, dict[str, list[_Row]]] = {}
    bad_users: set[str] = set()
    for stage in STAGES:
        path = directory / f"{name}.{stage}.inter"
        if not path.is_file():
            raise InvalidInputError(f"{path}: no such file; a unisrec data set with a split holds "
                                    f"{', '.join(f'{name}.{s}.inter' for s in STAGES)}", field="path", value=str(path))
        for row_user, row in _inter_rows(path, by_index, rows):
            stages = per_user.setdefault(row_user, {s: [] for s in STAGES})
            if row is None:
                bad_users.add(row_user)
            else:
                stages[stage].append(row)
    # The history cap (50 in UniSRec) is the longest history any row has.
    cap = max((len(r.history) for stages in per_user.values() for rs in stages.values() for r in rs), default=0)
    sequences: dict[str, list[str]] = {}
    valid: dict[str, str] = {}
    test: dict[str, str] = {}
    for user, stages in per_user.items():
        if user in bad_users:
            continue
        seq = _stitch(user, stages, cap, rows)
        if seq is None:
            bad_users.add(user)
            continue
        sequences[user] = seq
        valid[user], test[user] = stages["valid"][0].target, stages["test"][0].target
    notes = ["events are purchases, in each user's order; the data has no times, so timestamps are synthetic: a "
             "user's last item at 2018-10-01 00:00 UTC + rank/users of a day (rank: order of first appearance), "
             "each earlier item one day before the next"]
    cut = sum(1 for seq in sequences.values() if len(seq) - 1 > cap)
    if cut:
        notes.append(f"{cut:,} users have more than {cap + 1} items: their valid/test histories are cut at {cap} "
                     "items, so their sequences were stitched together from the train rows")
    if bad_users:
        notes.append(f"{len(bad_users):,} users with a malformed row were dropped whole")
    # Ranks count every user, dropped ones too, so skipping one does not move anyone else's times.
    rank = {user: n for n, user in enumerate(per_user)}
    return _sequence_events(name, sequences, rank), FixedSplit(valid=valid, test=test), notes


def _inter_rows(
    path: Path, by_index: dict[str, str] | None, rows: RowPolicy
) -> list[tuple[str, _Row | None]]:
    """(user, row) per line; the row is None when it was malformed (and skipped)."""
    columns, lines = _header(path, (USER, ITEM_LIST, ITEM))
    user_col, list_col, item_col, width = columns[USER], columns[ITEM_LIST], columns[ITEM], len(columns)
    out: list[tuple[str, _Row | None]] = []
    for line_no, line in lines:
        parts = line.split("\t")
        if len(parts) != width:
            rows.bad(path, line_no, f"expected {width} tab-separated fields, got {len(parts)}")
            if len(parts) > user_col and parts[user_col]:
                out.append((parts[user_col], None))  # drop this user whole
            continue
        user = parts[user_col]
        tokens = parts[list_col].split()
        problem = id_problem(user, "user id") or (None if parts[item_col] else "the target item is empty")
        history: list[str] = []
        target = ""
        if problem is None:
            mapped = _map_items([*tokens, parts[item_col]], by_index, path)
            if isinstance(mapped, str):
                problem = mapped
            else:
                history, target = mapped[:-1], mapped[-1]
        if problem is not None:
            rows.bad(path, line_no, problem)
            out.append((user, None))
            continue
        out.append((user, _Row(path, line_no, history, target)))
    return out


def _map_items(tokens: list[str], by_index: dict[str, str] | None, path: Path) -> list[str] | str:
    """The ASINs of ``tokens`` (as they are without an item2index), or what is wrong with one."""
    if by_index is None:
        return tokens
    mapped = []
    for token in tokens:
        asin = by_index.get(token)
        if asin is None:
            return f"item {token!r} is not in {path.name.split('.')[0]}.item2index"
        mapped.append(asin)
    return mapped


def _stitch(user: str, stages: dict[str, list[_Row]], cap: int, rows: RowPolicy) -> list[str] | None:
    """The user's whole item sequence from their rows, or None (and a bad row) when they disagree.

    A row's history is the sequence before its target, cut to the last ``cap`` items. A history
    shorter than ``cap`` is whole, so it fixes the row's position; the longest such row gives the
    sequence's start. Rows with a full-length history (possibly cut) then extend it one target
    at a time, each continuing the last ``cap`` items. The order of rows in the files does not
    matter (UniSRec writes a user's train rows longest first). Finally the valid and test
    targets must be the last two items.
    """
    for stage in ("valid", "test"):
        if len(stages[stage]) != 1:
            where = next(r for s in STAGES for r in stages[s])
            rows.bad(where.path, where.line, f"user {user!r} has {len(stages[stage])} {stage} rows; expected 1")
            return None
    valid, test = stages["valid"][0], stages["test"][0]
    every = [*stages["train"], valid, test]
    whole = [r for r in every if len(r.history) < cap]
    if not whole:
        rows.bad(test.path, test.line, f"user {user!r} has no row with a whole history (all are cut at {cap} items)")
        return None
    longest = max(whole, key=lambda r: len(r.history))
    seq = [*longest.history, longest.target]
    pending: dict[tuple[str, ...], list[_Row]] = {}
    for row in every:
        if len(row.history) >= cap:
            pending.setdefault(tuple(row.history[-cap:]), []).append(row)
    while (following := pending.get(tuple(seq[-cap:]))):
        seq.append(following.pop(0).target)
    for row in every:
        if not any(_fits(row, seq, at, cap) for at in _positions(row, len(seq), cap)):
            rows.bad(row.path, row.line, f"the row of user {user!r} (target {row.target!r}) does not fit the "
                                         f"sequence their other rows give")
            return None
    for row, at, what in ((valid, len(seq) - 2, "second-to-last"), (test, len(seq) - 1, "last")):
        if not _fits(row, seq, at, cap):
            rows.bad(row.path, row.line, f"the target {row.target!r} of user {user!r} is not their {what} item")
            return None
    return seq


def _positions(row: _Row, n: int, cap: int) -> range:
    """Where in a sequence of ``n`` items ``row``'s target can be: known when its history is whole."""
    if len(row.history) < cap:
        return range(len(row.history), len(row.history) + 1)
    return range(len(row.history), n)


def _fits(row: _Row, seq: list[str], at: int, cap: int) -> bool:
    """Whether ``row`` is the target at position ``at`` of ``seq`` with the history before it."""
    if not 0 <= at < len(seq) or seq[at] != row.target:
        return False
    h = row.history
    if len(h) < cap and at != len(h):
        return False
    return seq[at - len(h):at] == h


def _sequence_events(name: str, sequences: dict[str, list[str]], rank: dict[str, int]) -> list[Event]:
    """Purchase events with the synthetic times :func:`read_unisrec` describes, sorted by time."""
    events: list[Event] = []
    append, trusted = events.append, Event.trusted
    n_users = max(len(rank), 1)
    for user, seq in sequences.items():
        last = SYNTHETIC_END + DAY * rank[user] / n_users
        n = len(seq)
        for k, item in enumerate(seq):
            append(trusted(f"{name}-{user}-{k}", user, _PURCHASE, item, None, None, last - DAY * (n - 1 - k), None))
    events.sort(key=attrgetter("timestamp"))
    return events


def _read_plain(path: Path, by_index: dict[str, str] | None, rows: RowPolicy) -> list[Event]:
    """A RecBole ``.inter`` with user, item and timestamp columns (and a 1-5 rating, if any)."""
    columns, lines = _header(path, (USER, ITEM, TIMESTAMP))
    user_col, item_col, ts_col, width = columns[USER], columns[ITEM], columns[TIMESTAMP], len(columns)
    rating_col = columns.get(RATING)
    name = path.name.removesuffix(".inter")
    events: list[Event] = []
    for line_no, line in lines:
        parts = line.split("\t")
        if len(parts) != width:
            rows.bad(path, line_no, f"expected {width} tab-separated fields, got {len(parts)}")
            continue
        user, ts_text = parts[user_col], parts[ts_col]
        rating_text = parts[rating_col] if rating_col is not None else None
        problem = id_problem(user, "user id") or id_problem(parts[item_col], "item id")
        mapped = _map_items([parts[item_col]], by_index, path) if problem is None else "?"
        ts = _number(ts_text)
        value = _number(rating_text) if rating_text is not None else None
        if problem is None and isinstance(mapped, str):
            problem = mapped
        if problem is None and (ts is None or ts < 0):
            problem = f"timestamp {ts_text!r} is not a number of seconds"
        if problem is None and rating_text is not None and (value is None or not 1.0 <= value <= 5.0):
            problem = f"rating {rating_text!r} is not a number from 1 to 5"
        if problem is not None:
            rows.bad(path, line_no, problem)
            continue
        assert ts is not None and not isinstance(mapped, str)  # checked above
        # Without a rating, an Amazon interaction is a purchase (a review of a bought item).
        kind = _PURCHASE if value is None else _RATE
        events.append(Event.trusted(f"{name}-{line_no}", user, kind, mapped[0], value, None, ts, None))
    events.sort(key=attrgetter("timestamp"))
    return events


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value - value == 0.0 else None  # inf - inf and nan are nan


def _items(texts: dict[str, str], events: list[Event], text_file: str) -> tuple[list[Item], list[str]]:
    """Items with texts, then the items events name without one (titled by their id)."""
    root = _category_root(texts.values())
    items: list[Item] = []
    untitled = 0
    for asin, text in texts.items():
        title, description = split_text(text, root)
        if not title:
            title, untitled = asin, untitled + 1
        # language: Amazon 2018 product metadata is English.
        items.append(Item(asin, title, description, language="en"))
    missing = list(dict.fromkeys(e.item_id for e in events if e.item_id is not None and e.item_id not in texts))
    items += [Item(asin, asin, language="en") for asin in missing]
    found = f"the category path, which starts with {root!r}" if root else "the first '. '"
    notes = [f"item title = the text up to {found}; description = the rest (categories, brand)"]
    if untitled:
        notes.append(f"{untitled:,} items of {text_file} have an empty text and are titled by their id")
    if missing and texts:
        notes.append(f"{len(missing):,} items in the events are not in {text_file} and are titled by their id")
    return items, notes


def _category_root(texts: Iterable[str]) -> str | None:
    """The first words of the category path shared by (almost) all items: Amazon's top category.

    UniSRec's text is "title. categories. brand." where the title and brand may hold ". " too
    ("Mr. Heater", "24 Oz. Sprayer"); the category path always starts with the data set's top
    category ("Industrial & Scientific"), so finding it finds where the title ends.
    """
    paths = []
    for text in texts:
        parts = text.strip().removesuffix(".").split(". ")
        if len(parts) == 3 and parts[1]:  # unambiguous: no ". " inside title or brand
            paths.append(parts[1].split(" "))
    if not paths:
        return None
    first, count = Counter(p[0] for p in paths).most_common(1)[0]
    if count < ROOT_SHARE * len(paths):
        return None
    root = [first]
    while True:
        under = [p for p in paths if p[: len(root)] == root]
        following = Counter(p[len(root)] for p in under if len(p) > len(root)).most_common(1)
        if not following or following[0][1] < EXTEND_SHARE * len(under):
            return " ".join(root)
        root.append(following[0][0])


def split_text(text: str, root: str | None = None) -> tuple[str, str]:
    """(title, description) of a UniSRec item text "title. categories. brand.".

    The title ends where the category path starts (". " + ``root``) or the category path is
    empty (". . "), whichever comes first; failing both, at the first ". ". A title longer
    than an item title may be is cut at a word and the rest opens the description.

    >>> split_text("Mr. Heater Hose. Industrial & Scientific Fittings. Mr. Heater. ", "Industrial & Scientific")
    ('Mr. Heater Hose', 'Industrial & Scientific Fittings. Mr. Heater.')
    >>> split_text("Sanding Roll, 80 Grit. . PORTER-CABLE. ")
    ('Sanding Roll, 80 Grit', 'PORTER-CABLE.')
    """
    body = text.strip()
    cuts = [body.find(". . ")]
    if root:
        at = body.find(f". {root}")
        while at >= 0 and body[at + 2 + len(root): at + 3 + len(root)] not in ("", " ", "."):
            at = body.find(f". {root}", at + 1)  # "Industrial & Scientifics" is not the root
        cuts.append(at)
    found = [c for c in cuts if c >= 0]
    if found:
        cut = min(found)
        title, description = body[:cut], body[cut + 2:].removeprefix(". ")
    else:
        title, _, description = body.partition(". ")
    title, description = title.strip(), description.strip()
    if not description:
        title = title.removesuffix(".")
    title, description = split_long_title(title, description, MAX_TITLE_LENGTH)
    return title, description[:MAX_TEXT_LENGTH]
