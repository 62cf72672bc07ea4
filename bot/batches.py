"""Batches: one run of one batch of a broadcast, sending with bounded concurrency under the rate limit."""

from __future__ import annotations

import gc
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import redis
import twilio.rest.api.v2010.account.message  # noqa: F401  loaded once per worker, not per forked work horse

from . import contacts, keys
from .broadcasts import SENDING, Broadcast, Undeliverable
from .identity import Address, InvalidToken, log_name
from .outcomes import CONTACT_GONE, FAILED, RECONCILED, SKIPPED, OutcomeStore, claim_value, claimed_at
from .ratelimit import RateLimiter
from .senders import RejectedSendError, RetryableSendError, SendError, UncertainSendError
from .twilio_client import POOL_MAXSIZE

log = logging.getLogger(__name__)

TICK_SECONDS = 0.2  # how often a running batch looks for a cancel and renews its lease
OPT_OUT = 21610  # Twilio: the recipient texted STOP
FATAL_CODES = frozenset({20003})  # bad credentials: stop the batch rather than fail every recipient
UNREADABLE = "number_unreadable"  # failure reason: the stored number does not decrypt

_MARK_OPTED_OUT = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'opted_out', '1') return 1 end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    """An expiring Redis lock with an owner token: only its holder renews or releases it."""

    def __init__(self, connection: redis.Redis, key: str, seconds: float):
        self.connection, self.key, self.ms = connection, key, int(seconds * 1000)
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"

    def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        return bool(self.connection.set(self.key, self.token, nx=True, px=self.ms))

    def renew(self) -> bool:
        """Extend the lease; False when it is no longer ours."""
        return bool(self.connection.eval(_RENEW, 1, self.key, self.token, self.ms))

    def release(self) -> None:
        """Give the lease up (only if still ours)."""
        self.connection.eval(_RELEASE, 1, self.key, self.token)


class BatchRun:
    """One run of one batch: a thread pool sending under the rate limit, watched by a monitor thread."""

    def __init__(self, aviso, broadcast: Broadcast, batch_no: int, policy, lease: Lease,
                 look_after_siblings: Callable[[], object] = lambda: None):
        self.aviso, self.broadcast, self.batch_no = aviso, broadcast, batch_no
        self.policy, self.lease, self.connection = policy, lease, aviso.connection
        self.store = OutcomeStore(aviso.connection)
        self.look_after_siblings = look_after_siblings
        self.sender = aviso.sender
        self.limiter = RateLimiter(aviso.connection, policy.segments_per_second)
        self.callback = f"{aviso.settings.public_base_url}/twilio/status?b={broadcast.id}"
        self.stop = threading.Event()  # cancelled, lease lost, or a fatal error
        self.over = threading.Event()
        self.fatal: SendError | None = None
        self.handled = 0
        self._count_lock = threading.Lock()

    def run(self) -> bool:
        """Send to every recipient of the batch; True unless stopped early."""
        raw = self.connection.get(keys.BROADCAST_BATCH.format(id=self.broadcast.id, n=self.batch_no))
        members = raw.decode().split(",") if raw else []
        self.sender.warm_up()  # else the first calls import the library while later slots come due
        # What exists now outlives the batch: keep the collector from walking it again and again (each
        # full pass stalls every sending thread, and touches the pages a forked work horse shares).
        gc.freeze()
        monitor = threading.Thread(target=self._monitor, name="batch-monitor", daemon=True)
        monitor.start()
        try:
            # More threads than pooled connections would open and drop a connection per call.
            threads = min(self.policy.concurrency, POOL_MAXSIZE)
            with ThreadPoolExecutor(threads, thread_name_prefix="send") as pool:
                futures = [pool.submit(self._deliver, contact) for contact in members]
                try:
                    for future in futures:
                        future.result()
                except Exception:
                    self.stop.set()  # unexpected (Redis down): stop; RQ or the watchdog re-runs the batch
                    raise
        finally:
            self.over.set()
            monitor.join()
            gc.unfreeze()  # a worker that runs jobs in its own process collects them again later
        return not self.stop.is_set()

    def _monitor(self) -> None:
        status_key = keys.BROADCAST.format(id=self.broadcast.id)
        renew_at = sweep_at = time.monotonic()
        while not self.over.wait(TICK_SECONDS):
            try:
                if self.connection.hget(status_key, "status") != SENDING.encode():
                    self.stop.set()
                now = time.monotonic()
                if now >= renew_at:
                    if not self.lease.renew():
                        log.error("broadcast %s batch %s lost its lease: stopping", self.broadcast.id, self.batch_no)
                        self.stop.set()
                    renew_at = now + self.policy.lease_seconds / 3
                if now >= sweep_at:  # re-queue sibling batches whose worker died
                    self.look_after_siblings()
                    sweep_at = now + self.policy.lease_seconds / 2
            except redis.RedisError:
                log.exception("broadcast %s batch %s monitor", self.broadcast.id, self.batch_no)

    def _deliver(self, contact: str) -> None:
        if self.stop.is_set():
            return
        with self._count_lock:
            self.handled += 1
        claim = self.store.claim(self.broadcast.id, contact, claim_value(self.lease.token, time.time()))
        if claim.state == "held" and claimed_at(claim.value) is not None:
            self._take_over(contact, claim.value)
        elif claim.state == "claimed":
            self._send(contact, claim.value, claim.language, claim.channel, claim.wa_seen)

    def _take_over(self, contact: str, stale: str) -> None:
        """A claim left by a run that died (this run holds the batch's lease): ask Twilio, then send."""
        lang, channel, wa_seen = self.connection.hmget(contacts.contact_redis_key(contact), "lang", "ch", "wa_seen")
        try:
            number = contacts.number_of(self.connection, self.aviso.keyring, contact)
        except InvalidToken:
            number = None
        if number is None:
            self.store.record(self.broadcast.id, contact, stale, f"{SKIPPED}:{CONTACT_GONE}")
            return
        language, channel = (lang or b"").decode(), (channel or b"sms").decode()
        wa = int(wa_seen) if wa_seen else None
        since = claimed_at(stale)
        try:
            delivery = self.broadcast.delivery_for(language, channel, wa, since)
            sid = self.sender.find_sent(Address(channel, number), datetime.fromtimestamp(since, UTC),
                                        delivery.body if delivery.content_sid is None else None)
        except Undeliverable:
            sid = None
        except SendError:
            self.stop.set()  # Twilio cannot tell us now: leave the claim for the next run
            return
        if sid:
            if self.store.record(self.broadcast.id, contact, stale, f"sent:{sid}", sid):
                self.store.count(self.broadcast.id, RECONCILED)
            return
        # Never sent: drop the stale claim and claim afresh, which re-checks opt-out and forgetting.
        if self.store.record(self.broadcast.id, contact, stale, ""):
            claim = self.store.claim(self.broadcast.id, contact, claim_value(self.lease.token, time.time()))
            if claim.state == "claimed":
                self._send(contact, claim.value, claim.language, claim.channel, claim.wa_seen)

    def _send(self, contact: str, claim: str, language: str, channel: str, wa_seen: int | None) -> None:
        """Send to one claimed recipient, retrying what Twilio asks to retry; record the outcome."""
        bid = self.broadcast.id
        try:
            delivery = self.broadcast.delivery_for(language, channel, wa_seen, time.time())
        except Undeliverable as exc:
            self.store.record(bid, contact, claim, f"{SKIPPED}:{exc.reason}")
            return
        try:
            number = contacts.number_of(self.connection, self.aviso.keyring, contact)
        except InvalidToken:  # stored under a key no longer configured: nobody can send to it
            self.store.record(bid, contact, claim, f"{FAILED}:{UNREADABLE}")
            return
        if number is None:
            self.store.record(bid, contact, claim, f"{SKIPPED}:{CONTACT_GONE}")
            return
        address = Address(channel, number)
        origin = self.sender.origin(address)
        last, uncertain = "unknown", False
        for attempt in range(self.policy.max_attempts):
            self.limiter.acquire(origin, delivery.segments)
            if self.stop.is_set():
                self._abandon(contact, claim, uncertain)
                return
            try:
                sent = self.sender.send(address, delivery.body, content_version=self.broadcast.content_version,
                                        status_callback=self.callback, content_sid=delivery.content_sid,
                                        content_variables=delivery.content_variables)
            except RejectedSendError as exc:
                self._rejected(contact, claim, exc)
                return
            except RetryableSendError as exc:
                last = str(exc.code or exc.status or "connection")
            except UncertainSendError:
                last, uncertain = "timeout", True
                try:
                    sid = self.sender.find_sent(address, datetime.fromtimestamp(claimed_at(claim), UTC),
                                                delivery.body if delivery.content_sid is None else None)
                except SendError:
                    sid = None  # unknown: the next attempt's outcome is checked the same way
                if sid:
                    self.store.record(bid, contact, claim, f"sent:{sid}", sid)
                    return
            else:
                self.store.record(bid, contact, claim, f"sent:{sent.sid}", sent.sid)
                return
            cap = min(self.policy.backoff_cap, self.policy.backoff_base * 2 ** attempt)
            if self.stop.wait(random.uniform(0, cap)):
                self._abandon(contact, claim, uncertain)
                return
        log.warning("broadcast %s: %s failed after %s attempts (%s)", bid, log_name(contact), attempt + 1, last)
        self.store.record(bid, contact, claim, f"{FAILED}:{last}")

    def _abandon(self, contact: str, claim: str, uncertain: bool) -> None:
        """Stop before sending: unclaim (it shows as pending), unless a call may have reached Twilio,
        in which case the claim stays for the next run to check with Twilio."""
        if not uncertain:
            self.store.record(self.broadcast.id, contact, claim, "")

    def _rejected(self, contact: str, claim: str, exc: RejectedSendError) -> None:
        if exc.code in FATAL_CODES or exc.status in (401, 403):
            self.fatal = exc
            self.stop.set()
            self.store.record(self.broadcast.id, contact, claim, "")
            return
        if exc.code == OPT_OUT:  # they texted STOP at the carrier: never send again
            self.connection.eval(_MARK_OPTED_OUT, 1, contacts.contact_redis_key(contact))
        self.store.record(self.broadcast.id, contact, claim, f"{FAILED}:{exc.code or exc.status}")
