"""The two backends on real servers: llama.cpp in process on a tiny GGUF, and the openai client
against llama-cpp-python's OpenAI-compatible server on the same model; a server that hangs, a
port nobody listens on, a file that is not a model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from liverec.core.errors import InvalidInputError
from liverec.generation import GenerationError, GenerationTimeout, Message, collect, open_generator
from liverec.generation.openai_api import api_root
from tests.generation.conftest import free_port

MESSAGES = [Message("system", "You write one short sentence."), Message("user", "<data>\n- interest: hiking\n</data>")]


def test_a_local_gguf_loads_and_streams_within_max_tokens(tiny_gguf: Path, llama_cpp: object) -> None:
    generator = open_generator(str(tiny_gguf), threads=1, context=4096)
    try:
        assert generator.name == "tiny-random.gguf"
        pieces = list(generator.stream(MESSAGES, max_tokens=12, temperature=0.0, timeout=30))
        assert pieces and all(isinstance(p, str) for p in pieces)
        assert len(pieces) <= 12
        # Greedy decoding on the same model and prompt: the same answer.
        again = collect(generator, MESSAGES, max_tokens=12, temperature=0.0, timeout=30)
        assert again == "".join(pieces)
    finally:
        generator.close()


def test_a_call_stops_at_its_deadline(tiny_gguf: Path, llama_cpp: object) -> None:
    generator = open_generator(str(tiny_gguf), threads=1, context=4096)
    try:
        started = time.monotonic()
        with pytest.raises(GenerationTimeout):  # greedy: the tiny model's ~18-token answer takes ~50 ms
            collect(generator, MESSAGES, max_tokens=400, temperature=0.0, timeout=0.005)
        assert time.monotonic() - started < 1.0
        # The stream was closed: the model is free for the next call at once.
        assert isinstance(collect(generator, MESSAGES, max_tokens=4, temperature=0.0, timeout=30), str)
    finally:
        generator.close()


def test_model_specs_that_cannot_work_are_refused_clearly(tmp_path: Path, llama_cpp: object) -> None:
    with pytest.raises(InvalidInputError, match="no model file"):
        open_generator(str(tmp_path / "missing.gguf"))
    with pytest.raises(InvalidInputError):
        open_generator("  ")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF this is not a model" * 10)
    with pytest.raises(GenerationError, match="could not load"):
        open_generator(str(junk))


def test_the_openai_client_talks_to_a_real_llama_cpp_server(llama_server: str) -> None:
    generator = open_generator(llama_server)  # a bare URL gets /v1; the model is the one it lists
    try:
        text = collect(generator, MESSAGES, max_tokens=8, temperature=0.0, timeout=30)
        assert isinstance(text, str)
        assert "tiny-random" in generator.name
    finally:
        generator.close()


def test_a_server_that_never_answers_times_out(hanging_server: str) -> None:
    pytest.importorskip("openai", reason="needs the llm extra")
    generator = open_generator(hanging_server, model="any")
    started = time.monotonic()
    with pytest.raises(GenerationTimeout):
        collect(generator, MESSAGES, max_tokens=8, temperature=0.0, timeout=0.3)
    assert time.monotonic() - started < 2.0
    generator.close()


def test_a_server_that_is_not_there_fails_fast() -> None:
    pytest.importorskip("openai", reason="needs the llm extra")
    generator = open_generator(f"http://127.0.0.1:{free_port()}/v1", model="any")
    started = time.monotonic()
    with pytest.raises(GenerationError, match="failed"):
        collect(generator, MESSAGES, max_tokens=8, temperature=0.0, timeout=5)
    assert time.monotonic() - started < 2.0


def test_api_root() -> None:
    assert api_root("http://h:8080") == "http://h:8080/v1"
    assert api_root("http://h:8080/") == "http://h:8080/v1"
    assert api_root("https://api.example/v1/") == "https://api.example/v1"
