"""A local GGUF model run in this process by llama.cpp (``llama-cpp-python``).

The model file is loaded once; calls are serialised (a llama.cpp context is not thread-safe), and
each streams, so the caller's deadline stops generation within a token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from liverec.generation.base import GenerationError, Message

__all__ = ["LlamaCpp"]


class LlamaCpp:
    def __init__(self, path: Path, *, threads: int = 2, context: int = 2048, seed: int = 0) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # the optional extra
            raise GenerationError("a .gguf model needs llama-cpp-python: pip install 'liverec[llm]'") from exc
        try:
            self._llm: Any = Llama(model_path=str(path), n_ctx=context, n_threads=threads, seed=seed,
                                   verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise GenerationError(f"llama.cpp could not load {path}: {exc}") from exc
        self.name = path.name
        self.path = path
        self._lock = threading.Lock()

    def stream(self, messages: Sequence[Message], *, max_tokens: int, temperature: float,
               timeout: float) -> Iterator[str]:
        if not self._lock.acquire(timeout=timeout):
            raise GenerationError(f"{self.name} is busy with other calls")
        try:
            chunks = self._llm.create_chat_completion(
                messages=[m.to_dict() for m in messages], max_tokens=max_tokens, temperature=temperature,
                stream=True)
            for chunk in chunks:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece
        except (ValueError, RuntimeError) as exc:  # e.g. a prompt longer than the context
            raise GenerationError(f"{self.name} failed: {exc}") from exc
        finally:
            self._lock.release()

    def close(self) -> None:
        close = getattr(self._llm, "close", None)
        if close is not None:
            close()
