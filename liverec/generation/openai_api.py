"""Any server speaking the OpenAI chat-completions API, through the ``openai`` client: llama.cpp's
``llama-server`` (or ``python -m llama_cpp.server``), vLLM, Ollama, or a hosted API.

``base_url`` is the API root (``http://host:8080/v1``; a URL without a path gets ``/v1``). Without
a ``model`` the server's first listed model is used (a llama.cpp server serves one). The client
never retries on its own: the caller's guards decide, and a retry would blow the latency budget.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from liverec.generation.base import GenerationError, GenerationTimeout, Message

__all__ = ["OpenAICompatible"]

CONNECT_TIMEOUT = 2.0


def api_root(url: str) -> str:
    parts = urlsplit(url)
    return url.rstrip("/") + "/v1" if parts.path in ("", "/") else url.rstrip("/")


class OpenAICompatible:
    def __init__(self, base_url: str, *, model: str | None = None, api_key: str | None = None) -> None:
        try:
            import openai
        except ImportError as exc:  # the optional extra
            raise GenerationError("an OpenAI-compatible server needs the openai client: "
                                  "pip install 'liverec[llm]'") from exc
        self._errors: tuple[type[Exception], ...] = (openai.OpenAIError,)  # the client wraps its transport's errors
        self._timeouts: tuple[type[Exception], ...] = (openai.APITimeoutError,)
        self.base_url = api_root(base_url)
        # Local servers take any key; the client insists on one.
        self._client: Any = openai.OpenAI(base_url=self.base_url, api_key=api_key or "none", max_retries=0,
                                          timeout=openai.Timeout(30.0, connect=CONNECT_TIMEOUT))
        self._model = model
        self.name = model or self.base_url

    def model(self) -> str:
        if self._model is None:
            try:
                listed = self._client.models.list(timeout=CONNECT_TIMEOUT * 2)
                self._model = next(iter(listed)).id
            except (*self._errors, StopIteration) as exc:  # type: ignore[misc]
                raise GenerationError(f"{self.base_url} lists no model to use: {exc}") from exc
            self.name = f"{self._model} at {self.base_url}"
        return self._model

    def stream(self, messages: Sequence[Message], *, max_tokens: int, temperature: float,
               timeout: float) -> Iterator[str]:
        try:
            stream = self._client.chat.completions.create(
                model=self.model(), messages=[m.to_dict() for m in messages], max_tokens=max_tokens,
                temperature=temperature, stream=True, timeout=timeout)
            try:
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
            finally:
                stream.close()
        except self._timeouts as exc:
            raise GenerationTimeout(f"{self.base_url} took longer than {timeout:g} s") from exc
        except self._errors as exc:
            raise GenerationError(f"{self.base_url} failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()
