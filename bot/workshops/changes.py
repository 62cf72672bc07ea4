"""Workshop changes: when another content version goes live, tell registrants what changed.

sync() compares the content version registrants were last told about with the active one: a
workshop whose time or place changed gets one change notice per registrant (seat or waitlist) and
its reminders move with it; a workshop that disappeared before it began gets one cancellation notice
per registrant, after which its registrations are deleted; a workshop with more seats promotes from
its waitlist. Then every workshop's reminder and closing jobs are (re)scheduled.

It is idempotent: the switch it handles is numbered (serial), notices are marked per registration
with that number, job ids are deterministic, and the version told about is only recorded at the
end. Publishing and rollback queue it as a job; the worker also runs it when it starts.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from rq import Queue

from bot.content.model import Content, Workshop
from bot.store import keys, queues
from bot.workshops import registrations, schedule

log = logging.getLogger(__name__)
LOCK_SECONDS = 120
CHANGED, CANCELLED, MORE_SEATS = "changed", "cancelled", "more_seats"


@dataclass(frozen=True)
class Change:
    """One workshop's change between two content versions."""

    workshop: str
    kind: str  # changed (time or place) | cancelled (removed before it began) | more_seats
    old: Workshop | None
    new: Workshop | None


def _where_and_when(w: Workshop) -> tuple:
    return w.starts, w.duration_minutes, w.online, w.place.strip(), w.link.strip()


def diff(old: Content, new: Content, now: datetime) -> list[Change]:
    """What changed for families between two versions (workshops that are over are left alone)."""
    changes = []
    for workshop_id in sorted(set(old.workshops_by_id) | set(new.workshops_by_id)):
        before, after = old.workshop(workshop_id), new.workshop(workshop_id)
        if before is None or (before.starts <= now and (after is None or after.starts <= now)):
            continue  # new, or over (or under way) in both
        if after is None:
            changes.append(Change(workshop_id, CANCELLED, before, None))
            continue
        if _where_and_when(before) != _where_and_when(after):
            changes.append(Change(workshop_id, CHANGED, before, after))
        if after.capacity != before.capacity and (after.capacity <= 0 or 0 < before.capacity < after.capacity):
            changes.append(Change(workshop_id, MORE_SEATS, before, after))
    return changes


@dataclass(frozen=True)
class SyncReport:
    """What a sync did."""

    version: str | None
    previous: str | None
    serial: int
    changes: tuple[Change, ...] = ()
    notices: tuple[str, ...] = ()  # job ids of notice jobs queued
    scheduled: int = 0  # reminder jobs (re)scheduled


def _notice(queue: Queue, change: Change, version: str, serial: int) -> str:
    job_id = schedule.job_id(change.kind, change.workshop, str(serial))
    queue.enqueue(queues.SEND_NOTICES, change.workshop, change.kind, version, str(serial), job_id=job_id,
                  retry=schedule.JOB_RETRY, result_ttl=schedule.JOB_RESULT_TTL,
                  failure_ttl=schedule.JOB_FAILURE_TTL, job_timeout=schedule.JOB_TIMEOUT)
    return job_id


def _extend(connection: redis.Redis, workshop: Workshop) -> None:
    """A moved workshop's registration data lives until its new end (plus retention)."""
    until = registrations.keep_until(workshop)
    pipe = connection.pipeline(transaction=False)
    for name in (keys.WORKSHOP_SEATS, keys.WORKSHOP_WAITLIST, keys.WORKSHOP_META, keys.WORKSHOP_PROMOTED):
        pipe.expireat(name.format(id=workshop.id), until)
    pipe.execute()


def sync(aviso, now: datetime | None = None) -> SyncReport | None:
    """Handle a content switch (if any) and (re)schedule every workshop's jobs; None if another sync runs."""
    now = now or datetime.now(UTC)
    connection, store = aviso.connection, aviso.content
    token = uuid.uuid4().hex
    if not connection.set(keys.WORKSHOPS_SYNC_LOCK, token, nx=True, ex=LOCK_SECONDS):
        return None
    try:
        active = store.active_version()
        if active is None:
            return SyncReport(None, None, 0)
        new = store.get(active)
        told = {k.decode(): v.decode() for k, v in connection.hgetall(keys.WORKSHOPS_SYNCED).items()}
        previous, serial = told.get("version"), int(told.get("serial", 0))
        changes: list[Change] = []
        notices: list[str] = []
        if previous and previous != active:
            serial += 1
            try:
                changes = diff(store.get(previous), new, now)
            except LookupError:
                log.warning("workshops: content %s is no longer stored; no change notices", previous)
            registered = set(registrations.registered_workshops(connection))
            queue = Queue(queues.DEFAULT, connection=connection)
            promoted = []
            for change in changes:
                if change.workshop not in registered:
                    continue
                if change.kind == CANCELLED:
                    notices.append(_notice(queue, change, previous, serial))
                elif change.kind == CHANGED:
                    _extend(connection, change.new)
                    notices.append(_notice(queue, change, active, serial))
                elif registrations.promote(connection, change.new):
                    promoted.append(change.workshop)
            schedule.enqueue_promotions(connection, promoted)
            log.info("workshops: content %s -> %s, switch %d: %d change(s), %d notice job(s)",
                     previous, active, serial, len(changes), len(notices))
        scheduled = 0
        pipe = connection.pipeline(transaction=False)
        for workshop in new.workshops:
            if registrations.keep_until(workshop) > now.timestamp():
                scheduled += len(schedule.schedule_workshop(
                    connection, workshop, aviso.settings.reminder_offsets, now, pipeline=pipe))
        pipe.execute()
        leftover = [w for w in registrations.registered_workshops(connection)
                    if connection.scard(keys.WORKSHOP_PROMOTED.format(id=w))]
        schedule.enqueue_promotions(connection, leftover)  # a promotion whose job never got queued
        connection.hset(keys.WORKSHOPS_SYNCED, mapping={"version": active, "serial": serial})
        return SyncReport(active, previous, serial, tuple(changes), tuple(notices), scheduled)
    finally:
        connection.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
                        "return 0", 1, keys.WORKSHOPS_SYNC_LOCK, token)


def sync_job(aviso) -> str:
    """sync(), summed up in a line: the job queues.SYNC_WORKSHOPS (queued by publishing and rollback)."""
    report = sync(aviso)
    if report is None:
        return "another sync is running"
    return (f"content {report.version}: {len(report.changes)} change(s), {len(report.notices)} notice job(s), "
            f"{report.scheduled} reminder job(s) scheduled")


def after_switch(connection: redis.Redis, version: str) -> None:
    """Queue a sync for a version that just went live (publish or rollback): housekeeping, on the low queue."""
    Queue(queues.LOW, connection=connection).enqueue(
        queues.SYNC_WORKSHOPS, job_id=schedule.job_id("sync", version, uuid.uuid4().hex[:8]),
        result_ttl=schedule.JOB_RESULT_TTL, failure_ttl=schedule.JOB_FAILURE_TTL, retry=schedule.JOB_RETRY)
