"""The README's shell and Python blocks, run in order in one temporary directory, as a newcomer
would paste them (issue 13): every command on the page must work as written.

Three blocks are not run here, and say why: the set-up commands (CI runs ``make test`` itself, and
``make demo`` serves until stopped), the peer comparison (it needs the research data and the
peers' own venvs; ``make evaluate`` runs it) and the language-model stage (it needs a model file or
server the reader has). Port 8000 is replaced by a free port, the only change
made to the text.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)
NOT_RUN = {
    "--llm": "needs a language model the reader has; tests/generation runs the same paths on a tiny GGUF",
    "make demo": "the set-up commands: CI runs `make test` itself, and `make demo` serves until stopped",
    "make peers": "needs the research data sets and the peers' venvs; `make evaluate` runs it",
}


def _blocks() -> list[tuple[str, str]]:
    return [(kind, text) for kind, text in BLOCK.findall(README.read_text())]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], int]:
    """The newcomer's directory (with ``.venv`` where the README expects it), environment and port."""
    root = tmp_path_factory.mktemp("newcomer")
    (root / ".venv").symlink_to(Path(sys.prefix))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEREC_")}
    env |= {"PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
            "COLUMNS": "160", "LIVEREC_PORT": str(port)}
    return root, env, port


def _wait_port_free(port: int, seconds: float = 30.0) -> None:
    """A block's ``kill %1`` returns before the server has let go of its port."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"port {port} still taken {seconds:g} s after the block ended")


@pytest.mark.parametrize(("kind", "text"), _blocks(), ids=[f"{kind}-{n}" for n, (kind, _) in enumerate(_blocks(), 1)])
def test_a_readme_block_runs_as_written(shell: tuple[Path, dict[str, str], int], kind: str, text: str) -> None:
    for marker, reason in NOT_RUN.items():
        if marker in text:
            pytest.skip(reason)
    root, env, port = shell
    text = text.replace("localhost:8000", f"localhost:{port}")
    command = ["bash", "-euo", "pipefail", "-c", text] if kind == "bash" else [sys.executable, "-c", text]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n" \
                                 f"{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr
    if "liverec serve" in text:
        _wait_port_free(port)
        assert '"items"' in done.stdout, done.stdout  # the recommendations answered
