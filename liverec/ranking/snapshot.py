"""Versioned model snapshots: a directory per training run plus a manifest, swapped atomically.

Layout under the snapshot root::

    v0003/manifest.json   version, time, counts, validation figures, model classes
    v0003/trending/ …     each model's own save()
    v0003/fusion.json     the tuned recall weights
    CURRENT               the name of the live version (replaced with os.replace)

A reader that follows ``CURRENT`` always finds a complete snapshot: the directory is fully
written and fsynced before ``CURRENT`` points at it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liverec.core.errors import NotFoundError, StorageError
from liverec.models.als import ALSRecommender
from liverec.models.covisit import CoVisitation
from liverec.models.popularity import TrendingPopularity
from liverec.ranking.fusion import FusionWeights
from liverec.text.centering import LanguageCentering

KEEP_SNAPSHOTS = 3


@dataclass
class ModelSnapshot:
    """The trained models the ranker serves from, and what was known at training time."""

    version: str
    trending: TrendingPopularity
    covisit: CoVisitation
    als: ALSRecommender
    fusion: FusionWeights
    catalog_items: frozenset[str]  # the catalog at training time; later items are "fresh"
    centering: LanguageCentering = field(default_factory=LanguageCentering)
    manifest: dict[str, Any] = field(default_factory=dict)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _versions(root: Path) -> list[tuple[int, Path]]:
    """Snapshot directories by version number, oldest first (numeric: v10000 follows v9999)."""
    found = [(int(m.group(1)), p) for p in root.glob("v*") if p.is_dir() and (m := re.fullmatch(r"v(\d+)", p.name))]
    return sorted(found)


def _next_version(root: Path) -> str:
    return f"v{max((n for n, _ in _versions(root)), default=0) + 1:04d}"


def write_snapshot(root: Path, snapshot: ModelSnapshot, manifest: dict[str, Any]) -> ModelSnapshot:
    """Write ``snapshot`` as the next version under ``root`` and make it current."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        version = _next_version(root)
        tmp = root / f".{version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        snapshot.trending.save(tmp / "trending")
        snapshot.covisit.save(tmp / "covisit")
        snapshot.als.save(tmp / "als")
        snapshot.fusion.save(tmp / "fusion.json")
        (tmp / "catalog_items.json").write_text(json.dumps(sorted(snapshot.catalog_items)))
        snapshot.centering.save(tmp / "centering.npz")
        full = {"version": version, "created_at": time.time(), **manifest}
        (tmp / "manifest.json").write_text(json.dumps(full, indent=2, default=str))
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        final = root / version
        os.replace(tmp, final)
        pointer = root / "CURRENT.tmp"
        pointer.write_text(version)
        with open(pointer, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(pointer, root / "CURRENT")
        _fsync_dir(root)
    except OSError as exc:
        raise StorageError(f"could not write model snapshot under {root}: {exc}") from exc
    _prune(root, keep=version)
    snapshot.version = version
    snapshot.manifest = full
    return snapshot


def _prune(root: Path, keep: str) -> None:
    versions = [p for _, p in _versions(root) if p.name != keep]
    for old in versions[: max(0, len(versions) - (KEEP_SNAPSHOTS - 1))]:
        shutil.rmtree(old, ignore_errors=True)


def current_version(root: Path) -> str | None:
    pointer = root / "CURRENT"
    return pointer.read_text().strip() if pointer.exists() else None


def load_snapshot(root: Path, version: str | None = None) -> ModelSnapshot:
    """Load ``version`` (default: the current one) from ``root``."""
    version = version or current_version(root)
    if version is None:
        raise NotFoundError(f"no model snapshot under {root}; run train first", kind="snapshot", key=str(root))
    path = root / version
    if not (path / "manifest.json").exists():
        raise NotFoundError(f"model snapshot {version} is missing under {root}", kind="snapshot", key=version)
    return ModelSnapshot(
        version=version,
        trending=TrendingPopularity.load(path / "trending"),
        covisit=CoVisitation.load(path / "covisit"),
        als=ALSRecommender.load(path / "als"),
        fusion=FusionWeights.load(path / "fusion.json"),
        catalog_items=frozenset(json.loads((path / "catalog_items.json").read_text())),
        centering=LanguageCentering.load(path / "centering.npz"),
        manifest=json.loads((path / "manifest.json").read_text()),
    )
