"""Erasing a user from everything the engine keeps, including models trained while it happened.

An erasure deletes the user's events (the store records it under a growing *erasure epoch*, as a
keyed digest of the id), the vectors of their review and search texts, their live state and what
the served models keep per user. Every model snapshot says in its manifest the epoch it is clean
up to, so a snapshot trained from events read before an erasure — in this process or another —
is scrubbed of the user before it is served or written, and any snapshot found on disk with an
older epoch is rewritten (:func:`scrub_model_dir`), at each erasure and whenever an engine opens
the store (which also covers a crash between an erasure's commit and the rewrite).

Scrubbing removes what is keyed by user (ALS user rows and ids, co-visitation's last events per
user), and the online models are rebuilt from their trained copy and the log, so what the user's
events added to co-visitation and trending since training goes with them; what the user contributed
to trained shared statistics (item factors, trained co-visitation and trending counts,
sequence-model weights, the scorer) stays until the next training, which no longer sees their events.
Why scrub rather than refit: a refit would double every training that overlaps an erasure (and a
steady trickle of erasures could keep it from ever finishing), while the shared statistics that
remain are the same a served snapshot keeps after any erasure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from liverec.core.types import Event, EventType
from liverec.ranking.snapshot import (
    ModelSnapshot,
    kept_versions,
    load_snapshot,
    read_manifest,
    rewrite_snapshot,
    snapshot_lock,
    user_keyed_models,
)
from liverec.storage.base import EventLog, SnapshotIndex, Store
from liverec.text.base import TextKind
from liverec.text.space import TextSpace
from liverec.training.fit import ReadLog

__all__ = ["Erasure", "Scrubbed", "event_texts", "scrub_model_dir", "scrub_snapshot"]


def event_texts(events: Iterable[Event]) -> list[tuple[str, TextKind]]:
    """The texts of ``events`` with the kind each was encoded as (searches as queries, reviews as passages)."""
    return [(e.text, "query" if e.type is EventType.SEARCH else "passage") for e in events if e.text]


@dataclass(frozen=True)
class Scrubbed:
    """What :func:`scrub_snapshot` did: the users erased since the snapshot's epoch (among those it
    holds and the candidates given), the models that held any, and whether the epoch advanced."""

    users: frozenset[str] = frozenset()
    models: tuple[str, ...] = ()
    advanced: bool = False


def scrub_snapshot(snapshot: ModelSnapshot, events: EventLog, candidates: Iterable[str] = ()) -> Scrubbed:
    """Remove from ``snapshot`` (in memory) every user erased after its epoch, and advance the epoch."""
    now = events.erasure_epoch()  # read first: an erasure after it is checked again next time
    since = snapshot.erasure_epoch
    if now <= since:
        return Scrubbed()
    erased = events.erased_since(since, snapshot.users().union(candidates))
    models = snapshot.forget_users(erased)
    snapshot.manifest["erasure_epoch"] = now
    return Scrubbed(frozenset(erased), tuple(models), advanced=True)


def scrub_model_dir(model_dir: Path, events: EventLog, index: SnapshotIndex | None = None) -> list[str]:
    """Rewrite every snapshot kept under ``model_dir`` whose epoch is older than the store's, without
    the users erased since (and their manifests in the store's ``index``, if it keeps one); the
    versions rewritten. Only the models keyed by user are loaded."""
    now = events.erasure_epoch()
    if now == 0 or not model_dir.is_dir():
        return []
    rewritten = []
    with snapshot_lock(model_dir):
        for version in kept_versions(model_dir):
            manifest = read_manifest(model_dir, version)
            if int(manifest.get("erasure_epoch", 0)) >= now:
                continue
            snapshot = load_snapshot(model_dir, version, models=user_keyed_models(manifest))
            scrubbed = scrub_snapshot(snapshot, events)
            rewrite_snapshot(model_dir, snapshot, scrubbed.models, index)
            rewritten.append(version)
    return rewritten


class Erasure:
    """Erases users from a store, its text vectors and its model directory; scrubs snapshots.

    Parameters
    ----------
    store
        The engine's store (events, vector cache, checkpoint).
    space
        The engine's text space (its in-memory caches hold vectors of user texts too).
    model_dir
        Where the engine's snapshots are kept.
    index
        The store's record of them, where it keeps one (rewritten manifests are recorded there too).
    """

    def __init__(self, store: Store, space: TextSpace, model_dir: Path, index: SnapshotIndex | None = None) -> None:
        self.store = store
        self.space = space
        self.model_dir = model_dir
        self.index = index
        self.seen = store.events.erasure_epoch()  # erasures this process has applied (or found done)

    def epoch(self) -> int:
        """The store's erasure epoch now (read it before reading events to train on)."""
        return self.store.events.erasure_epoch()

    def erase_events(self, user_id: str) -> int:
        """Delete the user's events (the store records the erasure) and every vector of their texts;
        how many events there were. Call with the engine's write lock held."""
        texts = event_texts(self.store.events.by_user(user_id))
        before = self.epoch()
        removed = self.store.events.delete_user(user_id)
        if before == self.seen:  # nothing erased elsewhere meanwhile: this one is all that is new
            self.seen = self.epoch()
        if texts:
            self.space.forget_texts(texts)
        return removed

    def scrub(self, snapshot: ModelSnapshot, read: ReadLog | None = None) -> Scrubbed:
        """Scrub ``snapshot`` in memory (see :func:`scrub_snapshot`). ``read`` is what a training read
        from the log: the vectors of erased users' texts among it are dropped again, as training
        may have encoded (and cached) them after the erasure deleted them."""
        if read is None:
            return scrub_snapshot(snapshot, self.store.events)
        scrubbed = scrub_snapshot(snapshot, self.store.events, read.user_ids)
        texts = event_texts(e for e in read.texts if e.user_id in scrubbed.users)
        if texts and self.space.forget_texts(texts):
            self.store.checkpoint()
        return scrubbed

    def scrub_kept(self) -> list[str]:
        """Rewrite the snapshots on disk that predate an erasure (see :func:`scrub_model_dir`)."""
        return scrub_model_dir(self.model_dir, self.store.events, self.index)

    def checkpoint(self) -> None:
        """Make the store's deleted rows unrecoverable from its files (after an erasure)."""
        self.store.checkpoint()
