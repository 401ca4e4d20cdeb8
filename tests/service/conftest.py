"""Service fixtures: the app over the session's trained demo engine, and a small engine of its own
for tests that retrain or need an empty service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from liverec.datasets.demo import REFERENCE_TIME, DemoWorld, build_demo_world
from liverec.engine import Engine
from liverec.service.app import create_app
from liverec.service.settings import ServiceSettings
from liverec.storage import open_key_store
from tests.service._api import trained_engine

# A loopback Host, as a local client sends: the service refuses foreign Host names on loopback.
LOCAL = "http://localhost"


@pytest.fixture(scope="module")
def client(engine: Engine, engine_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The service over the demo world (no keys: loopback and none created)."""
    tmp = tmp_path_factory.mktemp("service")
    settings = ServiceSettings(
        store=f"sqlite:///{engine_path}", keys_file=str(tmp / "keys.db"), feedback_file=str(tmp / "feedback.db")
    )
    with TestClient(create_app(settings, engine=engine), base_url=LOCAL) as c:
        yield c


@pytest.fixture(scope="session")
def small_world() -> DemoWorld:
    return build_demo_world(seed=3, n_items=150, n_users=30, now=REFERENCE_TIME)


@pytest.fixture(scope="module")
def small_engine(small_world: DemoWorld) -> Iterator[Engine]:
    """A small trained engine in memory that a test module may change (retrain, delete items)."""
    eng = trained_engine(small_world)
    yield eng
    eng.close()



def make_client(engine: Engine, tmp: Path, **settings: object) -> TestClient:
    """A client over ``engine`` with its own key and feedback files (``tmp/keys.db``, ``tmp/fb.db``);
    use as a context manager."""
    base = ServiceSettings(store="memory://", keys_file=str(tmp / "keys.db"), feedback_file=str(tmp / "fb.db"))
    values = {**{f: getattr(base, f) for f in ("store", "keys_file", "feedback_file")}, **settings}
    return TestClient(create_app(ServiceSettings(**values), engine=engine), base_url=LOCAL)  # type: ignore[arg-type]


def create_key(path: Path, name: str, scopes: list[str]) -> str:
    """Create a key in the key database at ``path`` (as ``liverec keys create`` would); its token."""
    keys = open_key_store(path)
    try:
        return keys.create(name, scopes)[0]
    finally:
        keys.close()
