"""A catalog import spreads keyword extraction over processes and gets exactly what one process
gets; small batches stay in the calling process."""

from __future__ import annotations

import importlib
import os

import pytest

from liverec.core.errors import InvalidInputError
from liverec.core.settings import Settings
from liverec.datasets.synthetic import ScaleSpec, SyntheticWorld
from liverec.text.enrich import PARALLEL_MIN, enrich, enrich_many

enrich_module = importlib.import_module("liverec.text.enrich")  # the package re-exports the function by that name


def _items(n: int) -> list:
    world = SyntheticWorld(ScaleSpec(items=n, events=1, seed=3))
    return [item for batch in world.item_batches(n) for item in batch]


def test_a_large_batch_enriched_by_worker_processes_equals_one_process() -> None:
    items = _items(PARALLEL_MIN + 200)  # English and Chinese texts
    assert {i.language for i in items} >= {"en", "zh"}
    parallel = enrich_many(items, workers=2)
    assert parallel == [enrich(i) for i in items]
    assert all(len(p.tags) > len(i.tags) for p, i in zip(parallel, items, strict=True))  # keywords were added


def test_a_small_batch_never_leaves_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    pid = os.getpid()
    seen: list[int] = []

    def recording(item):  # type: ignore[no-untyped-def]
        seen.append(os.getpid())
        return enrich(item)

    monkeypatch.setattr(enrich_module, "enrich", recording)
    items = _items(50)
    assert enrich_many(items, workers=4) == [enrich(i) for i in items]
    assert seen == [pid] * 50


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_enrich_workers_must_be_a_count(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="enrich_workers"):
        Settings(enrich_workers=bad)  # type: ignore[arg-type]
