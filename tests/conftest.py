"""Shared fixtures: the demo world and one engine trained on it (real encoder, real SQLite).

Training the demo engine costs ~30 s on 2 cores, so it is built once per session; tests that
change a user's state use their own user ids, so they stay independent of each other.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from liverec.datasets.demo import REFERENCE_TIME, DemoWorld, build_demo_world  # noqa: E402
from liverec.engine import Engine  # noqa: E402


@pytest.fixture(scope="session")
def world() -> DemoWorld:
    return build_demo_world(seed=7, now=REFERENCE_TIME)  # fixed dates: tests must not move with the clock


@pytest.fixture(scope="session")
def engine_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine") / "demo.db"


@pytest.fixture(scope="session")
def engine(world: DemoWorld, engine_path: Path) -> Iterator[Engine]:
    eng = Engine.open(f"sqlite:///{engine_path}")
    eng.ingest_items(world.items)
    for start in range(0, len(world.events), 5000):
        eng.ingest_events(world.events[start : start + 5000])
    eng.train()
    yield eng
    eng.close()


@pytest.fixture
def no_liverec_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``LIVEREC_*`` variable of the machine leaks into a settings test (CLI modules use it for all)."""
    for name in list(os.environ):
        if name.startswith("LIVEREC_"):
            monkeypatch.delenv(name)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``uvicorn.run`` was asked to serve (it never listens in these tests)."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    return calls


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL store URL of a schema of its own (dropped afterwards), snapshots under ``tmp_path``."""
    from tests import _services

    _services.require(_services.POSTGRES, "PostgreSQL")
    schema = _services.unique("t_")
    yield f"{_services.POSTGRES}?schema={schema}&snapshots={tmp_path / 'snapshots'}&pool=4"
    _services.drop_schema(schema)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis state-store URL with a key prefix of its own (its keys deleted afterwards)."""
    from tests import _services

    _services.require(_services.REDIS, "Redis")
    prefix = _services.unique("t_") + ":"
    yield f"{_services.REDIS}?prefix={prefix}"
    _services.drop_prefix(prefix)
