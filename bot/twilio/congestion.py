"""Congestion: how many Twilio calls a batch keeps in flight when Twilio says the account has too many open.

Twilio answers 429 (error 20429) when an account has more REST API requests open at once than it allows,
and asks clients to retry later with fewer requests at once. The limit is per account and not published,
and every worker's batches share it, so each batch finds its share as TCP does: it cuts its calls in
flight when told "too many", and adds one back per round of answers that were not (AIMD). Batches that
share the account converge on a fair share of it without talking to each other.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

MIN_CALLS = 1  # a batch always keeps at least one call going, so it finishes
# What a cut keeps (CUBIC's choice; TCP Reno keeps half). scripts/bench_broadcast.py part e, an account
# allowing 100 open requests and 3 workers allowed 128 each: keeping half sent 498 messages/s with 5.5%
# of calls refused, keeping 70% sent 545/s with 7.1% refused (the limit allows 667/s at 150 ms a call).
KEPT_ON_CUT = 0.7


class CallWindow:
    """The Twilio calls one batch allows itself in flight: at most `ceiling`, cut to KEPT_ON_CUT when Twilio
    answers 429 to a call made since the last cut, grown by one per window's worth of other answers."""

    def __init__(self, ceiling: int, *, clock: Callable[[], float] = time.monotonic):
        self.ceiling = max(MIN_CALLS, ceiling)
        self.size = float(self.ceiling)
        self.open = 0
        self.cuts = 0
        self._cut_at = float("-inf")
        self._clock = clock
        self._waiting: deque[asyncio.Future] = deque()

    @property
    def allowed(self) -> int:
        """Calls that may be in flight now."""
        return int(self.size)

    async def enter(self) -> float:
        """Wait until one more call may go; return when it went (for leave())."""
        while self.open >= self.allowed:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # it was woken for room it will not use: pass the room on
                raise
        self.open += 1
        return self._clock()

    def leave(self, entered: float, too_many: bool, answered: bool = True) -> bool:
        """A call made at `entered` is over: answered 429 (too_many), answered otherwise, or not answered
        (a timeout, a 5xx, no connection, a stop), which neither cuts nor grows; True when it cut."""
        self.open -= 1
        cut = False
        if too_many:
            # One cut per round: the calls already in flight at a cut were counted in it, and their 429s
            # say nothing about the smaller window.
            if entered >= self._cut_at:
                self.size = max(float(MIN_CALLS), self.size * KEPT_ON_CUT)
                self._cut_at = self._clock()
                self.cuts += 1
                cut = True
        elif answered and self.size < self.ceiling:
            self.size = min(float(self.ceiling), self.size + 1 / self.size)
        self._wake()
        return cut

    def _wake(self) -> None:
        room = self.allowed - self.open
        while room > 0 and self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1
