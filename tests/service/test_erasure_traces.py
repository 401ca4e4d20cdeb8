"""Erasure holds everywhere: against a retrain that runs meanwhile, in every file of the store.

A user is erased while a retrain is paused after reading the log (a progress hook holds it: no
sleeps), another after it; then every file under the store's directory (databases and their
-wal/-shm, snapshots, the lock file) is read raw and searched for the users' raw ids, their
pseudonyms, the texts of their reviews and searches, the float32 bytes of those texts' vectors and
their ALS factor rows: none may be found, while the service is still running and after it stops.
The snapshots served afterwards hold no trace of them either.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from liverec.core.types import Event, EventType
from liverec.datasets.demo import DemoWorld, build_demo_world
from liverec.engine import Engine
from liverec.ranking.snapshot import ModelSnapshot
from liverec.service.app import create_app
from liverec.service.privacy import Pseudonymizer
from liverec.service.settings import ServiceSettings
from liverec.storage import open_store
from liverec.text.encoders import get_encoder, normalize_rows
from tests.service._api import as_json

SECRET = "erasure-traces: a secret of more than 16 bytes"
# The sequence model trains for two epochs only: what is tested is where data ends up, not quality.
ENGINE = {"models": {"sequential": {"max_epochs": 2, "patience": 1}}}
VECTOR_WINDOW = 32  # bytes of a vector searched for at a time: a 2 KB blob may span SQLite pages


@dataclass(frozen=True)
class Victim:
    raw: str
    category: str
    review: str
    search: str

    @property
    def pseudonym(self) -> str:
        return Pseudonymizer(SECRET).user_id(self.raw)


DURING = Victim("ada.lovelace+during@example.org", "coffee",
                "the brass quokka grinder jammed on its second morning, a sorry lump of metal",
                "quokka grinder for moonlit espresso")
AFTER = Victim("grace.hopper+after@example.org", "hiking",
               "zanzibar lantern straps frayed after one wet ridge walk, never again",
               "zanzibar lantern for wet ridge walks")


@pytest.fixture(scope="module")
def world() -> DemoWorld:
    return build_demo_world(seed=3, n_items=150, n_users=30)


def _store(directory: Path, world: DemoWorld) -> str:
    """A store holding the small world, untrained."""
    url = f"sqlite:///{directory / 'shop.db'}"
    with Engine.open(url, **ENGINE) as engine:
        engine.ingest_items(world.items)
        engine.ingest_events(world.events)
    return url


def _act(client: TestClient, world: DemoWorld, victim: Victim) -> None:
    """Everything a user leaves behind through the API: events with a review, a search, a served list
    with feedback on it."""
    start = min(time.time(), world.reference_time) - 7200.0
    history = world.new_user_history(victim.raw, victim.category, 8, start=start)
    # The review comes first, so a retrain's validation replays it (and encodes its text again).
    review = Event.create(victim.raw, EventType.REVIEW, history[0].item_id, text=victim.review,
                          timestamp=start - 600.0)
    posted = client.post("/events", json={"events": as_json([*history, review])})
    assert posted.status_code == 200, posted.text
    assert client.get("/search", params={"q": victim.search, "user_id": victim.raw}).status_code == 200
    served = client.get(f"/users/{victim.raw}/recommendations")
    assert served.status_code == 200, served.text
    body = served.json()
    clicked = client.post("/feedback", json={"request_id": body["request_id"], "type": "click",
                                             "item_ids": [body["items"][0]["item_id"]]})
    assert clicked.status_code == 200, clicked.text


def _vector_windows(texts: list[str]) -> list[bytes]:
    """Pieces of the float32 bytes of each text's vector, as a query and as a passage, encoded alone
    as the engine encodes them (a batch may differ in the last bits)."""
    encoder = get_encoder("use")
    windows: list[bytes] = []
    for kind in ("query", "passage"):
        for text in texts:
            raw = normalize_rows(encoder.encode([text], kind=kind), 1, encoder.dim)[0].astype("<f4").tobytes()
            windows += [raw[:VECTOR_WINDOW], raw[len(raw) // 2 : len(raw) // 2 + VECTOR_WINDOW],
                        raw[-VECTOR_WINDOW:]]
    return windows


def _factor_row(snapshot: ModelSnapshot | None, user_id: str) -> bytes:
    """The user's ALS factor row in ``snapshot``, as stored (float32 bytes)."""
    assert snapshot is not None
    als: Any = snapshot.models["als"]
    row = als.user_factors_[als.user_ids_.index(user_id)]
    assert np.any(row)
    return bytes(np.asarray(row, dtype="<f4").tobytes())


def _hits(directory: Path, needles: dict[str, bytes]) -> list[str]:
    """``file: needle`` for every needle found in any file under ``directory``, read raw."""
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(directory)}: {name}" for name, needle in needles.items() if needle in data]
    return found


def _traces(victims: list[Victim], extra: dict[str, bytes]) -> dict[str, bytes]:
    needles = dict(extra)
    for v in victims:
        needles |= {f"raw id {v.raw}": v.raw.encode(), f"pseudonym of {v.raw}": v.pseudonym.encode(),
                    f"review of {v.raw}": v.review.encode(), f"search of {v.raw}": v.search.encode()}
        for n, window in enumerate(_vector_windows([v.review, v.search])):
            needles[f"vector bytes {n} of {v.raw}'s texts"] = window
    return needles


def _assert_no_trace(snapshot: ModelSnapshot | None, victims: list[Victim]) -> None:
    assert snapshot is not None
    kept = snapshot.users()
    assert all(v.pseudonym not in kept for v in victims)
    als: Any = snapshot.models["als"]
    covisit: Any = snapshot.models["covisit"]
    assert all(v.pseudonym not in als.user_ids_ and v.pseudonym not in covisit.tails_ for v in victims)
    assert als.user_factors_.shape[0] == len(als.user_ids_)


class PausedFit:
    """A progress hook that holds training at its first step (the log is read, nothing fitted yet)
    until released."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, _step: str, _fraction: float) -> None:
        if not self.reached.is_set():
            self.reached.set()
            assert self.release.wait(120), "the paused fit was never released"


def _train_paused(engine: Engine) -> tuple[PausedFit, threading.Thread, list[Any]]:
    hook, outcome = PausedFit(), []
    thread = threading.Thread(target=lambda: outcome.append(engine.train(hook)), daemon=True)
    thread.start()
    assert hook.reached.wait(120), "training never reached its first step"
    return hook, thread, outcome


def _service(directory: Path, world: DemoWorld) -> TestClient:
    """The service over a fresh store of the small world in ``directory``, pseudonymising user ids;
    use as a context manager."""
    settings = ServiceSettings(store=_store(directory, world), user_id_secret=SECRET, engine=ENGINE)
    return TestClient(create_app(settings), base_url="http://127.0.0.1")  # a loopback Host, as a local client sends


def _engine(client: TestClient) -> Engine:
    engine: Engine = client.app.state.services.engine  # type: ignore[attr-defined]
    return engine


def test_an_erasure_during_a_retrain_and_one_after_leave_no_trace_in_any_file(
    tmp_path: Path, world: DemoWorld
) -> None:
    directory = tmp_path / "store"
    with _service(directory, world) as client:
        needles = _erase_during_and_after_a_retrain(client, _engine(client), directory, world)
        assert _hits(directory, needles) == []  # while the service runs: the WAL included
    assert _hits(directory, needles) == []  # and once it has stopped


def _erase_during_and_after_a_retrain(
    client: TestClient, engine: Engine, directory: Path, world: DemoWorld
) -> dict[str, bytes]:
    for victim in (DURING, AFTER):
        _act(client, world, victim)
    engine.train()  # both are in the served snapshot (and on disk) now
    rows = {f"factor row of {v.raw}": _factor_row(engine.snapshot, v.pseudonym) for v in (DURING, AFTER)}
    needles = _traces([DURING, AFTER], rows)
    before = _hits(directory, needles)  # the scan finds what is there: ids, texts, vectors, factor rows
    assert {"pseudonym of", "review of", "search of", "vector bytes", "factor row of"} <= \
        {name for hit in before for name in ("pseudonym of", "review of", "search of", "vector bytes",
                                             "factor row of") if name in hit}

    hook, thread, outcome = _train_paused(engine)  # the retrain has read DURING's events
    erased = client.delete(f"/users/{DURING.raw}")
    assert erased.status_code == 200, erased.text
    assert erased.json()["events_removed"] == 10 and erased.json()["served_requests_removed"] == 1
    hook.release.set()
    thread.join(300)
    assert outcome, "the retrain failed"
    assert engine.snapshot is not None and engine.snapshot.version == outcome[0].version
    _assert_no_trace(engine.snapshot, [DURING])
    assert AFTER.pseudonym in engine.snapshot.users()

    erased = client.delete(f"/users/{AFTER.raw}")
    assert erased.status_code == 200, erased.text
    _assert_no_trace(engine.snapshot, [DURING, AFTER])
    return needles


def test_a_snapshot_trained_elsewhere_during_an_erasure_has_no_trace_when_adopted(
    tmp_path: Path, world: DemoWorld
) -> None:
    """Another process (here: a second engine on the same store) trains while the service erases:
    the snapshot it writes, and the one the service then adopts, hold no trace of the user."""
    directory = tmp_path / "store"
    with _service(directory, world) as client:
        _adopt_a_snapshot_trained_elsewhere(client, _engine(client), directory, world)


def _adopt_a_snapshot_trained_elsewhere(client: TestClient, engine: Engine, directory: Path,
                                        world: DemoWorld) -> None:
    _act(client, world, DURING)
    trainer = Engine(open_store(engine.store.url), engine.settings)
    try:
        hook, thread, outcome = _train_paused(trainer)
        assert client.delete(f"/users/{DURING.raw}").status_code == 200
        hook.release.set()
        thread.join(300)
        assert outcome, "the retrain failed"
        _assert_no_trace(trainer.snapshot, [DURING])
    finally:
        trainer.close()
    adopted = engine.adopt(outcome[0].version)
    _assert_no_trace(adopted, [DURING])
    assert _hits(directory, _traces([DURING], {})) == []


def test_an_erasure_committed_but_not_yet_applied_to_the_snapshots_is_applied_at_the_next_start(
    tmp_path: Path, world: DemoWorld
) -> None:
    """A crash between an erasure's commit and the scrubbing of the snapshots: the next engine to open
    the store scrubs every kept snapshot before serving one."""
    directory = tmp_path / "store"
    url = _store(directory, world)
    with Engine.open(url, **ENGINE) as engine:
        engine.ingest_events(world.new_user_history(DURING.pseudonym, DURING.category, 8,
                                                    start=min(time.time(), world.reference_time) - 7200.0))
        engine.train()
        engine.train()  # two kept snapshots hold the user
        assert DURING.pseudonym in engine.snapshot.users()  # type: ignore[union-attr]
        assert engine.store.events.delete_user(DURING.pseudonym) == 8  # the erasure's commit, then the crash
    assert _hits(directory, {"pseudonym": DURING.pseudonym.encode()})
    with Engine.open(url, **ENGINE) as engine:
        _assert_no_trace(engine.snapshot, [DURING])
        assert _hits(directory, {"pseudonym": DURING.pseudonym.encode()}) == []
