"""The model snapshots' manifests, and which snapshot is current, in PostgreSQL.

Every worker of a PostgreSQL store reads the current version here (one indexed row) instead of
the model directory's ``CURRENT`` file, so workers on several machines agree through the database
they already share; the snapshots' files still live in the shared model directory (the seam for
object storage is that directory: :mod:`liverec.ranking.snapshot`). A training publishes its
version and manifest in one transaction after its files are complete, so the row never names a
snapshot that is not all there; a training that dies before it publishes changes nothing.

Rows stay after a snapshot's files are pruned (``pruned_at`` is set), so the table is the history
of every training: ``SELECT version, manifest->'report'->'validation' FROM snapshots``.

Schema (component ``snapshots`` of :func:`~liverec.storage.postgres.migrate`, version 1)::

    snapshots(version TEXT PRIMARY KEY, number, manifest JSONB, created_at, recorded_at, pruned_at)
    snapshot_current(version)                          -- one row, once a snapshot was published
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from liverec.storage.postgres import PostgresDatabase, migrate

__all__ = ["PostgresSnapshotIndex"]

_MIGRATIONS = [
    """
    CREATE TABLE snapshots (
        version TEXT PRIMARY KEY CHECK (version ~ '^v[0-9]+$'),
        number INTEGER GENERATED ALWAYS AS (substring(version FROM 2)::integer) STORED,  -- v0010 after v0009
        manifest JSONB NOT NULL,
        created_at DOUBLE PRECISION,
        recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        pruned_at TIMESTAMPTZ
    );
    CREATE TABLE snapshot_current (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        version TEXT NOT NULL REFERENCES snapshots (version)
    )
    """,
]

_RECORD = ("INSERT INTO snapshots (version, manifest, created_at) VALUES (%s, %s::jsonb, %s) "
           "ON CONFLICT (version) DO UPDATE SET manifest = EXCLUDED.manifest, created_at = EXCLUDED.created_at")


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as None: JSON (and so JSONB) has no NaN or infinity,
    and a manifest's figures can be NaN (a metric with nothing to measure)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)  # what json.dumps(default=str) writes in the manifest file


class PostgresSnapshotIndex:
    """:class:`~liverec.storage.base.SnapshotIndex` in the store's PostgreSQL schema."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        migrate(db, "snapshots", _MIGRATIONS)

    def _record(self, conn: Any, version: str, manifest: dict[str, Any]) -> None:
        created = manifest.get("created_at")
        conn.execute(_RECORD, (version, json.dumps(_json_safe(manifest), allow_nan=False),
                               float(created) if isinstance(created, int | float) else None))

    def publish(self, version: str, manifest: dict[str, Any]) -> None:
        with self._db.transaction(f"publishing model snapshot {version}") as conn:
            self._record(conn, version, manifest)
            conn.execute("INSERT INTO snapshot_current (version) VALUES (%s) "
                         "ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version", (version,))

    def adopt(self, version: str, manifest: dict[str, Any]) -> str:
        with self._db.transaction(f"recording model snapshot {version}") as conn:
            conn.execute("LOCK TABLE snapshot_current IN EXCLUSIVE MODE")  # two workers adopting at once
            row = conn.execute("SELECT version FROM snapshot_current").fetchone()
            if row is not None:
                return str(row[0])
            self._record(conn, version, manifest)
            conn.execute("INSERT INTO snapshot_current (version) VALUES (%s)", (version,))
            return version

    def update(self, version: str, manifest: dict[str, Any]) -> None:
        with self._db.transaction(f"updating the manifest of model snapshot {version}") as conn:
            self._record(conn, version, manifest)

    def current(self) -> str | None:
        with self._db.access("reading the current model snapshot") as conn:
            row = conn.execute("SELECT version FROM snapshot_current").fetchone()
        return None if row is None else str(row[0])

    def manifests(self) -> dict[str, dict[str, Any]]:
        with self._db.access("reading the model snapshots' manifests") as conn:
            rows = conn.execute("SELECT version, manifest, pruned_at FROM snapshots ORDER BY number").fetchall()
        out: dict[str, dict[str, Any]] = {}
        for version, manifest, pruned_at in rows:
            out[version] = dict(manifest)
            if pruned_at is not None:
                out[version]["pruned_at"] = pruned_at.timestamp()
        return out

    def pruned(self, versions: Sequence[str]) -> None:
        if not versions:
            return
        with self._db.transaction("noting pruned model snapshots") as conn:
            conn.execute("UPDATE snapshots SET pruned_at = now() WHERE version = ANY(%s) AND pruned_at IS NULL",
                         (list(versions),))
