"""What a failed training job tells ``GET /admin/train`` (issue 12: no paths or internals)."""

from __future__ import annotations

import pytest

from liverec.core.errors import InvalidInputError, StorageError
from liverec.service.jobs import TrainingFailed, public_message


@pytest.mark.parametrize(("exc", "said", "hidden"), [
    (InvalidInputError("need at least 2 users with events to train"), "need at least 2 users", None),
    (StorageError("cannot write /srv/shop/shop.db.models/v0003/als: disk full"), "StorageError", "/srv/shop"),
    (OSError(28, "No space left on device", "/srv/shop/shop.db.models/v0003"), "OSError", "/srv/shop"),
    (InvalidInputError("cannot reach postgres://ann:hunter2@db/shop"), "postgres://ann:***@db/shop", "hunter2"),
    (TrainingFailed("training failed (MemoryError); the details are in the server log"), "MemoryError", None),
])
def test_a_failed_job_names_the_problem_but_no_path_or_secret(exc: Exception, said: str, hidden: str | None) -> None:
    message = public_message(exc)
    assert said in message
    if hidden is not None:
        assert hidden not in message
