"""The catalog's change log both SQL backends keep: every item upserted or deleted gets a row of
``item_changes`` in the writing transaction, so another process serving the store reloads just
those items (:class:`~liverec.realtime.peers.Peers`). Old rows are forgotten now and then; a
reader further behind than that reloads the whole catalog."""

from __future__ import annotations

from typing import Any

__all__ = ["KEPT_CHANGES", "changes_since", "forget_old_changes"]

# Change-log rows kept: a worker further behind than this reloads the whole catalog instead.
KEPT_CHANGES = 100_000


def forget_old_changes(conn: Any, mark: str, newest: int, written: int) -> None:
    """Now and then (when ``newest``, the last change number written, crossed a thousand), delete
    the changes older than :data:`KEPT_CHANGES` and note where the kept ones start. ``mark`` is the
    driver's placeholder; ``written`` how many changes the transaction wrote."""
    if newest % 1000 < written and newest > KEPT_CHANGES:
        conn.execute(f"DELETE FROM item_changes WHERE seq <= {mark}", (newest - KEPT_CHANGES,))
        conn.execute(f"INSERT INTO meta (key, value) VALUES ('changes_pruned', {mark}) ON CONFLICT (key)"
                     " DO UPDATE SET value = excluded.value", (str(newest - KEPT_CHANGES).encode(),))


def changes_since(conn: Any, mark: str, position: int | None) -> tuple[int, list[str] | None]:
    """The catalog's change position now and the ids of items upserted or deleted after
    ``position`` (None: just the position, to start from). The list is None when changes after
    ``position`` were already forgotten: reload the whole catalog."""
    pruned = conn.execute("SELECT value FROM meta WHERE key = 'changes_pruned'").fetchone()
    if position is None or (pruned is not None and position < int(bytes(pruned[0]))):
        latest = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM item_changes").fetchone()[0])
        return latest, [] if position is None else None
    rows = conn.execute(f"SELECT seq, item_id FROM item_changes WHERE seq > {mark} ORDER BY seq",
                        (position,)).fetchall()
    if not rows:
        return position, []
    return int(rows[-1][0]), list(dict.fromkeys(row[1] for row in rows))
