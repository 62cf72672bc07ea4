"""Voice alert calls: an urgent broadcast also calls the families who asked for calls (VOICE / VOZ), each
exactly once per broadcast even when a worker dies, one call per slot of the account's calls-per-second limit.

A call run goes with its broadcast (the same id): started by the broadcast's start job, placed by one job at a
time (it holds the run's lease) while another stands by to take over when the placer's worker dies.
Each callee is claimed before its call and recorded after; a claim left by a dead run is settled by asking
Twilio for the calls to that number since the claim, so nobody is called twice and nobody is left out.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import redis
from rq import Queue

from bot.broadcasts.batches import Lease, too_many
from bot.broadcasts.store import CANCELLED, Broadcast, BroadcastStore
from bot.content.voice import VoiceContent
from bot.people import contacts
from bot.people.identity import InvalidToken, log_name
from bot.store import keys, queues
from bot.twilio.calls import CallPlacer
from bot.twilio.ratelimit import RateLimiter
from bot.twilio.senders import RejectedSendError, RetryableSendError, UncertainSendError

log = logging.getLogger(__name__)

PLACED, SKIPPED, FAILED = "placed", "skipped", "failed"
FINAL_STATUSES = ("completed", "no-answer", "busy", "failed", "canceled")  # a call's end, from Twilio
OUTCOME_NAMES = {"completed": "answered", "no-answer": "no_answer", "busy": "busy", "failed": "call_failed",
                 "canceled": "call_failed"}  # a call status -> the count shown on the broadcast's page
NO_VOICE = "no_voice"  # the family's language has no voice that can read the alert
NOT_CALLABLE = "not_a_phone_number"  # a WhatsApp user id, not a number
GONE = "contact_gone"  # forgot, stopped or asked for no more calls since the broadcast started
TTL = keys.BROADCAST_RECIPIENT_TTL_SECONDS
JOB_TTL = 600
STANDBY_POLL_SECONDS = 0.5  # how often a standby placer looks at the lease

# Record an outcome over the claim it settles (KEYS: outcomes, run; ARGV: contact, claim, outcome, counter).
_RECORD = """
if (redis.call('HGET', KEYS[1], ARGV[1]) or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[4], 1) end
return 1
"""
# A call's final status, counted once per call sid (Twilio retries callbacks). KEYS: statuses, run.
_STATUS = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
return 1
"""


@dataclass(frozen=True)
class CallPolicy:
    """How one broadcast's calls are placed; stored with the run so every job agrees."""

    calls_per_second: int = 1  # AVISO_CALLS_PER_SECOND: the account's limit (Twilio's default is 1)
    lease_seconds: float = 30.0  # a silent placer is presumed dead after this (> Twilio's answer time)
    settle_seconds: float = 20.0  # a dead run's call shows in Twilio's list of calls within this
    max_attempts: int = 5  # calls to create per callee when Twilio answers errors worth retrying
    max_throttled: int = 20  # 429s per callee (never processed) before it counts as failed
    in_flight: int = 16  # creates waiting for Twilio's answer at once (each slot's call goes on time)

    @classmethod
    def from_json(cls, text) -> CallPolicy:
        """The policy stored with a run."""
        return cls(**json.loads(text)) if text else cls()


def duration_seconds(callees: int, calls_per_second: int) -> float:
    """How long placing this many calls takes at the limit (what the preview says)."""
    return callees / max(calls_per_second, 1)


def wants_calls(fields: dict[bytes, bytes]) -> bool:
    """Whether a contact's hash says it asked for urgent-alert calls (and has not stopped everything)."""
    return fields.get(b"voice") == b"1" and fields.get(b"opted_out") != b"1"


def callees(connection: redis.Redis, store: BroadcastStore, broadcast: Broadcast) -> list[str]:
    """The broadcast's recipients who asked to be called (only urgent broadcasts call)."""
    if not broadcast.urgent:
        return []
    recipients = [r.contact for r in store.audience(broadcast)]
    pipe = connection.pipeline(transaction=False)
    for contact in recipients:
        pipe.hmget(contacts.contact_redis_key(contact), "voice", "opted_out")
    return [contact for contact, (voice, stopped) in zip(recipients, pipe.execute(), strict=True)
            if voice == b"1" and stopped != b"1"]


def _run(connection: redis.Redis, broadcast_id: str) -> dict[str, str]:
    raw = connection.hgetall(keys.CALL_RUN.format(id=broadcast_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


def counts(connection: redis.Redis, broadcast_id: str) -> dict[str, int]:
    """The call run's counts (empty when the broadcast calls nobody)."""
    run = _run(connection, broadcast_id)
    names = ("audience", PLACED, SKIPPED, FAILED, *OUTCOME_NAMES.values())
    return {name: int(run.get(name, 0)) for name in names} if "audience" in run else {}


def start(aviso, broadcast: Broadcast, policy: CallPolicy | None = None) -> int:
    """Snapshot an urgent broadcast's callees and queue their placing, once (safe to run again); callees."""
    connection = aviso.connection
    run_key = keys.CALL_RUN.format(id=broadcast.id)
    if not broadcast.urgent:
        return 0
    if connection.hexists(run_key, "audience"):
        return int(connection.hget(run_key, "audience"))
    chosen = policy or CallPolicy(calls_per_second=aviso.settings.calls_per_second)
    found = callees(connection, BroadcastStore(connection), broadcast)
    pipe = connection.pipeline(transaction=True)
    pipe.set(keys.CALL_CALLEES.format(id=broadcast.id), ",".join(found), ex=TTL)
    pipe.hset(run_key, mapping={"audience": len(found), "policy": json.dumps(asdict(chosen)),
                                "since": f"{time.time():.3f}"})
    pipe.expire(run_key, TTL)
    pipe.execute()
    if found:
        _enqueue(connection, broadcast.id, jobs=2)  # a placer and a standby
    return len(found)


def _enqueue(connection: redis.Redis, broadcast_id: str, jobs: int = 1) -> None:
    queue = Queue(queues.URGENT, connection=connection)
    for _ in range(jobs):
        queue.enqueue(queues.PLACE_CALLS, broadcast_id, job_id=f"calls-{broadcast_id}-{uuid.uuid4().hex[:8]}",
                      result_ttl=JOB_TTL, failure_ttl=7 * 24 * 3600, job_timeout=-1)


def recover(connection: redis.Redis) -> int:
    """Queue a standby placer for each unfinished call run (a worker's start-up: it may replace a dead one)."""
    prefix, suffix = keys.CALL_RUN.split("{id}")
    found = (key.decode()[len(prefix):-len(suffix)] for key in connection.scan_iter(match=prefix + "*" + suffix))
    waiting = [b for b in found if (run := _run(connection, b)) and "audience" in run and not run.get("done")]
    for broadcast_id in waiting:
        _enqueue(connection, broadcast_id)
    return len(waiting)


def place(aviso, broadcast_id: str) -> str:
    """Place the run's calls not placed yet (the job queues.PLACE_CALLS). Two such jobs are queued: one
    places, the other stands by until the placer's lease lapses (its worker died) and takes over. Each
    leaves once every callee has an outcome. Safe to run any number of times."""
    connection = aviso.connection
    while True:
        run = _run(connection, broadcast_id)
        if "audience" not in run or run.get("done"):
            return "nothing to do"
        if connection.hget(keys.BROADCAST.format(id=broadcast_id), "status") == CANCELLED.encode():
            connection.hset(keys.CALL_RUN.format(id=broadcast_id), "done", "cancelled")
            return "broadcast cancelled: no more calls"
        policy = CallPolicy.from_json(run.get("policy"))
        lease = Lease(connection, keys.CALL_LEASE.format(id=broadcast_id), policy.lease_seconds)
        if lease.acquire():
            try:
                said = CallRun(aviso, broadcast_id, policy, lease).run()
            finally:
                lease.release()
            if _run(connection, broadcast_id).get("done"):
                return said
        time.sleep(STANDBY_POLL_SECONDS)


def record_status(connection: redis.Redis, broadcast_id: str, call_sid: str, status: str) -> bool:
    """Count a call's final status (from Twilio's status callback) once; False if already counted or not final."""
    if status not in FINAL_STATUSES:
        return False
    return bool(connection.eval(_STATUS, 2, keys.CALL_STATUSES.format(id=broadcast_id),
                                keys.CALL_RUN.format(id=broadcast_id), call_sid, status, OUTCOME_NAMES[status], TTL))


class CallRun:
    """One placer's pass over a run's callees: a slot from the rate limiter for each call, the create sent on
    time from a thread pool, lease renewed and cancellation looked for between slots."""

    def __init__(self, aviso, broadcast_id: str, policy: CallPolicy, lease: Lease):
        self.aviso, self.connection, self.id, self.policy, self.lease = (
            aviso, aviso.connection, broadcast_id, policy, lease)
        self.placer = CallPlacer.configured(aviso.settings)
        self.limiter = RateLimiter(aviso.connection, policy.calls_per_second)
        self.out_key, self.run_key = keys.CALL_OUTCOMES.format(id=broadcast_id), keys.CALL_RUN.format(id=broadcast_id)
        self._record = aviso.connection.register_script(_RECORD)
        self.stop = threading.Event()
        self.voices = VoiceContent.of(aviso.active_content())
        base = aviso.settings.public_base_url
        self.callback = f"{base}/twilio/voice/status?b={broadcast_id}"
        self.alert_url = f"{base}/twilio/voice/alert?b={broadcast_id}"
        self.renew_at = time.monotonic() + policy.lease_seconds / 3

    def run(self) -> str:
        """Place every call not placed yet; the run is done once each callee has an outcome."""
        raw = self.connection.get(keys.CALL_CALLEES.format(id=self.id))
        callees = raw.decode().split(",") if raw else []
        broadcast = BroadcastStore(self.connection).get(self.id)
        records = {k.decode(): v.decode() for k, v in self.connection.hgetall(self.out_key).items()}
        token = self.lease.token
        with ThreadPoolExecutor(self.policy.in_flight, thread_name_prefix="call") as pool:
            for contact in callees:
                if self.stop.is_set() or not self._still_ours():
                    break
                previous = records.get(contact)
                if previous and not previous.startswith("claim:"):
                    continue
                target = self._target(broadcast, contact)
                if isinstance(target, str):
                    self.record(contact, previous, f"{SKIPPED}:{target}", SKIPPED)
                    continue
                number, language = target
                if previous and self._settle(contact, number, previous):
                    continue
                claim = f"claim:{token}:{time.time():.3f}"
                if not self.record(contact, previous, claim, ""):
                    continue  # changed under us: another placer (this one lost its lease)
                self.limiter.acquire(f"calls:{self.placer.origin}", 1)  # the slot: the create goes now
                pool.submit(self._place, contact, number, language, claim)
        return self._finish(len(callees))

    def _still_ours(self) -> bool:
        if time.monotonic() < self.renew_at:
            return True
        self.renew_at = time.monotonic() + self.policy.lease_seconds / 3
        if not self.lease.renew():
            log.error("broadcast %s calls: lost the lease, stopping", self.id)
            self.stop.set()
        elif self.connection.hget(keys.BROADCAST.format(id=self.id), "status") == CANCELLED.encode():
            self.stop.set()
        return not self.stop.is_set()

    def record(self, contact: str, previous: str | None, outcome: str, counter: str) -> bool:
        """Write an outcome over the record it replaces (compare-and-set; None: there was none)."""
        return bool(self._record(keys=[self.out_key, self.run_key], args=[contact, previous or "", outcome, counter]))

    def _target(self, broadcast: Broadcast, contact: str) -> tuple[str, str] | str:
        """(number, language of the alert) to call, or why this callee is skipped."""
        fields = self.connection.hgetall(contacts.contact_redis_key(contact))
        if not wants_calls(fields):
            return GONE
        if self.placer is None:
            return "no_voice_number"
        language = fields.get(b"lang", b"").decode()
        used = language if language in broadcast.texts else broadcast.fallback_language
        if not used or used not in broadcast.texts or self.voices.voice(used) is None:
            return NO_VOICE
        try:
            number = self.aviso.keyring.decrypt(fields[b"num"].decode()) if b"num" in fields else None
        except InvalidToken:
            number = None
        if not number or not number.startswith("+"):
            return NOT_CALLABLE
        return number, used

    def _settle(self, contact: str, number: str, claim: str) -> bool:
        """A claim left by a dead run: wait until Twilio's list can be trusted, then record the call it shows
        (True), or drop the claim (False: call now)."""
        claimed = float(claim.rsplit(":", 1)[1])
        wait = claimed + self.policy.settle_seconds - time.time()
        if wait > 0 and self.stop.wait(wait):
            return True
        for attempt in range(self.policy.max_attempts):
            try:
                sid = self.placer.find(number, datetime.fromtimestamp(claimed, UTC))
            except RetryableSendError:
                time.sleep(min(8.0, 0.5 * 2 ** attempt))
                continue
            if sid:
                self.record(contact, claim, f"{PLACED}:{sid}", PLACED)
                return True
            return False
        self.stop.set()  # Twilio cannot tell now: leave the claim for the next run
        return True

    def _place(self, contact: str, number: str, language: str, claim: str) -> None:
        """Create one call, retrying what Twilio asks to retry (each retry on a new slot); record it."""
        failures = throttled = 0
        last = "unknown"
        url = f"{self.alert_url}&lang={language}"
        try:
            while failures < self.policy.max_attempts and throttled < self.policy.max_throttled:
                if failures or throttled:
                    time.sleep(random.uniform(0, min(8.0, 0.5 * 2 ** (failures + throttled - 1))))
                    self.limiter.acquire(f"calls:{self.placer.origin}", 1)
                try:
                    sid = self.placer.place(number, url, self.callback)
                except RejectedSendError as exc:
                    self.record(contact, claim, f"{FAILED}:{exc.code or exc.status}", FAILED)
                    return
                except RetryableSendError as exc:
                    last = str(exc.code or exc.status or "connection")
                    throttled, failures = (throttled + 1, failures) if too_many(exc) else (throttled, failures + 1)
                    continue
                except UncertainSendError:
                    if self._settle(contact, number, claim):
                        return
                    failures, last = failures + 1, "timeout"
                    continue
                self.record(contact, claim, f"{PLACED}:{sid}", PLACED)
                return
            log.warning("broadcast %s: call to %s failed (%s)", self.id, log_name(contact), last)
            self.record(contact, claim, f"{FAILED}:{last}", FAILED)
        except Exception:  # the claim stays: the next run settles it with Twilio
            log.exception("broadcast %s: placing a call to %s", self.id, log_name(contact))
            self.stop.set()

    def _finish(self, total: int) -> str:
        records = self.connection.hvals(self.out_key)
        settled = sum(1 for value in records if not value.startswith(b"claim:"))
        if settled >= total:
            self.connection.hset(self.run_key, "done", f"{time.time():.3f}")
            return f"{total} callees: all settled"
        return f"{settled} of {total} callees settled, stopped"
