"""liverec.datasets: readers that turn research data sets into items and time-ordered events.

``read_dataset(path, fmt)`` reads MovieLens, UniSRec/RecBole atomic files, MIND or liverec's own
CSV/JSONL files into a :class:`Dataset`; the built-in demo world lives in ``liverec.datasets.demo``.
"""

from liverec.datasets.base import BadRow, Dataset, FixedSplit
from liverec.datasets.readers import FORMATS, read_dataset

__all__ = ["FORMATS", "BadRow", "Dataset", "FixedSplit", "read_dataset"]
