"""Waiting for a condition: poll it until it holds or a deadline passes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class PollTimeout(TimeoutError):
    """The condition did not hold before the deadline; `last` is the check's last answer."""

    def __init__(self, what: str, seconds: float, last: object) -> None:
        self.last = last
        super().__init__(f"timed out after {seconds}s waiting for {what}; last value: {last!r}")


async def poll_until(
    check: Callable[[], Awaitable[T | None]], *, within: float, interval: float, what: str = "condition"
) -> T:
    """The first truthy answer of `check`, asked every `interval` seconds; PollTimeout after `within` seconds."""
    deadline = time.monotonic() + within
    last: T | None = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise PollTimeout(what, within, last)
        await asyncio.sleep(interval)
