"""Hooks for tests that act at a chosen moment inside the engine (mid warm-up, mid index build)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def free_on_another_thread(lock: Any, timeout: float = 1.0) -> bool:
    """Whether another thread can take ``lock`` now (as a request or a commit would)."""
    got: list[bool] = []

    def other() -> None:
        got.append(lock.acquire(timeout=timeout))
        if got[0]:
            lock.release()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    return got[0]


def before_first_call(obj: Any, name: str, action: Callable[[], object]) -> None:
    """Run ``action`` once, just before the first call of ``obj.name`` (patched on the instance)."""
    method = getattr(obj, name)
    done = False

    def hooked(*args: Any, **kwargs: Any) -> Any:
        nonlocal done
        if not done:
            done = True
            action()
        return method(*args, **kwargs)

    setattr(obj, name, hooked)
