"""Polling with a deadline: e2e and integration tests wait for effects this way."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], *, timeout: float = 10.0,
                     interval: float = 0.05, what: str = "condition") -> T:
    """Call ``probe`` until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = await probe()
            if value:
                return value
        except AssertionError as exc:
            last_error = exc
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s" + (f": {last_error}" if last_error else ""))
