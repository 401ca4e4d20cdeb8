"""Turning engine results into response bodies (shared by every route that lists items)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from liverec.core.types import Recommendation
from liverec.engine import Engine


def items_out(engine: Engine, recs: Sequence[Recommendation]) -> list[dict[str, Any]]:
    """The response shape of an item: id, title, score and reasons (an item deleted meanwhile is left out)."""
    out = []
    for rec in recs:
        item = engine.items.find(rec.item_id)
        if item is None:
            continue
        out.append({"item_id": rec.item_id, "title": item.title, "score": rec.score,
                    "reasons": [r.to_dict() for r in rec.reasons]})
    return out
