"""The interest threshold training chooses (``Settings.interest_similarities``) is the one states are
built with: at start-up from the served snapshot, and again, from the log, when a snapshot with
another one is adopted (issue 11: 0.3 suited the demo world, 0.5 Amazon Scientific)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from liverec.core.settings import Settings
from liverec.datasets.demo import build_demo_world
from liverec.engine import Engine
from liverec.realtime.state import UserState


def _same(a: UserState, b: UserState) -> bool:
    return len(a.interests) == len(b.interests) and all(
        np.allclose(x.vector, y.vector) for x, y in zip(a.interests, b.interests, strict=True))


def test_a_snapshot_with_another_threshold_has_the_states_rebuilt_with_it(tmp_path: Path) -> None:
    world = build_demo_world(seed=11, n_items=120, n_users=24)
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with Engine.open(url, interest_similarities=[0.5]) as trainer:
        trainer.ingest_items(world.items)
        trainer.ingest_events(world.events)
        trainer.train()
        assert trainer.snapshot.manifest["interest_similarity"] == 0.5
        assert trainer.states.interest_similarity == 0.5
    user = world.users[0].user_id
    with Engine.open(url) as server:  # its settings say 0.3; the snapshot it serves was trained with 0.5
        assert Settings().interest_similarity == 0.3 and server.states.interest_similarity == 0.5
        before = server.state(user)
        events = server.states.events.by_user(user)
        assert _same(before, server.states.build(user, events, interest_similarity=0.5))
        with Engine.open(url, interest_similarities=[0.9]) as other:  # another process trains with 0.9
            other.train()
        server.adopt()
        assert server.states.interest_similarity == 0.9
        after = server.state(user)
        assert _same(after, server.states.build(user, events, interest_similarity=0.9)) and not _same(after, before)
    # pinned: no choice, the setting's threshold
    with Engine.open(url, interest_similarity=0.4, interest_similarities=[]) as pinned:
        assert pinned.states.interest_similarity == 0.9  # the served snapshot's, until it trains
        pinned.train()
        assert pinned.snapshot.manifest["interest_similarity"] == 0.4 == pinned.states.interest_similarity
