"""Real language-model backends for the generation tests: a tiny random-weight GGUF built here, run
by llama.cpp in process and by llama-cpp-python's OpenAI-compatible server in a subprocess; a
server that accepts connections and never answers (a hung backend); a small trained engine."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from liverec.datasets.demo import REFERENCE_TIME, build_demo_world
from liverec.engine import Engine
from tests._worlds import world_engine

NEEDS = "needs the llm extra (pip install 'liverec[llm]'; llama-cpp-python builds from source, see docs/generation.md)"


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gguf", reason="needs the gguf package (the dev extra) to build the test model")
    from tests.generation.tiny_model import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("llm") / "tiny-random.gguf")


@pytest.fixture(scope="session")
def llama_cpp() -> object:
    return pytest.importorskip("llama_cpp", reason=NEEDS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(tiny_gguf: Path, llama_cpp: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` serving the tiny model: the OpenAI API, for real."""
    pytest.importorskip("llama_cpp.server.app", reason=NEEDS + " with its [server] extra")
    port = free_port()
    log = (tmp_path_factory.mktemp("llm-server") / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(tiny_gguf), "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1",
                             "--model_alias", "tiny-random"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not start (see {log.name})")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def hanging_server() -> Iterator[str]:
    """A TCP server that accepts connections, reads what is sent, and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture(scope="session")
def small_engine() -> Iterator[Engine]:
    """A trained engine on a small bilingual demo world (real encoder)."""
    engine = world_engine(build_demo_world(seed=3, n_items=120, n_users=12, now=REFERENCE_TIME), train=True)
    yield engine
    engine.close()
