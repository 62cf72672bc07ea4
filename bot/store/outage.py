"""Outage: noticing that Redis cannot be reached, saying so in the log once per interval, and not
making every family's message wait for it again while it stays down."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)
# What an unreachable, refusing or frozen Redis raises (a unix socket that is gone raises OSError).
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)
# The webhook's own Redis connections give up this soon, so a frozen Redis still leaves time to answer
# within Twilio's patience and a family's (Aviso answers in well under a second from memory).
CONNECT_TIMEOUT_SECONDS = 0.25
READ_TIMEOUT_SECONDS = 0.5
# After a failure, messages are answered from memory without trying Redis for this long; then one tries.
RETRY_AFTER_SECONDS = 1.0
LOG_EVERY_SECONDS = 60.0


class Outage:
    """Redis's reachability as this process last saw it (thread-safe; the clock is passed in for tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._last_failure = 0.0
        self._last_logged: float | None = None
        self._answered_from_memory = 0

    @property
    def down(self) -> bool:
        """True from a failure until Redis answers again."""
        return self._down_since is not None

    def worth_trying(self) -> bool:
        """False right after a failure: answer from memory now, try Redis again a moment later."""
        with self._lock:
            return self._down_since is None or self.clock() - self._last_failure >= RETRY_AFTER_SECONDS

    def failed(self, error: BaseException) -> None:
        """Redis did not answer: note it, and log it once per LOG_EVERY_SECONDS."""
        with self._lock:
            now = self.clock()
            self._last_failure = now
            if self._down_since is None:
                self._down_since = now
            if self._last_logged is not None and now - self._last_logged < LOG_EVERY_SECONDS:
                return
            self._last_logged = now
            down_for, answered = now - self._down_since, self._answered_from_memory
        log.error("redis unreachable for %.0f s (%s): answering families from memory; %d so far",
                  down_for, type(error).__name__, answered)

    def answered_from_memory(self) -> None:
        """Count one message answered without Redis (for the log)."""
        with self._lock:
            self._answered_from_memory += 1

    def recovered(self) -> None:
        """Redis answered again: say so once, with how long it was gone."""
        if self._down_since is None:  # the usual case, read without the lock: a stale read only delays the line
            return
        with self._lock:
            if self._down_since is None:
                return
            down_for, answered = self.clock() - self._down_since, self._answered_from_memory
            self._down_since, self._last_logged, self._answered_from_memory = None, None, 0
        log.warning("redis reachable again after %.0f s; %d messages were answered from memory", down_for, answered)
