"""Versioned model snapshots: a directory per training run plus a manifest, swapped atomically.

Layout under the snapshot root (format 2)::

    v0003/manifest.json        version, time, counts, validation figures, the models it holds
    v0003/models/<name>/ …      each registered model's own save()
    v0003/scorer/ …             the fitted scorer (its kind recorded beside it)
    v0003/catalog_items.json    the catalog at training time
    v0003/centering.npz         the language centring
    CURRENT                     the name of the live version (replaced with os.replace)

A reader that follows ``CURRENT`` always finds a complete snapshot: the directory is fully
written and fsynced before ``CURRENT`` points at it. A store that keeps a
:class:`~liverec.storage.base.SnapshotIndex` (PostgreSQL) is told of each version, with its
manifest, at the same point, and then the index, not ``CURRENT``, says what is current (the
functions here take it as ``index``); a directory written before the store kept one is adopted
into it as it stands. Every writer and reader holds the directory
(:func:`snapshot_lock`, an ``flock`` on it, so across processes too), and whoever takes it first
finishes or removes what a crashed writer left. Files are readable by their owner only (0600,
directories 0700): a snapshot holds what users did.

An erasure reaches snapshots already written: :func:`rewrite_snapshot` replaces, in place, the
models that kept something of an erased user (each model directory is written beside the old
one and swapped in by two renames, which the next holder of the directory completes if a crash
came between them), and the manifest's ``erasure_epoch`` says up to which erasure of the store
the snapshot is clean. Models are saved and loaded through the
model registry (:mod:`liverec.models.registry`), so a snapshot holds whatever was registered
when it was trained; a snapshot of format 1 (``trending/``, ``covisit/``, ``als/`` and
``fusion.json`` at the top) still loads.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import threading
import time
import zipfile
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liverec.core.errors import LiveRecError, NotFoundError, StorageError
from liverec.core.types import Event, EventType
from liverec.models.base import ExposureModel, Model, OnlineModel, UserKeyedModel
from liverec.models.registry import model_class
from liverec.ranking.fusion import LinearFusion
from liverec.ranking.scoring import Scorer, load_scorer, save_scorer
from liverec.storage.base import SnapshotIndex
from liverec.storage.files import PRIVATE_FILE, private_dir, private_tree
from liverec.text.centering import LanguageCentering

# What an ExposureModel learns from: what was shown, and what was clicked.
_EXPOSURE_TYPES = frozenset({EventType.IMPRESSION, EventType.CLICK})

__all__ = ["FORMAT", "KEEP_SNAPSHOTS", "ModelSnapshot", "current_version", "kept_versions", "load_snapshot",
           "read_manifest", "rewrite_snapshot", "snapshot_lock", "user_keyed_models", "version_number",
           "write_snapshot"]

KEEP_SNAPSHOTS = 3
FORMAT = 2
_FORMAT_1_MODELS = ("trending", "covisit", "als")


@dataclass
class ModelSnapshot:
    """The trained models the ranker serves from, and what was known at training time."""

    version: str
    models: dict[str, Model]
    scorer: Scorer
    catalog_items: frozenset[str]  # the catalog at training time; later items are "fresh"
    centering: LanguageCentering = field(default_factory=LanguageCentering)
    manifest: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Found once: a runtime protocol check inspects the class, ~30 µs a model (measured: 87 µs of
        # a 0.5 ms single-event ingest when it ran per batch).
        self.online: list[OnlineModel] = [m for m in self.models.values() if isinstance(m, OnlineModel)]
        self.exposure: list[ExposureModel] = [m for m in self.models.values() if isinstance(m, ExposureModel)]

    def live_model_names(self) -> list[str]:
        """The models that learn between trainings (online and exposure models): what a replay of
        the log since training feeds, and so what must be reloaded before one."""
        live = {id(m) for m in [*self.online, *self.exposure]}
        return [name for name, model in self.models.items() if id(model) in live]

    def observe(self, events: Iterable[Event], weights: Mapping[EventType, float]) -> None:
        """Fold positive item events (in time order) into the models that learn between trainings,
        and impressions and clicks into those that learn what was shown."""
        online, exposure = self.online, self.exposure
        if not online and not exposure:
            return
        user_ids: list[str] = []
        item_ids: list[str] = []
        item_weights: list[float] = []
        timestamps: list[float] = []
        exposed: tuple[list[str], list[EventType], list[float]] = ([], [], [])
        for e in events:
            if e.item_id is None:
                continue
            w = weights[e.type]
            if w > 0:
                user_ids.append(e.user_id)
                item_ids.append(e.item_id)
                item_weights.append(w)
                timestamps.append(e.timestamp)
            if e.type in _EXPOSURE_TYPES:
                exposed[0].append(e.item_id)
                exposed[1].append(e.type)
                exposed[2].append(e.timestamp)
        if item_ids:
            for model in online:
                model.observe(user_ids, item_ids, item_weights, timestamps)
        if exposed[0]:
            for exposure_model in exposure:
                exposure_model.observe_exposure(*exposed)

    @property
    def erasure_epoch(self) -> int:
        """The store's erasure epoch this snapshot is clean up to (see ``EventLog.erasure_epoch``):
        no user erased at or before it keeps anything in its models."""
        return int(self.manifest.get("erasure_epoch", 0))

    def users(self) -> set[str]:
        """Every user id one of the models keeps something for."""
        return {u for m in self.models.values() if isinstance(m, UserKeyedModel) for u in m.known_users()}

    def forget_users(self, user_ids: Collection[str]) -> list[str]:
        """Remove ``user_ids`` from every model that keeps something per user, in place; the names
        of the models that held any of them."""
        if not user_ids:
            return []
        return [name for name, m in self.models.items() if isinstance(m, UserKeyedModel) and m.forget_users(user_ids)]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0600) and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, PRIVATE_FILE)


class _DirectoryLock:
    """One model directory held by one thread of one process: a thread lock here, an ``flock``
    on the directory for other processes (taken by the outermost holder; re-entrant)."""

    def __init__(self) -> None:
        self.thread = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


_LOCKS: dict[Path, _DirectoryLock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def snapshot_lock(root: Path) -> Iterator[None]:
    """Hold the model directory ``root`` (created, mode 0700, if missing) against every other
    writer and reader of it, in any process; re-entrant in one thread.

    The first holder after a crash finishes what was interrupted: a half-written snapshot is
    removed, a model swap left between its two renames is completed.
    """
    key = root.resolve()
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, _DirectoryLock())
    with lock.thread:
        if lock.depth == 0:
            try:
                private_dir(root)
                fd = os.open(root, os.O_RDONLY)
            except OSError as exc:
                raise StorageError(f"cannot open the model directory {root}: {exc}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                _recover(root)
            except BaseException:
                os.close(fd)  # releases the flock
                raise
            lock.fd = fd
        lock.depth += 1
        try:
            yield
        finally:
            lock.depth -= 1
            if lock.depth == 0 and lock.fd is not None:
                os.close(lock.fd)
                lock.fd = None


def _recover(root: Path) -> None:
    """Clean up after writers that died holding the directory (call holding it)."""
    for stale in root.glob(".v*.tmp"):  # a snapshot whose writing never finished
        shutil.rmtree(stale, ignore_errors=True)
    (root / "CURRENT.tmp").unlink(missing_ok=True)
    for _, version in _versions(root):
        (version / "manifest.json.tmp").unlink(missing_ok=True)
        for parent in (version, version / "models"):
            for new in parent.glob(".*.new"):
                target = parent / new.name[1 : -len(".new")]
                if target.exists():
                    shutil.rmtree(new, ignore_errors=True)  # the swap had not begun: the old one stands
                else:
                    new.rename(target)  # the old one was moved aside: finish the swap
            for old in parent.glob(".*.old"):
                shutil.rmtree(old, ignore_errors=True)


def version_number(version: str) -> int | None:
    """The number of a snapshot version (``v0012`` → 12), None for a name that is not one."""
    match = re.fullmatch(r"v(\d+)", version)
    return int(match.group(1)) if match else None


def _versions(root: Path) -> list[tuple[int, Path]]:
    """Snapshot directories by version number, oldest first (numeric: v10000 follows v9999)."""
    found = [(n, p) for p in root.glob("v*") if p.is_dir() and (n := version_number(p.name)) is not None]
    return sorted(found)


def _next_version(root: Path) -> str:
    return f"v{max((n for n, _ in _versions(root)), default=0) + 1:04d}"


def write_snapshot(root: Path, snapshot: ModelSnapshot, manifest: dict[str, Any],
                   index: SnapshotIndex | None = None) -> ModelSnapshot:
    """Write ``snapshot`` as the next version under ``root`` and make it current (in ``index``
    too, when the store keeps one: once the files are complete, before ``CURRENT`` moves)."""
    with snapshot_lock(root):
        try:
            version = _next_version(root)
            tmp = root / f".{version}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            private_dir(tmp)
            for name, model in snapshot.models.items():
                model.save(tmp / "models" / name)
            save_scorer(snapshot.scorer, tmp / "scorer")
            (tmp / "catalog_items.json").write_text(json.dumps(sorted(snapshot.catalog_items)))
            snapshot.centering.save(tmp / "centering.npz")
            models = {name: type(model).__name__ for name, model in snapshot.models.items()}
            full = {"version": version, "format": FORMAT, "created_at": time.time(), "models": models, **manifest}
            (tmp / "manifest.json").write_text(json.dumps(full, indent=2, default=str))
            private_tree(tmp)  # models save with the umask's modes
            _fsync_tree(tmp)
            final = root / version
            os.replace(tmp, final)
            if index is not None:  # a failure here leaves the version unpublished: the old one stays current
                index.publish(version, full)
            pointer = root / "CURRENT.tmp"
            _write_file(pointer, version)
            os.replace(pointer, root / "CURRENT")
            _fsync_dir(root)
        except OSError as exc:
            raise StorageError(f"could not write model snapshot under {root}: {exc}") from exc
        _prune(root, version, index)
    snapshot.version = version
    snapshot.manifest = full
    return snapshot


def rewrite_snapshot(root: Path, snapshot: ModelSnapshot, models: Collection[str],
                     index: SnapshotIndex | None = None) -> None:
    """Save the ``models`` named and the manifest of ``snapshot`` over its version under ``root``,
    in place (after an erasure scrubbed them); nothing if the version is gone (pruned meanwhile).

    ``snapshot`` may hold only some of the version's models (see :func:`load_snapshot`); the
    others are left as they are.
    """
    with snapshot_lock(root):
        path = root / snapshot.version
        if not snapshot.version or not (path / "manifest.json").exists():
            return
        try:
            manifest = json.loads((path / "manifest.json").read_text())
            for name in models:
                target = _model_path(path, manifest, name)
                new, old = target.with_name(f".{name}.new"), target.with_name(f".{name}.old")
                shutil.rmtree(new, ignore_errors=True)
                snapshot.models[name].save(new)
                private_tree(new)
                _fsync_tree(new)
                target.rename(old)
                new.rename(target)  # a crash between the two renames is completed by _recover
                _fsync_dir(target.parent)
                shutil.rmtree(old)
            pending = path / "manifest.json.tmp"
            _write_file(pending, json.dumps(snapshot.manifest, indent=2, default=str))
            os.replace(pending, path / "manifest.json")
            _fsync_dir(path)
        except OSError as exc:
            raise StorageError(f"could not rewrite model snapshot {snapshot.version} under {root}: {exc}") from exc
        if index is not None:
            index.update(snapshot.version, snapshot.manifest)


def _prune(root: Path, keep: str, index: SnapshotIndex | None) -> None:
    versions = [p for _, p in _versions(root) if p.name != keep]
    gone = versions[: max(0, len(versions) - (KEEP_SNAPSHOTS - 1))]
    for old in gone:
        shutil.rmtree(old, ignore_errors=True)
    if index is not None:
        index.pruned([p.name for p in gone])


def current_version(root: Path, index: SnapshotIndex | None = None) -> str | None:
    """The current version: the store's ``index`` says, where it keeps one (a directory that
    predates the index is adopted into it); else the directory's ``CURRENT`` file."""
    current = index.current() if index is not None else None
    if current is not None:
        return current  # the file is not read: a worker's sync asks every second
    pointer = root / "CURRENT"
    written = pointer.read_text().strip() if pointer.exists() else None
    if index is not None and written is not None:
        return index.adopt(written, read_manifest(root, written))
    return written


def kept_versions(root: Path) -> list[str]:
    """The versions kept under ``root`` (complete ones: with a manifest), oldest first."""
    return [p.name for _, p in _versions(root) if (p / "manifest.json").exists()] if root.is_dir() else []


def read_manifest(root: Path, version: str) -> dict[str, Any]:
    """The manifest of ``version`` under ``root``, without loading its models."""
    path = root / version / "manifest.json"
    if not path.exists():
        raise NotFoundError(f"model snapshot {version} is missing under {root}", kind="snapshot", key=version)
    with unreadable_as_storage_error(root, version):
        manifest: dict[str, Any] = json.loads(path.read_text())
    if not isinstance(manifest, dict):
        raise StorageError(f"model snapshot {version} under {root} is unreadable: its manifest.json is not an "
                           "object; retrain with `liverec train`")
    return manifest


def _model_names(manifest: Mapping[str, Any]) -> list[str]:
    return list(_FORMAT_1_MODELS) if manifest.get("format", 1) == 1 else list(manifest.get("models", {}))


def _model_path(path: Path, manifest: Mapping[str, Any], name: str) -> Path:
    return path / name if manifest.get("format", 1) == 1 else path / "models" / name


def user_keyed_models(manifest: Mapping[str, Any]) -> list[str]:
    """The models of a snapshot (by its manifest) that keep something per user id."""
    names = []
    for name in _model_names(manifest):
        try:
            cls = model_class(name)
        except NotFoundError:
            continue  # loading the snapshot says so
        if issubclass(cls, UserKeyedModel):
            names.append(name)
    return names


def load_snapshot(root: Path, version: str | None = None, models: Collection[str] | None = None) -> ModelSnapshot:
    """Load ``version`` (default: the current one) from ``root``; only the ``models`` named, if given.

    A model the snapshot holds must be registered under the same name and class; otherwise
    StorageError says which, since serving without it would silently change every list.
    """
    if not root.is_dir():
        raise NotFoundError(f"no model snapshot under {root}; run train first", kind="snapshot", key=str(root))
    with snapshot_lock(root), unreadable_as_storage_error(root, version):
        return _load(root, version, models)


@contextmanager
def unreadable_as_storage_error(root: Path, version: str | None) -> Iterator[None]:
    """A snapshot's file that cannot be read or parsed (truncated, corrupt, hand-edited) is a
    :class:`StorageError` naming the snapshot and what to do, not a parser's traceback."""
    try:
        yield
    except LiveRecError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        name = version or current_version(root) or "?"
        raise StorageError(
            f"model snapshot {name} under {root} is unreadable ({type(exc).__name__}: {exc}); retrain with "
            f"`liverec train`, or point {root / 'CURRENT'} at an older kept snapshot"
        ) from exc


def _load(root: Path, version: str | None, only: Collection[str] | None) -> ModelSnapshot:
    version = version or current_version(root)
    if version is None:
        raise NotFoundError(f"no model snapshot under {root}; run train first", kind="snapshot", key=str(root))
    path = root / version
    manifest = read_manifest(root, version)
    wanted = [name for name in _model_names(manifest) if only is None or name in only]
    if manifest.get("format", 1) == 1:
        models = {name: _load_model(path / name, name, version) for name in wanted}
        scorer: Scorer = LinearFusion.from_fusion_json(path / "fusion.json")
    else:
        classes = manifest.get("models", {})
        models = {name: _load_model(path / "models" / name, name, version, classes[name]) for name in wanted}
        scorer = load_scorer(path / "scorer")
    return ModelSnapshot(
        version=version,
        models=models,
        scorer=scorer,
        catalog_items=frozenset(json.loads((path / "catalog_items.json").read_text())),
        centering=LanguageCentering.load(path / "centering.npz"),
        manifest=manifest,
    )


def _load_model(path: Path, name: str, version: str, cls_name: str | None = None) -> Model:
    try:
        cls = model_class(name)
    except NotFoundError:
        raise StorageError(f"model snapshot {version} holds model {name!r}, which is not registered here") from None
    if cls_name is not None and cls.__name__ != cls_name:
        raise StorageError(f"model snapshot {version} holds {name!r} as a {cls_name}, but {name!r} is registered "
                           f"as {cls.__name__}")
    model: Model = cls.load(path)
    return model
