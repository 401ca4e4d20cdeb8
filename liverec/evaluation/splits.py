"""Train/validation/test splits that never leak a test event into training.

Only item events (everything but ``search``) are targets; searches stay in the history they
belong to. Every split keeps the global time order of the events it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from liverec.core.errors import InvalidInputError
from liverec.core.types import Event, EventType
from liverec.datasets.base import FixedSplit

MIN_EVENTS = 3  # a user needs one training item besides the two held-out targets


@dataclass
class LeaveOneOut:
    """Chronological leave-one-out: per user, the last item event is the test target and the one
    before it the validation target; everything before the validation target is training.

    ``train`` holds every event of users too short to split as well. A model is fitted on
    ``train``; a validation user's history is their training events, a test user's history
    is those plus their validation event (RecBole and UniSRec evaluate the same way).
    """

    train: list[Event]
    valid: dict[str, Event]  # user_id -> validation target
    test: dict[str, Event]  # user_id -> test target

    def history(self, user_id: str, stage: str) -> list[Event]:
        """The user's events the system may see before predicting at ``stage`` (valid|test)."""
        own = [e for e in self.train if e.user_id == user_id]
        if stage == "test" and user_id in self.valid:
            own.append(self.valid[user_id])
        return own


def _is_item_event(e: Event) -> bool:
    return e.item_id is not None and e.type is not EventType.SEARCH


def leave_one_out(events: Sequence[Event], fixed: FixedSplit | None = None) -> LeaveOneOut:
    """Split time-ordered ``events``; with ``fixed`` (a data set's own split), check it is the same.

    Raises :class:`InvalidInputError` when a fixed split's target is not the user's last
    (test) or second-to-last (validation) item event: then the events were read wrongly.
    """
    last_two: dict[str, list[int]] = {}
    counts: dict[str, int] = {}
    for n, e in enumerate(events):
        if _is_item_event(e):
            counts[e.user_id] = counts.get(e.user_id, 0) + 1
            tail = last_two.setdefault(e.user_id, [])
            tail.append(n)
            if len(tail) > 2:
                tail.pop(0)
    held: dict[int, str] = {}
    valid: dict[str, Event] = {}
    test: dict[str, Event] = {}
    for user, tail in last_two.items():
        if counts[user] < MIN_EVENTS:
            continue
        v, t = events[tail[0]], events[tail[1]]
        valid[user], test[user] = v, t
        held[tail[0]] = "valid"
        held[tail[1]] = "test"
    if fixed is not None:
        _check_fixed(fixed, valid, test)
    cut = {user: tail[0] for user, tail in last_two.items() if user in valid}
    # Events after a user's validation target (searches, say) would leak what came next: drop them.
    train = [e for n, e in enumerate(events) if n not in held and (e.user_id not in cut or n < cut[e.user_id])]
    return LeaveOneOut(train=train, valid=valid, test=test)


def _check_fixed(fixed: FixedSplit, valid: dict[str, Event], test: dict[str, Event]) -> None:
    for name, given, derived in (("test", fixed.test, test), ("validation", fixed.valid, valid)):
        if set(given) != set(derived):
            missing = sorted(set(given) ^ set(derived))[:3]
            raise InvalidInputError(
                f"the data set's {name} users differ from the leave-one-out users (e.g. {missing})",
                field="split", value=missing,
            )
        for user, item in given.items():
            if derived[user].item_id != item:
                raise InvalidInputError(
                    f"user {user!r}: the data set's {name} target is {item!r}, but their events end with "
                    f"{derived[user].item_id!r}", field="split", value=user,
                )
