"""One way to wait in tests: poll a condition against a deadline, never a count of tries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool] = bool,
    within: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Await `probe()` until `check(value)` holds; raise AssertionError with the last value."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {within}s; last value: {value!r}")
        await asyncio.sleep(interval)


def eventually_sync(
    probe: Callable[[], T],
    check: Callable[[T], bool] = bool,
    within: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """The same for synchronous probes (HTTP calls, database reads, subprocesses)."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if check(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {within}s; last value: {value!r}")
        time.sleep(interval)
