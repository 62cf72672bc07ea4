"""Fan-out: the RQ jobs that send a broadcast to each recipient exactly once, fast, under the rate limit."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue, Retry, get_current_job
from rq.job import Job, JobStatus
from rq.utils import utcparse

from bot.broadcasts import calls
from bot.broadcasts.batches import BatchRun, Lease
from bot.broadcasts.errors import BroadcastNotFound, InvalidTransition, MissingTranslation
from bot.broadcasts.index import Query, page_ids
from bot.broadcasts.store import APPROVED, CANCELLED, DONE, FAILED, SCHEDULED, SENDING, Broadcast, BroadcastStore
from bot.content.segments import count
from bot.store import keys, queues

log = logging.getLogger(__name__)

JOB_RETRY = Retry(max=2, interval=[5, 30])  # RQ re-runs a batch that raised or whose worker died
JOB_RESULT_TTL = 600
JOB_FAILURE_TTL = 7 * 24 * 3600
TAIL_POLL_SECONDS = 1.0  # how often a lingering watchdog looks at the last batches
BATCH_TIMEOUT_SECONDS = 1800  # unlimited rate: 2,000 recipients, 128 at a time, with every retry and timeout, fit
WAITING = (JobStatus.CREATED, JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED,
           JobStatus.RATE_LIMITED, JobStatus.READY_TO_ENQUEUE)


class FanoutError(Exception):
    """A broadcast cannot be started or sent."""


class BatchFailed(FanoutError):
    """A batch stopped on an error no recipient caused (bad credentials); RQ retries it."""


@dataclass(frozen=True)
class Policy:
    """How one broadcast is fanned out; stored with its run so every batch and retry agree."""

    # Recipients per RQ job: small enough to re-run cheaply (recorded ones cost a claim check), big enough to
    # amortise a job's start, whose work horse opens a connection per call in flight: at 500 a batch opened
    # one per 4 messages, and the broadcast benchmark ran at 1,326 messages/s; at 2,000, 1,767.
    batch_size: int = 2000
    concurrency: int = 128  # Twilio calls in flight per batch (a call takes 100-300 ms), one connection each
    segments_per_second: float | None = None  # per sender; None: unlimited
    lease_seconds: float = 30.0  # a silent batch is presumed dead after this; > the Twilio call timeout
    watch_seconds: float = 15.0  # how often the watchdog job looks for dead batches
    max_attempts: int = 5  # Twilio calls per recipient when answers are errors worth retrying (5xx, timeouts)
    # Twilio calls per recipient answered 429 (too many requests open; never processed) before it counts as
    # failed: the batch's window of calls in flight shrinks meanwhile (congestion.CallWindow).
    max_throttled: int = 20
    backoff_base: float = 0.5  # first retry waits up to this, doubling, with full jitter
    backoff_cap: float = 8.0
    # After a call that timed out, Twilio's list of sent messages is trusted to say "never sent" only this
    # long after: a request Twilio had not processed yet when we gave up is listed once it is.
    settle_seconds: float = 20.0
    max_batch_runs: int = 6  # a batch started this often without finishing fails the broadcast

    @classmethod
    def from_json(cls, text: str | bytes | None) -> Policy:
        """The policy stored with a run."""
        return cls(**json.loads(text)) if text else cls()


def default_policy(settings) -> Policy:
    """The policy from settings: AVISO_RATE_LIMIT_SEGMENTS_PER_SECOND (0: no cap of Aviso's own) and
    AVISO_SEND_CONCURRENCY (Twilio calls in flight per batch)."""
    return Policy(segments_per_second=getattr(settings, "rate_limit_segments_per_second", 0) or None,
                  concurrency=getattr(settings, "send_concurrency", Policy.concurrency))


def _run_state(connection: redis.Redis, broadcast_id: str) -> dict[str, str]:
    raw = connection.hgetall(keys.BROADCAST_RUN.format(id=broadcast_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


def enqueue_start(connection: redis.Redis, broadcast_id: str, *, policy: Policy | None = None) -> Job:
    """Queue the start of an approved broadcast (urgent ones on the urgent queue)."""
    broadcast = BroadcastStore(connection).get(broadcast_id)
    queue = Queue(queues.URGENT if broadcast.urgent else queues.DEFAULT, connection=connection)
    return queue.enqueue(queues.START_BROADCAST, broadcast_id, asdict(policy) if policy else None,
                         job_id=f"bcast-{broadcast_id}-start-{uuid.uuid4().hex[:6]}", retry=JOB_RETRY,
                         result_ttl=JOB_RESULT_TTL, failure_ttl=JOB_FAILURE_TTL)


def schedule(connection: redis.Redis, broadcast_id: str, when: datetime, *, policy: Policy | None = None) -> Job:
    """Mark an approved broadcast scheduled and start it at a time (after quiet hours, say)."""
    store = BroadcastStore(connection)
    broadcast = store.transition(broadcast_id, SCHEDULED)
    store.set_start(broadcast_id, when)
    queue = Queue(queues.URGENT if broadcast.urgent else queues.DEFAULT, connection=connection)
    return queue.enqueue_at(when, queues.START_BROADCAST, broadcast_id, asdict(policy) if policy else None,
                            retry=JOB_RETRY, result_ttl=JOB_RESULT_TTL, failure_ttl=JOB_FAILURE_TTL)


def cancel(connection: redis.Redis, broadcast_id: str) -> Broadcast:
    """Cancel a broadcast, also while it is sending: batches stop within a tick, in-flight calls end."""
    return BroadcastStore(connection).transition(broadcast_id, CANCELLED)


def start_broadcast(aviso, broadcast_id: str, policy: dict | None = None) -> str:
    """Snapshot the audience into batches and queue them (the job queues.START_BROADCAST); safe to run again."""
    connection, store = aviso.connection, BroadcastStore(aviso.connection)
    lock = Lease(connection, keys.BROADCAST_LEASE.format(id=broadcast_id, n="start"), 120)
    if not lock.acquire():
        return "another start is running"
    try:
        broadcast = store.get(broadcast_id)
        run = _run_state(connection, broadcast_id)
        if broadcast.status in (APPROVED, SCHEDULED) or (broadcast.status == SENDING and "batches" not in run):
            chosen = Policy(**policy) if policy else default_policy(aviso.settings)
            if not _snapshot(aviso, store, broadcast, chosen):
                return store.get(broadcast_id).status
            run = _run_state(connection, broadcast_id)
        elif broadcast.status != SENDING:
            return f"not started: broadcast is {broadcast.status}"
        batches = int(run["batches"])
        calls.start(aviso, broadcast)  # an urgent broadcast also calls who asked for calls (once: safe again)
        _enqueue_batches(connection, broadcast_id, [n for n in range(batches) if f"job:{n}" not in run], run)
        _schedule_watch(connection, broadcast_id, run)
        _finish_if_complete(connection, store, broadcast_id)
        return f"{run['audience']} recipients in {batches} batches"
    finally:
        lock.release()


def _snapshot(aviso, store: BroadcastStore, broadcast: Broadcast, policy: Policy) -> bool:
    """Freeze the audience into batches and move the broadcast to sending; False if it must not send."""
    connection = aviso.connection
    recipients = store.audience(broadcast)
    missing = sorted({r.language for r in recipients} - set(broadcast.texts))
    if missing and broadcast.fallback_language not in broadcast.texts:
        store.transition(broadcast.id, FAILED, failure=str(MissingTranslation(tuple(missing))))
        return False
    if broadcast.status != SENDING:
        store.transition(broadcast.id, SENDING)
    contact_keys = [r.contact for r in recipients]
    chunks = [contact_keys[i:i + policy.batch_size] for i in range(0, len(contact_keys), policy.batch_size)]
    timeout = BATCH_TIMEOUT_SECONDS
    if policy.segments_per_second:  # a batch can wait its turn behind the whole broadcast
        most = max(_segments(broadcast.texts.values()), 1)
        timeout += int(len(contact_keys) * most / policy.segments_per_second * 1.5)
    ttl = keys.BROADCAST_RECIPIENT_TTL_SECONDS
    pipe = connection.pipeline(transaction=True)
    for n, chunk in enumerate(chunks):
        pipe.set(keys.BROADCAST_BATCH.format(id=broadcast.id, n=n), ",".join(chunk), ex=ttl)
    run_key = keys.BROADCAST_RUN.format(id=broadcast.id)
    pipe.hset(run_key, mapping={
        "batches": len(chunks), "audience": len(contact_keys), "policy": json.dumps(asdict(policy)),
        "queue": queues.URGENT if broadcast.urgent else queues.DEFAULT, "timeout": timeout,
        "since": f"{time.time():.3f}"})
    pipe.expire(run_key, ttl)
    pipe.hset(keys.BROADCAST.format(id=broadcast.id), "audience", len(contact_keys))
    pipe.execute()
    return True


def _segments(texts) -> int:
    return max((count(text).segments for text in texts), default=1)


def _enqueue_batches(connection: redis.Redis, broadcast_id: str, numbers: list[int], run: dict[str, str]) -> None:
    """Queue a fresh job for each batch number (its run count goes up by one)."""
    if not numbers:
        return
    queue = Queue(run["queue"], connection=connection)
    datas, mapping = [], {}
    for n in numbers:
        runs = int(run.get(f"runs:{n}", 0)) + 1
        job_id = f"bcast-{broadcast_id}-b{n}-r{runs}"
        datas.append(Queue.prepare_data(
            queues.SEND_BATCH, args=(broadcast_id, n), job_id=job_id, timeout=int(run["timeout"]), retry=JOB_RETRY,
            result_ttl=JOB_RESULT_TTL, failure_ttl=JOB_FAILURE_TTL, description=f"broadcast {broadcast_id} batch {n}"))
        mapping[f"job:{n}"], mapping[f"runs:{n}"] = job_id, runs
    with connection.pipeline() as pipe:
        pipe.hset(keys.BROADCAST_RUN.format(id=broadcast_id), mapping=mapping)
        queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()


def _schedule_watch(connection: redis.Redis, broadcast_id: str, run: dict[str, str]) -> None:
    """Queue the next watchdog pass (one chain per broadcast: the newest job id in the run wins)."""
    policy = Policy.from_json(run.get("policy"))
    job_id = f"bcast-{broadcast_id}-watch-{uuid.uuid4().hex[:8]}"
    connection.hset(keys.BROADCAST_RUN.format(id=broadcast_id), "watch", job_id)
    Queue(run["queue"], connection=connection).enqueue_in(
        timedelta(seconds=policy.watch_seconds), queues.WATCH_BROADCAST, broadcast_id, job_id=job_id,
        result_ttl=JOB_RESULT_TTL, failure_ttl=JOB_FAILURE_TTL)


def watch(aviso, broadcast_id: str, linger: bool = False) -> str:
    """Re-queue batches whose worker died and finish the broadcast. Scheduled, it looks again
    later; lingering (queued by the last batches), it keeps looking until their leases tell. The job
    queues.WATCH_BROADCAST."""
    connection, store = aviso.connection, BroadcastStore(aviso.connection)
    run = _run_state(connection, broadcast_id)
    job = get_current_job()
    if not run or (not linger and job is not None and run.get("watch") != job.id):
        return "superseded"
    policy = Policy.from_json(run.get("policy"))
    deadline = time.monotonic() + (policy.lease_seconds + 2 * TAIL_POLL_SECONDS if linger else 0)
    while True:
        requeued = sweep(connection, broadcast_id, force=True)
        if _finish_if_complete(connection, store, broadcast_id) or store.get(broadcast_id).status != SENDING:
            return "finished"
        if requeued or time.monotonic() >= deadline:
            break
        time.sleep(TAIL_POLL_SECONDS)
    if not linger:
        _schedule_watch(connection, broadcast_id, run)
    return f"requeued {requeued}"


def recover(connection: redis.Redis, limit: int = 100) -> int:
    """Sweep every recent broadcast still sending (for a worker's start-up); return batches re-queued."""
    store, total = BroadcastStore(connection), 0
    for _, broadcast_id in page_ids(connection, Query(None, status=SENDING), limit):
        broadcast = store.get(broadcast_id) if connection.exists(keys.BROADCAST.format(id=broadcast_id)) else None
        if broadcast is not None and broadcast.status == SENDING:
            total += len(sweep(connection, broadcast.id, force=True))
            _finish_if_complete(connection, store, broadcast.id)
    return total


def _batch_states(connection: redis.Redis, broadcast_id: str, run: dict[str, str]) -> dict[int, str]:
    """Each unfinished batch: "leased" (a worker holds it, alive or not yet known dead), "waiting" (its
    job is queued or just starting) or "stalled" (neither: its worker died, or it stopped early)."""
    policy = Policy.from_json(run.get("policy"))
    pipe = connection.pipeline(transaction=False)
    numbers = range(int(run["batches"]))
    for n in numbers:
        pipe.exists(keys.BROADCAST_LEASE.format(id=broadcast_id, n=n))
        pipe.hmget(Job.key_for(run.get(f"job:{n}", "none")), "status", "started_at")
    # Read last: a batch records itself done before it lets its lease go, so a batch seen without a
    # lease above is in this set if it finished.
    pipe.smembers(keys.BROADCAST_DONE_BATCHES.format(id=broadcast_id))
    *answers, done = pipe.execute()
    finished, states, now = {int(n) for n in done}, {}, datetime.now(UTC)
    for n, leased, (status, started) in zip(numbers, answers[::2], answers[1::2], strict=True):
        if n in finished:
            continue
        status = status.decode() if status else None
        started_ago = (now - utcparse(started.decode()).replace(tzinfo=UTC)).total_seconds() if started else 0
        if leased:
            states[n] = "leased"
        elif status in WAITING or (status == JobStatus.STARTED and started_ago < policy.lease_seconds):
            states[n] = "waiting"  # queued, or started a moment ago and about to take its lease
        else:
            states[n] = "stalled"
    return states


def sweep(connection: redis.Redis, broadcast_id: str, *, force: bool = False) -> list[int]:
    """Re-queue the unfinished batches that have no live worker and no waiting job; return them."""
    sweep_lock = keys.BROADCAST_LEASE.format(id=broadcast_id, n="sweep")
    if not connection.set(sweep_lock, "1", nx=True, px=1000) and not force:
        return []
    run = _run_state(connection, broadcast_id)
    status = connection.hget(keys.BROADCAST.format(id=broadcast_id), "status")
    if "batches" not in run or status != SENDING.encode():
        return []  # not started, or finished, cancelled or failed: nothing to re-run
    policy = Policy.from_json(run.get("policy"))
    stalled = [n for n, state in _batch_states(connection, broadcast_id, run).items() if state == "stalled"]
    if any(int(run.get(f"runs:{n}", 0)) >= policy.max_batch_runs for n in stalled):
        _fail(BroadcastStore(connection), broadcast_id, "a batch kept failing (see the failed job registry)")
        return []
    if stalled:
        log.warning("broadcast %s: re-queueing batches %s (no live worker)", broadcast_id, stalled)
        _enqueue_batches(connection, broadcast_id, stalled, run)
    return stalled


def _watch_the_tail(connection: redis.Redis, broadcast_id: str) -> None:
    """Once no batch waits in the queue, have a worker watch the ones still leased until they finish or
    their lease runs out: the scheduled watchdog may be slow to come if the worker that died ran RQ's
    scheduler (another worker takes the scheduler over only minutes later)."""
    run = _run_state(connection, broadcast_id)
    if "batches" not in run or "waiting" in _batch_states(connection, broadcast_id, run).values():
        return
    policy = Policy.from_json(run.get("policy"))
    guard = keys.BROADCAST_LEASE.format(id=broadcast_id, n="tail")
    if connection.set(guard, "1", nx=True, ex=int(policy.lease_seconds + 4 * TAIL_POLL_SECONDS)):
        Queue(run["queue"], connection=connection).enqueue(
            queues.WATCH_BROADCAST, broadcast_id, True, job_id=f"bcast-{broadcast_id}-tail-{uuid.uuid4().hex[:8]}",
            result_ttl=JOB_RESULT_TTL, failure_ttl=JOB_FAILURE_TTL)


def _fail(store: BroadcastStore, broadcast_id: str, reason: str) -> None:
    try:
        store.transition(broadcast_id, FAILED, failure=reason)
    except InvalidTransition:
        pass


def _finish_if_complete(connection: redis.Redis, store: BroadcastStore, broadcast_id: str) -> bool:
    """Mark the broadcast done once every batch has finished; True if it is (now) done."""
    run = _run_state(connection, broadcast_id)
    if "batches" not in run:
        return False
    batches = int(run["batches"])
    if connection.scard(keys.BROADCAST_DONE_BATCHES.format(id=broadcast_id)) < batches:
        return False
    try:
        store.transition(broadcast_id, DONE)
    except InvalidTransition:
        return store.get(broadcast_id).status == DONE
    # The batch lists named every recipient; the outcome records now say all there is to say.
    connection.delete(*[keys.BROADCAST_BATCH.format(id=broadcast_id, n=n) for n in range(batches)] or ["-"])
    return True


def send_batch(aviso, broadcast_id: str, batch_no: int) -> str:
    """Send one batch (the job queues.SEND_BATCH); recipients already recorded are left alone: run twice, safe."""
    connection, store = aviso.connection, BroadcastStore(aviso.connection)
    run = _run_state(connection, broadcast_id)
    done_key = keys.BROADCAST_DONE_BATCHES.format(id=broadcast_id)
    if "batches" not in run or connection.sismember(done_key, batch_no):
        return "nothing to do"
    try:
        broadcast = store.get(broadcast_id)
    except BroadcastNotFound:
        return "broadcast gone"
    if broadcast.status != SENDING:
        return f"broadcast is {broadcast.status}"
    policy = Policy.from_json(run.get("policy"))
    lease = Lease(connection, keys.BROADCAST_LEASE.format(id=broadcast_id, n=batch_no), policy.lease_seconds)
    if not lease.acquire():
        return "batch is running elsewhere"
    try:
        batch = BatchRun(aviso, broadcast, batch_no, policy, lease,
                         look_after_siblings=lambda: sweep(connection, broadcast_id))
        finished = batch.run() and batch.fatal is None
        if finished:  # before the lease goes: a sweep that finds no lease must find the batch done
            connection.sadd(done_key, batch_no)
            connection.expire(done_key, keys.BROADCAST_RECIPIENT_TTL_SECONDS)
    finally:
        lease.release()
    if batch.fatal is not None:
        raise BatchFailed(f"broadcast {broadcast_id} batch {batch_no}: {batch.fatal}")
    if not _finish_if_complete(connection, store, broadcast_id):
        _watch_the_tail(connection, broadcast_id)
    return f"batch {batch_no}: {batch.handled} recipients handled" + ("" if finished else ", stopped")
