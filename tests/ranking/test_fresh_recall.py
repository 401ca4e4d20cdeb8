"""The fresh recall (items the served snapshot was not trained on) ranks the same whether it scans
the cold items' vectors or, when they are too many to scan per request, keeps the cold ones among
the text index's neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from liverec.core.types import DEFAULT_EVENT_WEIGHTS
from liverec.models.base import TrainingData
from liverec.models.content import ContentModel
from liverec.ranking.recalls import RECALLS, ColdItems, RecallContext

IDS = ["a", "b", "c", "d", "e", "f", "g"]
KNOWN = frozenset({"a", "b", "c"})  # what the snapshot was trained on; d..g are cold
VECTORS = np.array(
    [[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0], [0.95, 0, 0.05], [0.6, 0.4, 0], [0, 0, 1], [-1, 0, 0]], dtype=np.float32
)


@pytest.fixture(scope="module")
def content() -> ContentModel:
    vectors = VECTORS / np.linalg.norm(VECTORS, axis=1, keepdims=True)
    return ContentModel().fit(TrainingData.from_events([], IDS, vectors, DEFAULT_EVENT_WEIGHTS))


INTEREST = np.array([1.0, 0.05, 0.0], dtype=np.float32) / np.float32(np.hypot(1.0, 0.05))


def _by_cosine(ids: list[str]) -> list[str]:
    """``ids`` with a positive cosine to the interest, best first: what the recall must return."""
    cosine = {i: float(VECTORS[IDS.index(i)] @ INTEREST / np.linalg.norm(VECTORS[IDS.index(i)])) for i in ids}
    return sorted((i for i in ids if cosine[i] > 0), key=lambda i: -cosine[i])


def _fresh(content: ContentModel, cold: ColdItems, blocked: frozenset[str] = frozenset()) -> list[str]:
    interest = INTEREST
    ctx = RecallContext(None, interest, None, blocked, 10, {}, content, lambda: cold, {})
    ids, scores = RECALLS["fresh"].find(ctx)
    assert np.all(np.diff(scores) <= 0) and np.all(scores > 0)
    return ids


def test_scanning_the_cold_items_and_filtering_the_neighbours_agree(content: ContentModel) -> None:
    cold_ids = [i for i in IDS if i not in KNOWN]
    scanned = _fresh(content, ColdItems(cold_ids, content.vectors_of(cold_ids), KNOWN))
    filtered = _fresh(content, ColdItems([], None, KNOWN))
    assert scanned == filtered == _by_cosine(cold_ids) == ["d", "e"]  # f is orthogonal, g opposite
    assert _fresh(content, ColdItems([], None, KNOWN), blocked=frozenset({"d"})) == ["e"]
    assert _fresh(content, ColdItems(cold_ids, content.vectors_of(cold_ids), KNOWN), blocked=frozenset({"d"})) == ["e"]


def test_with_no_snapshot_every_item_is_fresh_and_the_text_neighbours_are_the_list(content: ContentModel) -> None:
    assert _fresh(content, ColdItems([], None, frozenset())) == _by_cosine(IDS)
    assert _fresh(content, ColdItems([], np.zeros((0, 3), dtype=np.float32), KNOWN)) == []  # none new
