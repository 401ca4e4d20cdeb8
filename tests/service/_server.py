"""``liverec serve`` in a subprocess, for tests of what lives in the real server (and the page)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from liverec.datasets.demo import DemoWorld
from tests._worlds import world_engine

STARTUP_TIMEOUT = 90.0


def trained_store(root: Path, world: DemoWorld) -> str:
    """The URL of a SQLite store under ``root`` holding ``world``, trained."""
    url = f"sqlite:///{root / 'store.db'}"
    world_engine(world, train=True, url=url).close()
    return url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``liverec serve`` in a subprocess with a TOML settings file; its output goes to ``log``."""

    def __init__(self, tmp: Path, store: str, *, scheme: str = "http", args: tuple[str, ...] = (),
                 **settings: Any) -> None:
        self.port = _free_port()
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        config = tmp / f"settings-{self.port}.toml"
        config.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in settings.items()))
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEREC_")}
        env["HF_HUB_OFFLINE"] = env["TRANSFORMERS_OFFLINE"] = "1"
        self.log = tmp / f"server-{self.port}.log"
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "liverec.cli", "serve", "--store", store, "--port", str(self.port),
             "--config", str(config), *args],
            stdout=self._out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )

    def wait_healthy(self, verify: Any = True) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2.0, verify=verify).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"server did not answer /healthz within {STARTUP_TIMEOUT} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table: engine = {state_store = "redis://…"}
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return repr(value)


