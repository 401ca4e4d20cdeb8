"""The Encoder contract: texts in, L2-normalised float32 vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np

TextKind = Literal["query", "passage"]


@runtime_checkable
class Encoder(Protocol):
    """A sentence encoder.

    ``name`` identifies the model (it keys the embedding cache); ``dim`` is the vector size.
    ``kind`` lets asymmetric models (e5) prefix queries and passages differently; symmetric
    models ignore it. ``encode([])`` returns an array of shape ``(0, dim)``.
    """

    name: str
    dim: int

    def encode(self, texts: Sequence[str], *, kind: TextKind = "passage") -> np.ndarray: ...
