"""Store-wide locks: at most one process of a store does a thing at a time (training).

A store shared by machines offers its own (``PostgresStore.exclusive``, an advisory lock); any
other store's processes share a directory on one machine, where a file lock does:

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> with file_lock(root / "train.lock", "train"):
...     try:
...         with file_lock(root / "train.lock", "train"):
...             pass
...     except ConflictError as error:
...         print(error)
another process of this store holds the train lock (is a train running?)
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from liverec.core.errors import ConflictError, StorageError

__all__ = ["exclusive", "file_lock"]


@contextmanager
def file_lock(path: Path, name: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for the block; :class:`ConflictError` at once when
    another open of it (another process, or this one) holds it. Released when the process dies."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot open the {name} lock {path}: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError(f"another process of this store holds the {name} lock (is a {name} running?)") from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def exclusive(store: object, directory: Path, name: str) -> AbstractContextManager[None]:
    """The store's own lock ``name`` where it has one (one shared by machines), else a file lock
    in ``directory`` (the model directory every process of the store shares)."""
    own: Callable[[str], AbstractContextManager[None]] | None = getattr(store, "exclusive", None)
    return own(name) if own is not None else file_lock(directory / f"{name}.lock", name)
