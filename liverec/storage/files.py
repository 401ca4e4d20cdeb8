"""Files only their owner can read: the store, its side files (feedback log, keys) and the model
snapshots hold what users did, so they are created with mode 0600 and their directories 0700.

Modes are set with ``chmod`` after creation, so the process's umask cannot widen (or narrow) them.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> private_file(root / "a" / "b.db")
>>> oct((root / "a" / "b.db").stat().st_mode & 0o777), oct((root / "a").stat().st_mode & 0o777)
('0o600', '0o700')
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "private_dir", "private_file", "private_tree"]

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def _narrow(path: Path, mode: int) -> None:
    if path.stat().st_mode & 0o777 != mode:
        path.chmod(mode)


def private_dir(path: Path, *, narrow: bool = True) -> None:
    """Create the directory ``path`` and any missing parents with mode 0700.

    ``narrow`` also makes an existing ``path`` 0700; parents that existed are never changed (a
    store's directory may be one the operator shares on purpose). Raises :class:`OSError`.
    """
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # created meanwhile by another process or thread
            continue
        directory.chmod(PRIVATE_DIR)
    if narrow and not missing:
        _narrow(path, PRIVATE_DIR)


def private_file(path: Path) -> None:
    """Create ``path`` (and missing parent directories) with mode 0600, or make an existing file 0600.

    Raises :class:`OSError`.
    """
    private_dir(path.parent, narrow=False)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, PRIVATE_FILE))
    _narrow(path, PRIVATE_FILE)


def private_tree(root: Path) -> None:
    """Make ``root`` and every directory under it 0700, every file 0600 (after a library wrote them
    with its own modes). Raises :class:`OSError`."""
    _narrow(root, PRIVATE_DIR)
    for path in root.rglob("*"):
        if not path.is_symlink():
            _narrow(path, PRIVATE_DIR if path.is_dir() else PRIVATE_FILE)
