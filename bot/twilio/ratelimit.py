"""Rate limit: a send-rate cap in SMS segments per second per sender, shared by every worker via Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import redis

from bot.store import keys

WINDOW_SECONDS = 1.0  # Twilio counts throughput per second
# The time from a grant to Twilio's receipt of the request varies (thread wake-up, the GIL, HTTP).
# Grants keep to the cap over a window this much longer than a second, and are spaced evenly rather
# than sent in bursts, so no second at Twilio's end can hold more than the cap while the spread stays
# under JITTER_SECONDS. The price: at most cap / (1 + JITTER_SECONDS), 97% of the cap.
JITTER_SECONDS = 0.03
# A thread that wakes this much after its slot (a busy machine) gives the slot up and books another:
# sent late, it would crowd the messages granted after it into one second at Twilio's end.
LATE_SECONDS = 0.015
MAX_REBOOKINGS = 5  # then it goes anyway rather than starve

# One atomic step per message, as a reservation (no polling): the caller learns when its slot is and
# sleeps until then. Two rules decide the slot, both on Redis's clock so workers on several machines
# agree: grants are spaced by their segments at the smoothed rate, and an exact sliding-window log
# keeps the segments granted in any window at or under the cap. Grants are issued in time order, so a
# grant that has left the window at a slot never re-enters it and is dropped for good (amortised O(1)).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local spacing = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[2], 'sum', 'next', 'seq')
local sum = tonumber(state[1]) or 0
local at = math.max(now, tonumber(state[2]) or 0)
local seq = (tonumber(state[3]) or 0) + 1
local function drop_until(limit)
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', limit)
  for _, member in ipairs(old) do
    sum = sum - tonumber(string.match(member, ':(%d+)$'))
  end
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', limit) end
end
drop_until(at - window)
while sum + cost > cap do
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #first == 0 then break end
  at = math.max(at, tonumber(first[2]) + window)
  drop_until(at - window)
end
redis.call('ZADD', KEYS[1], at, seq .. ':' .. cost)
sum = sum + cost
local nxt = at + cost * spacing
redis.call('HSET', KEYS[2], 'sum', sum, 'next', nxt, 'seq', seq)
local ttl = math.ceil((nxt - now + window) / 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return {at - now, at}
"""


class RateLimitError(ValueError):
    """A rate limiter asked for something impossible (a non-positive cap or segment count)."""


class RateLimiter:
    """Segments per second per sender, shared through Redis; unlimited when no cap is configured."""

    def __init__(
        self,
        connection: redis.Redis,
        segments_per_second: float | None,
        *,
        jitter_seconds: float = JITTER_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        if segments_per_second is not None and segments_per_second <= 0:
            raise RateLimitError("segments_per_second must be positive (or None for no limit)")
        if not 0 <= jitter_seconds < WINDOW_SECONDS:
            raise RateLimitError("jitter_seconds must be in [0, 1)")
        self.connection = connection
        self.cap = segments_per_second
        self.jitter = jitter_seconds
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._turns: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._script = connection.register_script(_RESERVE)

    @property
    def limited(self) -> bool:
        """True when a cap is configured."""
        return self.cap is not None

    def reserve(self, sender: str, segments: int) -> float:
        """Book the next slot for a message of this many segments; return seconds until it."""
        return self.book(sender, segments)[0]

    def book(self, sender: str, segments: int) -> tuple[float, float]:
        """Book a slot: (seconds until it, the slot as epoch seconds on Redis's clock)."""
        if segments <= 0:
            raise RateLimitError("a message costs at least one segment")
        if self.cap is None:
            return 0.0, time.time()
        window_us = (WINDOW_SECONDS + self.jitter) * 1_000_000
        spacing_us = window_us / (self.cap * WINDOW_SECONDS)
        wait_us, slot_us = self._script(
            keys=[keys.RATE_LIMIT_LOG.format(sender=sender), keys.RATE_LIMIT_STATE.format(sender=sender)],
            args=[segments, self.cap * WINDOW_SECONDS, spacing_us, window_us],
        )
        return max(int(wait_us), 0) / 1_000_000, int(slot_us) / 1_000_000

    def _slot(self, sender: str, segments: int) -> float:
        """Book a slot; return it as epoch seconds on our clock."""
        asked = time.time()
        wait, slot = self.book(sender, segments)
        answered = time.time()
        # Redis ran the script between asking and answering. Its clock places the slot exactly when
        # ours agrees (one host, or NTP); otherwise keep the slot within what the round trip allows.
        return min(max(slot, asked + wait), answered + wait)

    def acquire(self, sender: str, segments: int) -> float:
        """Block until a message of this many segments may go to Twilio; return the seconds waited."""
        if self.cap is None:
            return 0.0
        started = time.monotonic()
        for _ in range(MAX_REBOOKINGS):
            slot = self._slot(sender, segments)
            delay = slot - time.time()
            if delay > 0:
                self._sleep(delay)
            if time.time() - slot <= LATE_SECONDS:
                break
        return time.monotonic() - started

    async def wait_turn(self, sender: str, segments: int) -> float:
        """acquire() for asyncio: await the slot instead of blocking the thread; return the seconds waited.

        The tasks of one loop take their turns one at a time, in order: each books its slot only when the
        one before has gone. Booked all at once, a burst of tasks would hold the loop with their Redis
        calls past the first slots, then wake late together and go in a clump."""
        if self.cap is None:
            return 0.0
        started = time.monotonic()
        async with self._turn_lock():
            for _ in range(MAX_REBOOKINGS):
                slot = self._slot(sender, segments)  # one short Redis call: not worth a hop to a thread
                delay = slot - time.time()
                if delay > 0:
                    await self._async_sleep(delay)
                if time.time() - slot <= LATE_SECONDS:
                    break
        return time.monotonic() - started

    def _turn_lock(self) -> asyncio.Lock:
        """The running loop's lock on turns (a limiter may serve one loop after another)."""
        loop = asyncio.get_running_loop()
        if self._turns is None or self._turns[0] is not loop:
            self._turns = (loop, asyncio.Lock())
        return self._turns[1]
