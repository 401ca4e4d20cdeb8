"""One entry point to every data set reader: ``read_dataset(path, fmt)``.

>>> sorted(FORMATS)
['csv', 'mind', 'movielens', 'unisrec']
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from liverec.core.errors import InvalidInputError
from liverec.datasets.base import Dataset
from liverec.datasets.generic import read_generic
from liverec.datasets.mind import read_mind
from liverec.datasets.movielens import read_movielens
from liverec.datasets.unisrec import read_unisrec

Reader = Callable[..., Dataset]

# What each format reads, in the words an error message shows the caller.
FORMATS: dict[str, tuple[Reader, str]] = {
    "movielens": (read_movielens, "a MovieLens-100k or -1M folder"),
    "unisrec": (read_unisrec, "UniSRec/RecBole atomic files (NAME.*.inter, NAME.text, NAME.item2index)"),
    "mind": (read_mind, "a MIND folder (news.tsv, behaviors.tsv)"),
    "csv": (read_generic, "a folder with items and events files, CSV or JSONL"),
}


def read_dataset(path: str | Path, fmt: str, *, skip_bad: bool = False) -> Dataset:
    """Read the data set at ``path`` in format ``fmt`` (one of :data:`FORMATS`).

    Parameters
    ----------
    path
        The data set's directory (for ``unisrec`` also ``DIRECTORY/NAME``).
    fmt
        ``movielens``, ``unisrec``, ``mind`` or ``csv`` (liverec's own items + events files).
    skip_bad
        Skip malformed rows and list them in ``Dataset.skipped`` instead of raising
        :class:`~liverec.core.errors.InvalidInputError` naming file, line and problem.

    Raises
    ------
    InvalidInputError
        For an unknown format, a missing directory or file, or (without ``skip_bad``) a
        malformed row.
    """
    entry = FORMATS.get(fmt) if isinstance(fmt, str) else None
    if entry is None:
        choices = "; ".join(f"{name} ({what})" for name, (_, what) in FORMATS.items())
        raise InvalidInputError(f"data set format {fmt!r} is not one of: {choices}", field="fmt", value=fmt)
    reader, _ = entry
    return reader(Path(path), skip_bad=skip_bad)
