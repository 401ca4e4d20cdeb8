"""The ``Generator`` seam: a language model that writes a short text for a prompt.

Two backends, both optional extras imported lazily (``pip install 'liverec[llm]'``):

* ``llama`` — a local GGUF file run in this process by llama.cpp (``llama-cpp-python``);
* ``openai`` — any server speaking the OpenAI chat-completions API (llama.cpp's ``llama-server``
  or ``python -m llama_cpp.server``, vLLM, Ollama, a hosted API), through the ``openai`` client.

:func:`open_generator` picks one from a spec: a path to a ``.gguf`` file, or an ``http(s)://`` base
URL. Neither ever downloads weights: a path must exist, a URL names a server someone runs.
Backends stream, so a call that runs past its deadline stops generating instead of holding a
thread (the guards in :mod:`liverec.generation.guard` decide what happens then).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from liverec.core.errors import InvalidInputError, LiveRecError

__all__ = ["GenerationError", "GenerationTimeout", "Generator", "Message", "collect", "open_generator"]


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class GenerationError(LiveRecError):
    """The backend failed: unreachable, refused the request, or returned nothing usable."""


class GenerationTimeout(GenerationError):
    """The call ran past its deadline (what was generated until then is discarded)."""


@runtime_checkable
class Generator(Protocol):
    """``name`` says which model answers (shown beside generated texts); ``stream`` yields the
    answer's text in pieces for ``messages``, at most ``max_tokens`` tokens."""

    name: str

    def stream(self, messages: Sequence[Message], *, max_tokens: int, temperature: float,
               timeout: float) -> Iterator[str]: ...

    def close(self) -> None: ...


def collect(generator: Generator, messages: Sequence[Message], *, max_tokens: int, temperature: float,
            timeout: float) -> str:
    """The whole answer, or :class:`GenerationTimeout` once ``timeout`` seconds have passed (checked
    between pieces, so a backend stops within one token of it)."""
    deadline = time.monotonic() + timeout
    parts: list[str] = []
    pieces = generator.stream(messages, max_tokens=max_tokens, temperature=temperature, timeout=timeout)
    try:
        for piece in pieces:
            parts.append(piece)
            if time.monotonic() > deadline:
                raise GenerationTimeout(f"{generator.name} took longer than {timeout:g} s")
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()  # stops the backend's generation (a generator's finally, an HTTP stream's socket)
    if time.monotonic() > deadline:  # a late answer is late however it ended
        raise GenerationTimeout(f"{generator.name} took longer than {timeout:g} s")
    return "".join(parts)


def open_generator(spec: str, *, model: str | None = None, api_key: str | None = None, threads: int = 2,
                   context: int = 2048, seed: int = 0) -> Generator:
    """A generator for ``spec``: a ``.gguf`` path (llama.cpp in this process) or an ``http(s)://``
    base URL of an OpenAI-compatible server (``model`` names the model there)."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInputError("the language model must be a .gguf path or an http(s):// URL", field="llm",
                                value=spec)
    spec = spec.strip()
    if spec.startswith(("http://", "https://")):
        from liverec.generation.openai_api import OpenAICompatible

        return OpenAICompatible(spec, model=model, api_key=api_key)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise InvalidInputError(f"no model file at {spec!r}: give a local .gguf path (weights are never "
                                "downloaded) or an http(s):// URL of an OpenAI-compatible server", field="llm",
                                value=spec)
    from liverec.generation.llama import LlamaCpp

    return LlamaCpp(path, threads=threads, context=context, seed=seed)

