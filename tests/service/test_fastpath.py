"""The fast path for GET /users/{id}/recommendations answers exactly as the FastAPI route would.

Each request is sent twice: through the app as built (the fast path answers what it understands)
and with the fast path switched off (every request goes through FastAPI's validation and the
route). Bodies must be equal but for the request id; statuses and error bodies too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liverec.datasets.demo import DemoWorld
from liverec.engine import Engine
from liverec.service import fastpath
from liverec.service.params import RecommendParams
from tests.service.conftest import make_client

QUERIES = [
    "", "k=5", "k=1&diversity=0", "k=20&diversity=1", "diversity=.5", "diversity=0.25&exclude_seen=false",
    "exclude_seen=0", "exclude_seen=1", "category=cameras", "category=cameras,hiking&category=laptops",
    "exclude=i00001,i00002&exclude=i00003", "category=", "k=5&category=%E7%AC%94%E8%AE%B0%E6%9C%AC",
    # left to FastAPI: its answer (an error, or a coerced value) must come back unchanged
    "k=0", "k=1001", "k=abc", "k=", "k=5&k=6", "diversity=1.5", "diversity=-0.1", "diversity=nan",
    "exclude_seen=maybe", "exclude_seen=True", "unknown=1", "k=+5", "k=05",
]


@pytest.fixture(scope="module")
def api(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with make_client(engine, tmp_path_factory.mktemp("fast")) as client:
        yield client


def both(client: TestClient, url: str, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> tuple[Any, Any]:
    fast = client.get(url, **kwargs)
    with monkeypatch.context() as m:
        m.setattr(fastpath.FastRecommendations, "_authorised", staticmethod(lambda services, scope: False))
        slow = client.get(url, **kwargs)
    return fast, slow


def same(fast: Any, slow: Any) -> None:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    a, b = fast.json(), slow.json()
    if fast.status_code == 200:
        assert a.pop("request_id") != b.pop("request_id")
    assert a == b


@pytest.mark.parametrize("query", QUERIES)
def test_the_fast_path_answers_as_the_route(api: TestClient, world: DemoWorld, query: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    user = world.users[3].user_id
    same(*both(api, f"/users/{user}/recommendations?{query}", monkeypatch))


def test_the_fast_path_really_answers_the_common_request(api: TestClient, world: DemoWorld,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = fastpath.recommendations_body

    async def counted(*args: Any) -> dict[str, Any]:
        calls.append(1)
        return await real(*args)

    monkeypatch.setattr(fastpath, "recommendations_body", counted)
    response = api.get(f"/users/{world.users[4].user_id}/recommendations?k=5&category=cameras")
    assert response.status_code == 200 and len(response.json()["items"]) == 5
    assert calls == [1]
    assert api.get(f"/users/{world.users[4].user_id}/recommendations?k=0").status_code == 422
    assert calls == [1]  # left to FastAPI


def test_keys_are_checked_as_the_route_checks_them(engine: Engine, world: DemoWorld, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with make_client(engine, tmp_path, require_keys=True) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        reader, _ = services.keys.create("reader", ["read"])
        ingester, _ = services.keys.create("ingester", ["ingest"])
        url = f"/users/{world.users[5].user_id}/recommendations?k=3"
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {ingester}"},
                        {"X-API-Key": reader}, {"Authorization": f"Bearer {reader}"},
                        {"Authorization": "Bearer nope", "X-API-Key": reader},
                        {"Authorization": f"Basic {reader}", "X-API-Key": reader}):
            fast, slow = both(client, url, monkeypatch, headers=headers)
            same(fast, slow)


def test_an_unknown_user_gets_the_same_popular_items(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    same(*both(api, "/users/nobody-ever/recommendations?k=4", monkeypatch))


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["k", "diversity", "exclude_seen", "category", "exclude", "x"]),
                          st.text("0123456789.,-+aetrfls ", max_size=6)), max_size=4))
def test_what_the_fast_path_accepts_fastapi_reads_the_same(pairs: list[tuple[str, str]]) -> None:
    """Whatever the fast path accepts is a value FastAPI would accept and read the same way."""
    from urllib.parse import urlencode

    from starlette.datastructures import QueryParams

    query = urlencode(pairs)
    got = RecommendParams.from_query(query.encode())
    if got is None:
        return
    params = QueryParams(query)
    if "k" in params:
        assert got.k == int(params["k"])
    if "diversity" in params:
        assert got.diversity == float(params["diversity"])
    if "exclude_seen" in params:
        assert got.exclude_seen == (params["exclude_seen"] in ("1", "true"))
    for name, value in (("category", got.categories), ("exclude", got.exclude)):
        assert list(value) == [p for v in params.getlist(name) for p in v.split(",") if p.strip()]
    # and the route builds the very same parameters from what FastAPI converted
    assert RecommendParams.from_lists(got.k, params.getlist("category") or None, params.getlist("exclude") or None,
                                      got.diversity, got.exclude_seen) == got
