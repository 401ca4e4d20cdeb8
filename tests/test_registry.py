"""Adding a model is one module plus one registration: a toy item-kNN recall, defined here alone.

Nothing in ``liverec/`` knows this model. Registered, it is trained into the snapshot with the
others, saved and loaded through the model registry, given a fusion weight by training, served
as a recall and explained in its own words.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import pytest

from liverec.core.errors import InvalidInputError
from liverec.core.types import Reason
from liverec.datasets.demo import DemoWorld, build_demo_world
from liverec.engine import Engine
from liverec.models import register_model, unregister_model
from liverec.models.base import Ranked, ScoredItems, TrainingData
from liverec.ranking import ReasonContext, Recall, RecallContext, register_recall, unregister_recall
from liverec.ranking.filters import Filters


class ItemKNN:
    """Items scored by the cosine of their user columns with the user's recent items."""

    name: ClassVar[str] = "itemknn"

    def __init__(self, neighbors: int = 10) -> None:
        self.neighbors = neighbors

    def fit(self, data: TrainingData) -> Self:
        seen = (data.user_items > 0).astype(np.float64).toarray()  # [users, items]
        norms = np.linalg.norm(seen, axis=0)
        sims = (seen.T @ seen) / np.maximum(np.outer(norms, norms), 1e-12)
        np.fill_diagonal(sims, 0.0)
        weakest = np.argsort(-sims, axis=1)[:, self.neighbors :]
        np.put_along_axis(sims, weakest, 0.0, axis=1)
        self.item_ids_, self.sims_ = list(data.item_ids), sims
        return self

    def recommend_ranked(self, history: Sequence[tuple[str, float]], k: int = 10,
                         exclude: Collection[str] = ()) -> Ranked:
        index = {item: n for n, item in enumerate(self.item_ids_)}
        rows = [index[i] for i, w in history if i in index and w > 0]
        if not rows:
            return [], np.zeros(0)
        scores = self.sims_[rows].sum(axis=0)
        scores[rows] = 0.0
        order = [int(n) for n in np.argsort(-scores, kind="stable") if scores[n] > 0
                 and self.item_ids_[n] not in exclude][:k]
        return [self.item_ids_[n] for n in order], scores[order]

    def recommend(self, history: Sequence[tuple[str, float]], k: int = 10,
                  exclude: Collection[str] = ()) -> ScoredItems:
        ids, scores = self.recommend_ranked(history, k, exclude)
        return list(zip(ids, scores.tolist(), strict=True))

    def similar_items(self, item_id: str, k: int = 10) -> ScoredItems:
        return self.recommend([(item_id, 1.0)], k)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "params.json").write_text(json.dumps({"neighbors": self.neighbors, "item_ids": self.item_ids_}))
        np.save(path / "sims.npy", self.sims_, allow_pickle=False)

    @classmethod
    def load(cls, path: Path) -> Self:
        record = json.loads((path / "params.json").read_text())
        model = cls(record["neighbors"])
        model.item_ids_, model.sims_ = record["item_ids"], np.load(path / "sims.npy", allow_pickle=False)
        return model


def find_itemknn(ctx: RecallContext) -> Ranked:
    model = ctx.models.get("itemknn")
    if model is None or ctx.state is None:
        return [], np.zeros(0)
    return model.recommend_ranked(list(ctx.state.interactions.items()), ctx.n, exclude=ctx.blocked)


def explain_itemknn(ctx: ReasonContext, item_id: str, row: int) -> Reason:
    return Reason("itemknn", "chosen by the same people as what you chose")


@pytest.fixture
def itemknn() -> Iterator[None]:
    register_model(ItemKNN)
    register_recall(Recall("itemknn", find_itemknn, explain_itemknn))
    yield
    unregister_recall("itemknn")
    unregister_model("itemknn")


@pytest.fixture(scope="module")
def tiny_world() -> DemoWorld:
    return build_demo_world(seed=5, n_items=120, n_users=40)


def test_a_model_registered_from_outside_is_trained_saved_loaded_served_and_explained(
    itemknn: None, tiny_world: DemoWorld, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/plugin.db"
    with Engine.open(url, models={"itemknn": {"neighbors": 8}}) as engine:
        engine.ingest_items(tiny_world.items)
        engine.ingest_events(tiny_world.events)
        report = engine.train()
        assert "itemknn" in report.weights  # the scorer was tuned with the new recall's column
        trained = engine.snapshot
        assert trained is not None and isinstance(trained.models["itemknn"], ItemKNN)
        assert trained.manifest["models"]["itemknn"] == "ItemKNN"
        assert trained.manifest["params"]["models"]["itemknn"] == {"neighbors": 8}  # from the settings table
    assert (tmp_path / "plugin.db.models" / trained.version / "models" / "itemknn" / "sims.npy").exists()

    with Engine.open(url) as reopened:  # loaded through the registry
        loaded = reopened.snapshot
        assert loaded is not None and loaded.version == trained.version
        model = loaded.models["itemknn"]
        assert isinstance(model, ItemKNN) and model.neighbors == 8
        assert np.array_equal(model.sims_, trained.models["itemknn"].sims_)  # type: ignore[attr-defined]
        # A user with no rejections, so no push-down reorders what the recall proposed.
        user = next(u.user_id for u in tiny_world.users if reopened.state(u.user_id).neg_vec is None)
        state = reopened.state(user)
        expected = [i for i, _ in model.recommend(list(state.interactions.items()), 50,
                                                   exclude=state.seen | state.dismissed)]
        # Served alone, its list is its own candidates in its order (a product rule may still
        # reserve a slot for the session), each with a reason in its words.
        recs = reopened.recommend(user, k=5, diversity=0.0, scorer={"kind": "linear", "weights": {"itemknn": 1.0}})
        own = [r for r in recs if r.reasons[0].kind == "itemknn"]
        assert len(own) >= 2
        assert [r.item_id for r in own] == expected[: len(own)]
        assert all(r.reasons[0] == Reason("itemknn", "chosen by the same people as what you chose") for r in own)
        # Served with everything else, it contributes wherever training gave it weight.
        assert reopened.recommend(user, k=10)


def test_settings_naming_what_is_not_registered_are_refused() -> None:
    # (A snapshot naming a model that is not registered is refused too: tests/ranking/test_snapshot.py.)
    with pytest.raises(InvalidInputError, match="no model is registered as 'itemknn'"):
        Engine.open("memory://", models={"itemknn": {"neighbors": 8}})
    with pytest.raises(InvalidInputError, match="models.als has no parameter 'factor'"):
        Engine.open("memory://", models={"als": {"factor": 8}})
    with pytest.raises(InvalidInputError, match="recall 'itemknn' in weights is not one of"):
        Engine.open("memory://", scorer={"kind": "linear", "weights": {"itemknn": 1.0}})
    with pytest.raises(InvalidInputError, match="models_off: no model is registered as 'seq'"):
        Engine.open("memory://", models_off=["seq"])
    with pytest.raises(InvalidInputError, match="recalls_off: no recall is registered as 'cf'"):
        Engine.open("memory://", recalls_off=["cf"])
    with pytest.raises(InvalidInputError, match="recalls_off must be a list of names"):
        Engine.open("memory://", recalls_off="covisit")


def test_models_and_recalls_turned_off_are_neither_trained_nor_run(tiny_world: DemoWorld) -> None:
    with Engine.open("memory://", models_off=["sequential"], recalls_off=["covisit"],
                     scorer={"kind": "linear"}) as engine:
        engine.ingest_items(tiny_world.items)
        engine.ingest_events(tiny_world.events)
        report = engine.train()
        snapshot = engine.snapshot
        assert snapshot is not None and "sequential" not in snapshot.models and "als" in snapshot.models
        assert "sequential" not in report.models
        user = tiny_world.users[0].user_id
        features = engine.serving.ranker.features(engine.state(user), Filters())
        found = features.input.recalls
        assert not found["covisit"][0] and not found["sequential"][0] and found["content"][0]
        recs = engine.recommend(user, k=10)
        assert len(recs) == 10
        assert all(reason.kind not in ("covisit", "sequential") for r in recs for reason in r.reasons)
