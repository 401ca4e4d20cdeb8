"""The quarantine: users and events kept in the log but out of learning, until an admin releases them.

Cleaning (:mod:`liverec.cleaning`) quarantines a user whose traffic looks robotic and a review
whose text is spam or abuse. Their events stay stored (nothing acknowledged is ever dropped), but
no state, model, trending list or reason learns from them; releasing the entry puts them back.
Every store keeps its quarantine beside its events, so every process serving it agrees, and a
version that grows with every change lets a process reload only when something changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from liverec.core.errors import InvalidInputError

__all__ = ["KINDS", "Quarantine", "Quarantined", "check_kind"]

Kind = Literal["user", "event"]
KINDS: tuple[Kind, ...] = ("user", "event")


def check_kind(kind: str) -> Kind:
    for known in KINDS:
        if kind == known:
            return known
    raise InvalidInputError(f"quarantine kind must be one of {', '.join(KINDS)}, got {kind!r}",
                            field="kind", value=kind)


@dataclass(frozen=True)
class Quarantined:
    """One quarantined user (``kind`` user, ``key`` their id) or event (``kind`` event, ``key`` its
    id, ``user_id`` its author): why (``reason``, naming the rule and the figure that broke it) and
    since when (``since``, seconds since the epoch)."""

    kind: Kind
    key: str
    user_id: str
    reason: str
    since: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "user_id": self.user_id, "reason": self.reason,
                "since": self.since}


@runtime_checkable
class Quarantine(Protocol):
    """The store's quarantined users and events. Thread-safe."""

    def add(self, entries: Sequence[Quarantined]) -> int:
        """Quarantine ``entries``; how many were new (one already held keeps its first reason)."""
        ...

    def release(self, kind: str, key: str) -> Quarantined | None:
        """Take the entry out of quarantine; what it was, or None if it was not held."""
        ...

    def entries(self, kind: str | None = None) -> list[Quarantined]:
        """Every entry (of ``kind``), oldest first."""
        ...

    def keys(self, kind: str) -> set[str]:
        """The quarantined keys of ``kind``."""
        ...

    def forget_user(self, user_id: str) -> int:
        """Drop every entry of the user (an erasure); how many were dropped."""
        ...

    def version(self) -> int:
        """A number that grows with every add, release and erasure (0 before any)."""
        ...


def new_entries(held: Iterable[tuple[str, str]], entries: Sequence[Quarantined]) -> list[Quarantined]:
    """Those of ``entries`` whose (kind, key) is neither ``held`` nor earlier in ``entries``."""
    seen = set(held)
    out = []
    for entry in entries:
        check_kind(entry.kind)
        if (entry.kind, entry.key) not in seen:
            seen.add((entry.kind, entry.key))
            out.append(entry)
    return out


# The tables of both SQL backends; ``seq`` of quarantine_changes is the version.
SQL_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    user_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    since DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS quarantine_user ON quarantine (user_id);
"""


class SqlQuarantine:
    """The quarantine in a SQL database (SQLite or PostgreSQL): ``db`` gives ``access(action)`` and
    ``transaction(action)`` contexts yielding a DB-API connection; ``mark`` is its placeholder."""

    def __init__(self, db: Any, mark: str) -> None:
        self._db = db
        self._mark = mark

    def _sql(self, text: str) -> str:
        return text.replace("?", self._mark)

    def _changed(self, conn: Any) -> None:
        conn.execute("INSERT INTO quarantine_changes DEFAULT VALUES")
        conn.execute("DELETE FROM quarantine_changes WHERE seq < (SELECT MAX(seq) FROM quarantine_changes)")

    def add(self, entries: Sequence[Quarantined]) -> int:
        new = new_entries((), entries)
        if not new:
            return 0
        added = 0
        with self._db.transaction(f"quarantining {len(new)} entries") as conn:
            for e in new:
                added += conn.execute(self._sql(
                    "INSERT INTO quarantine (kind, key, user_id, reason, since) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (kind, key) DO NOTHING"), (e.kind, e.key, e.user_id, e.reason, e.since)).rowcount
            if added:
                self._changed(conn)
        return added

    def release(self, kind: str, key: str) -> Quarantined | None:
        check_kind(kind)
        with self._db.transaction(f"releasing {kind} {key!r}") as conn:
            row = conn.execute(self._sql("SELECT kind, key, user_id, reason, since FROM quarantine"
                                         " WHERE kind = ? AND key = ?"), (kind, key)).fetchone()
            if row is None:
                return None
            conn.execute(self._sql("DELETE FROM quarantine WHERE kind = ? AND key = ?"), (kind, key))
            self._changed(conn)
        return Quarantined(row[0], row[1], row[2], row[3], float(row[4]))

    def entries(self, kind: str | None = None) -> list[Quarantined]:
        where, args = ("", ()) if kind is None else (" WHERE kind = ?", (check_kind(kind),))
        with self._db.access("reading the quarantine") as conn:
            rows = conn.execute(self._sql(f"SELECT kind, key, user_id, reason, since FROM quarantine{where}"
                                          " ORDER BY since, kind, key"), args).fetchall()
        return [Quarantined(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]

    def keys(self, kind: str) -> set[str]:
        with self._db.access("reading the quarantine") as conn:
            return {r[0] for r in conn.execute(self._sql("SELECT key FROM quarantine WHERE kind = ?"),
                                               (check_kind(kind),)).fetchall()}

    def forget_user(self, user_id: str) -> int:
        with self._db.transaction("erasing a user's quarantine entries") as conn:
            removed: int = conn.execute(self._sql("DELETE FROM quarantine WHERE user_id = ?"), (user_id,)).rowcount
            if removed:
                self._changed(conn)
        return removed

    def version(self) -> int:
        with self._db.access("reading the quarantine's version") as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM quarantine_changes").fetchone()[0])
