"""What every data set reader returns: items with their texts and time-ordered events.

A reader turns a research data set (MovieLens, UniSRec/RecBole atomic files, MIND, generic
CSV/JSONL) into the engine's own types, so the evaluation harness, the CLI and ``Engine``
ingest them unchanged. Where the data set ships its own split (UniSRec's train/valid/test
files), the reader keeps it in :class:`FixedSplit` so the harness can use exactly that split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from liverec.core.types import Event, Item


@dataclass(frozen=True)
class BadRow:
    """A malformed input row that was skipped (``skip_bad=True``) instead of stopping the read."""

    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


@dataclass(frozen=True)
class FixedSplit:
    """A leave-one-out split the data set ships: per user, the validation and test target item.

    The targets are each user's last two item events (validation, then test), so a
    chronological leave-one-out over ``Dataset.events`` reproduces it; the harness checks that.
    """

    valid: dict[str, str]  # user_id -> item_id
    test: dict[str, str]


@dataclass
class Dataset:
    """Items and time-ordered events of one data set, ready for ``Engine.ingest_*``.

    ``events`` are sorted by timestamp; events with equal timestamps keep the data set's
    order (a user's sequence order where the data set has no times). ``notes`` say what a
    reader of the results should know (synthetic timestamps, dropped rows, partial data).
    """

    name: str
    items: list[Item]
    events: list[Event]
    split: FixedSplit | None = None
    skipped: list[BadRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
