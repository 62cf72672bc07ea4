"""Scripts: the webhook's Lua scripts on each thread's own Redis connection, run and waited for, or sent and
confirmed later.

Each message is two round trips to Redis: one script reads (before answering), one writes (after). Waiting
for the write's reply before sending the answer cost a web process a sleep and a wake-up per message, so the
write is sent, the answer goes out, and the reply is read just before the thread's next script, when it has
long arrived (docs/bench-webhook.md: about a tenth less CPU per answer at 500 messages/s).

What that changes: Redis has the write before the answer leaves (it is sent first, and Redis runs a
connection's commands in order), so the family's next message finds it, whichever process takes it. A
write Redis refuses (a read-only replica, or a Redis that died in that instant) is logged and counted when
its reply is read, instead of failing an answer that is already out. A full Redis refuses the message's
first script already, so that message still fails before it is answered, as it always did.
"""

from __future__ import annotations

import logging
import re
import threading

import hiredis
import redis

from bot.observability import metrics
from bot.store.outage import REDIS_ERRORS  # a lost or slow connection: closed (these never retry)

log = logging.getLogger(__name__)
# Redis's error words worth a metric label of their own; any other refusal is counted as "error".
_KNOWN_REFUSALS = frozenset({"OOM", "READONLY", "MISCONF", "BUSY", "NOSCRIPT"})


def _error_word(error: redis.exceptions.ResponseError) -> str:
    """Redis's error code (WRONGTYPE, OOM...): first in 7.x, after "Error running script (...):" in 6.2. Only
    the code is logged: the rest may name keys."""
    found = re.search(r"\b[A-Z]{2,}\b", str(error))
    return found.group(0) if found else "ERR"


class ScriptRunner:
    """Runs registered scripts on this thread's connection; at most one write per thread awaits its reply."""

    def __init__(self, connection: redis.Redis, *sources: str):
        self.connection = connection
        self.scripts = [connection.register_script(source) for source in sources]
        self._local = threading.local()

    def client(self) -> redis.Redis:
        """This thread's own Redis connection, its scripts loaded: taking a connection from the pool checks
        its socket each time, which cost 30 µs per command."""
        own = getattr(self._local, "client", None)
        if own is None:
            own = redis.Redis(connection_pool=self.connection.connection_pool, single_connection_client=True)
            try:
                self._load(own)
            except BaseException:
                own.close()
                raise
            self._local.client, self._local.pending = own, None
        else:
            self.confirm()
        return own

    def run(self, script, keys: list, args: list):
        """Run a script and return its reply (a write sent earlier on this thread is confirmed first)."""
        client = self.client()
        try:
            with client.single_connection_lock:
                self._send(client, script, keys, args)
                return client.connection.read_response()
        except redis.exceptions.NoScriptError:  # Redis restarted or was flushed: load every script again
            self._load(client)
            return script(keys=keys, args=args, client=client)
        except REDIS_ERRORS:
            client.connection.disconnect()
            raise

    def send(self, script, keys: list, args: list) -> None:
        """Send a write script without waiting for its reply: this thread's next script (or `confirm`) reads it."""
        client = self.client()
        try:
            with client.single_connection_lock:
                self._send(client, script, keys, args)
        except REDIS_ERRORS:
            client.connection.disconnect()
            raise
        self._local.pending = (script, keys, args)

    def confirm(self) -> bool:
        """Read the reply of this thread's unconfirmed write, if any: False (logged and counted) when Redis
        refused it or could not be reached. A script Redis lost meanwhile is loaded and run again."""
        pending = getattr(self._local, "pending", None)
        if pending is None:
            return True
        self._local.pending = None
        client, (script, keys, args) = self._local.client, pending
        try:
            try:
                with client.single_connection_lock:
                    client.connection.read_response()
            except redis.exceptions.NoScriptError:
                self._load(client)
                script(keys=keys, args=args, client=client)
        except REDIS_ERRORS as error:
            client.connection.disconnect()
            return self._not_saved("unreachable", type(error).__name__)
        except redis.exceptions.ResponseError as error:
            word = _error_word(error)
            return self._not_saved(word if word in _KNOWN_REFUSALS else "error", word)
        return True

    def _send(self, client: redis.Redis, script, keys: list, args: list) -> None:
        # Packed by hiredis itself: redis-py's packer copies every argument first (2.5 µs of a 4.5 µs script).
        command = hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))
        client.connection.send_packed_command([command])

    def _load(self, client: redis.Redis) -> None:
        """Load every script: a write sent without waiting must not meet NOSCRIPT (its reply is read too late
        to run it again before the family's next message)."""
        for script in self.scripts:
            client.script_load(script.script)

    @staticmethod
    def _not_saved(reason: str, detail: str) -> bool:
        # The answer already went out; the family's next message is answered from what Redis has.
        log.error("an answer went out but its write was not saved (%s)", detail)
        metrics.answer_not_saved(reason)
        return False
