"""Batches: one run of one batch of a broadcast, sending with bounded concurrency under the rate limit."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import redis
import twilio.rest.api.v2010.account.message  # noqa: F401  loaded once per worker, not per forked work horse

from bot import validity
from bot.broadcasts.errors import Undeliverable
from bot.broadcasts.outcomes import (
    CONTACT_GONE,
    FAILED,
    RECONCILED,
    SKIPPED,
    Claim,
    OutcomeStore,
    claim_value,
    claimed_at,
)
from bot.broadcasts.plan import Delivery
from bot.broadcasts.store import SENDING, Broadcast
from bot.observability import metrics
from bot.people import audience_counts, contacts
from bot.people.identity import WHATSAPP, Address, InvalidToken, log_name
from bot.store import keys
from bot.twilio import client as twilio_client  # noqa: F401  (twilio_client: aiohttp too, loaded once per worker)
from bot.twilio.congestion import CallWindow
from bot.twilio.ratelimit import RateLimiter
from bot.twilio.senders import RejectedSendError, RetryableSendError, SendError, UncertainSendError

log = logging.getLogger(__name__)

SETTLE_POLL_SECONDS = 1.0  # how often an uncertain call's message is looked for in Twilio's list
STOPPED = object()  # _find_after_uncertain: the run stopped before Twilio's list could be trusted
TICK_SECONDS = 0.2  # how often a running batch looks for a cancel and renews its lease
OPT_OUT = 21610  # Twilio: the recipient texted STOP
TOO_MANY_REQUESTS = 20429  # Twilio: the account has too many API requests open (HTTP 429)
FATAL_CODES = frozenset({20003})  # bad credentials: stop the batch rather than fail every recipient
UNREADABLE = "number_unreadable"  # failure reason: the stored number does not decrypt
CLAIM_CHUNK = 32  # recipients claimed per Redis call (all claimed ones are sent, or unclaimed when stopping)
RECORD_CHUNK = 64  # outcomes written per Redis call at most
RECORD_SECONDS = 0.02  # an outcome waits at most this long to be written (a crash leaves it a claim: reconciled)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def too_many(exc: RetryableSendError) -> bool:
    """Whether Twilio refused the call for too many requests open at once (429), not for an error."""
    return exc.status == 429 or exc.code == TOO_MANY_REQUESTS


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


class Outcomes:
    """A batch run's outcomes, written to Redis in bulk (compare-and-set against each claim, as record())."""

    def __init__(self, store: OutcomeStore, broadcast_id: str):
        self.store, self.broadcast_id = store, broadcast_id
        self.pending: list[tuple[str, str, str, str]] = []

    def add(self, contact: str, claim: str, outcome: str, sid: str = "") -> None:
        """Record an outcome (written within RECORD_SECONDS, or now when RECORD_CHUNK are waiting)."""
        self.pending.append((contact, claim, outcome, sid))
        metrics.broadcast_outcome(outcome)
        if len(self.pending) >= RECORD_CHUNK:
            self.flush()

    def flush(self) -> None:
        """Write what is waiting."""
        if self.pending:
            pending, self.pending = self.pending, []
            self.store.record_many(self.broadcast_id, pending)


class BatchRun:
    """One run of one batch: an asyncio loop with up to `concurrency` Twilio calls in flight under the rate
    limit; recipients claimed in bulk before their calls, outcomes written in bulk after; a monitor task
    watches for a cancel, renews the lease and looks after sibling batches."""

    def __init__(self, aviso, broadcast: Broadcast, batch_no: int, policy, lease: Lease,
                 look_after_siblings: Callable[[], object] = lambda: None):
        self.aviso, self.broadcast, self.batch_no = aviso, broadcast, batch_no
        self.policy, self.lease, self.connection = policy, lease, aviso.connection
        self.store = OutcomeStore(aviso.connection)
        self.outcomes = Outcomes(self.store, broadcast.id)
        self.look_after_siblings = look_after_siblings
        self.sender = aviso.sender
        self.session = None  # the sender's asyncio session, while running
        self.window = CallWindow(policy.concurrency)  # calls in flight, fewer while Twilio says too many
        self.keyring = aviso.keyring
        self.limiter = RateLimiter(aviso.connection, policy.segments_per_second)
        self.callback = f"{aviso.settings.public_base_url}/twilio/status?b={broadcast.id}"
        self.validity = validity.seconds_for(broadcast.kind, broadcast.urgent, dict(aviso.settings.validity_periods))
        self.stop = asyncio.Event()  # cancelled, lease lost, or a fatal error (set and read in the loop only)
        self.fatal: SendError | None = None
        self.handled = 0
        self._deliveries: dict[tuple[str, str], Delivery | str] = {}  # SMS: a delivery or a skip reason

    def run(self) -> bool:
        """Send to every recipient of the batch; True unless stopped early."""
        raw = self.connection.get(keys.BROADCAST_BATCH.format(id=self.broadcast.id, n=self.batch_no))
        members = raw.decode().split(",") if raw else []
        # What exists now outlives the batch: keep the collector from walking it again and again (each
        # full pass stalls the loop, and touches the pages a forked work horse shares).
        gc.freeze()
        try:
            asyncio.run(self._run(members))
        finally:
            gc.unfreeze()  # a worker that runs jobs in its own process collects them again later
        return not self.stop.is_set()

    async def _run(self, members: list[str]) -> None:
        waiting, ready = deque(members), deque()
        async with self.sender.session(self.policy.concurrency) as session:
            self.session = session
            chores = [asyncio.create_task(self._monitor()), asyncio.create_task(self._write_outcomes())]
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(self.policy.concurrency, len(members))):
                        group.create_task(self._sending(waiting, ready))
            except BaseException:
                self.stop.set()  # unexpected (Redis down): stop; RQ or the watchdog re-runs the batch
                raise
            finally:
                for chore in chores:
                    chore.cancel()
                await asyncio.gather(*chores, return_exceptions=True)
                self.session = None
                try:
                    for contact, claim in ready:  # claimed, never started (stopped): back to pending
                        if claim.state == "claimed":
                            self.outcomes.add(contact, claim.value, "")
                    self.outcomes.flush()
                except redis.RedisError:
                    log.exception("broadcast %s batch %s: outcomes not written (their claims are reconciled "
                                  "by the next run)", self.broadcast.id, self.batch_no)

    async def _sending(self, waiting: deque, ready: deque) -> None:
        """One of `concurrency` senders: take the next claimed recipient (claiming more when none is)."""
        while not self.stop.is_set():
            if not ready:
                if not waiting:
                    return
                self._claim(waiting, ready)
                continue
            contact, claim = ready.popleft()
            if claim.state == "held":
                await self._take_over(contact, claim.value)
            else:
                await self._send(contact, claim)

    def _claim(self, waiting: deque, ready: deque) -> None:
        """Claim the next recipients in one call; queue those to send and claims left by a dead run."""
        chunk = [waiting.popleft() for _ in range(min(CLAIM_CHUNK, self.policy.concurrency, len(waiting)))]
        self.handled += len(chunk)
        value = claim_value(self.lease.token, time.time())
        for contact, claim in zip(chunk, self.store.claim_many(self.broadcast.id, chunk, value), strict=True):
            if claim.state == "claimed" or (claim.state == "held" and claimed_at(claim.value) is not None):
                ready.append((contact, claim))

    async def _monitor(self) -> None:
        status_key = keys.BROADCAST.format(id=self.broadcast.id)
        renew_at = sweep_at = time.monotonic()
        while True:
            await asyncio.sleep(TICK_SECONDS)
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

    async def _write_outcomes(self) -> None:
        while True:
            await asyncio.sleep(RECORD_SECONDS)
            try:
                self.outcomes.flush()
            except redis.RedisError:  # the claims stay; the next run reconciles them with Twilio
                log.exception("broadcast %s batch %s: writing outcomes", self.broadcast.id, self.batch_no)

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait up to `seconds`; True if the run was stopped meanwhile."""
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _delivery(self, language: str, channel: str, wa_seen: int | None, now: float) -> Delivery:
        """broadcast.delivery_for, kept per language for SMS (its segment count is worth computing once)."""
        if channel == WHATSAPP:
            return self.broadcast.delivery_for(language, channel, wa_seen, now)
        found = self._deliveries.get((language, channel))
        if found is None:
            try:
                found = self.broadcast.delivery_for(language, channel, wa_seen, now)
            except Undeliverable as exc:
                found = exc.reason
            self._deliveries[(language, channel)] = found
        if isinstance(found, str):
            raise Undeliverable(found)  # a new one each time: a raised exception keeps its traceback
        return found

    async def _take_over(self, contact: str, stale: str) -> None:
        """A claim left by a run that died (this run holds the batch's lease): ask Twilio, then send."""
        lang, channel, wa_seen = self.connection.hmget(contacts.contact_redis_key(contact), "lang", "ch", "wa_seen")
        try:
            number = contacts.number_of(self.connection, self.keyring, contact)
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
            sid = await self.session.find_sent(Address(channel, number), datetime.fromtimestamp(since, UTC),
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
                await self._send(contact, claim)

    async def _send(self, contact: str, claim: Claim) -> None:
        """Send to one claimed recipient, retrying what Twilio asks to retry; record the outcome."""
        record, value = self.outcomes.add, claim.value
        try:
            delivery = self._delivery(claim.language, claim.channel, claim.wa_seen, time.time())
        except Undeliverable as exc:
            record(contact, value, f"{SKIPPED}:{exc.reason}")
            return
        if not claim.number_token:
            record(contact, value, f"{SKIPPED}:{CONTACT_GONE}")
            return
        try:
            number = self.keyring.decrypt(claim.number_token)
        except InvalidToken:  # stored under a key no longer configured: nobody can send to it
            record(contact, value, f"{FAILED}:{UNREADABLE}")
            return
        address = Address(claim.channel, number)
        last, uncertain = "unknown", False
        failures = throttled = 0
        while failures < self.policy.max_attempts and throttled < self.policy.max_throttled:
            try:
                sent = await self._call(address, delivery)
            except RejectedSendError as exc:
                self._rejected(contact, value, exc)
                return
            except RetryableSendError as exc:
                last = str(exc.code or exc.status or "connection")
                if too_many(exc):
                    throttled += 1  # never processed (Twilio's word): retried without using up an attempt
                else:
                    failures += 1
            except UncertainSendError:
                last, uncertain = "timeout", True
                failures += 1
                sid = await self._find_after_uncertain(address, value, delivery)
                if sid is STOPPED:
                    self._abandon(contact, value, uncertain)
                    return
                if sid:
                    record(contact, value, f"sent:{sid}", sid)
                    return
            else:
                if sent is None:  # stopped before the call
                    self._abandon(contact, value, uncertain)
                    return
                record(contact, value, f"sent:{sent.sid}", sent.sid)
                return
            cap = min(self.policy.backoff_cap, self.policy.backoff_base * 2 ** (failures + throttled - 1))
            if await self._stopped_within(random.uniform(0, cap)):
                self._abandon(contact, value, uncertain)
                return
        log.warning("broadcast %s: %s failed after %s calls (%s)", self.broadcast.id, log_name(contact),
                    failures + throttled, last)
        record(contact, value, f"{FAILED}:{last}")

    async def _find_after_uncertain(self, address: Address, claim: str, delivery: Delivery) -> str | None:
        """After a call that may have reached Twilio: the sid Twilio lists for it, or None once the listing
        can be trusted (STOPPED if the run stopped first). A request still queued at Twilio when we gave up
        is listed only once Twilio processes it, so "not listed" counts only after settle_seconds: sending
        again on the first empty list sent families the same alert twice on a busy machine."""
        since = datetime.fromtimestamp(claimed_at(claim), UTC)
        body = delivery.body if delivery.content_sid is None else None
        deadline = time.monotonic() + self.policy.settle_seconds
        while True:
            try:
                sid = await self.session.find_sent(address, since, body)
            except SendError:
                sid = None  # Twilio cannot list now: ask again until the deadline
            if sid:
                return sid
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if await self._stopped_within(min(SETTLE_POLL_SECONDS, remaining)):
                return STOPPED

    async def _call(self, address: Address, delivery: Delivery):
        """One Twilio call, in the batch's window of calls in flight and under the rate limit; None when the
        run stopped before it was made."""
        entered = await self.window.enter()
        refused = answered = False
        try:
            metrics.rate_limit_waited(await self.limiter.wait_turn(self.sender.origin(address), delivery.segments))
            if self.stop.is_set():
                return None
            sent = await self.session.send(
                address, delivery.body, content_version=self.broadcast.content_version,
                status_callback=self.callback, content_sid=delivery.content_sid,
                content_variables=delivery.content_variables, validity_period=self.validity)
            answered = True
            return sent
        except RejectedSendError:
            answered = True  # Twilio processed it (a 4xx about the message, not about the load)
            raise
        except RetryableSendError as exc:
            refused = too_many(exc)
            if refused:
                metrics.twilio_too_many()
            raise
        finally:
            if self.window.leave(entered, refused, answered) and self.window.cuts == 1:
                log.warning("broadcast %s batch %s: Twilio says the account has too many requests open; "
                            "this batch now keeps %s calls in flight, not %s (AVISO_SEND_CONCURRENCY)",
                            self.broadcast.id, self.batch_no, self.window.allowed, self.window.ceiling)

    def _abandon(self, contact: str, claim: str, uncertain: bool) -> None:
        """Stop before sending: unclaim (it shows as pending), unless a call may have reached Twilio,
        in which case the claim stays for the next run to check with Twilio."""
        if not uncertain:
            self.outcomes.add(contact, claim, "")

    def _rejected(self, contact: str, claim: str, exc: RejectedSendError) -> None:
        if exc.code in FATAL_CODES or exc.status in (401, 403):
            self.fatal = exc
            self.stop.set()
            self.outcomes.add(contact, claim, "")
            return
        if exc.code == OPT_OUT:  # they texted STOP at the carrier: never send again
            self.connection.eval(audience_counts.MARK_OPTED_OUT, 1, contacts.contact_redis_key(contact), contact)
        self.outcomes.add(contact, claim, f"{FAILED}:{exc.code or exc.status}")
