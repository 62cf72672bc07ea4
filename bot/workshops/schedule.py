"""The reminder schedule: offsets and due times, job ids, and queueing the workshop jobs (run by bot.services.jobs)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue, Retry

from bot.content.model import Workshop
from bot.store import queues
from bot.workshops import registrations

MIN_LATE_LIMIT = timedelta(minutes=10)
JOB_RETRY = Retry(max=5, interval=[30, 60, 120, 300, 600])
JOB_TIMEOUT = 900
JOB_RESULT_TTL = 24 * 3600
JOB_FAILURE_TTL = 7 * 24 * 3600
OFFSET = re.compile(r"^([1-9][0-9]{0,2})([dhm])$")


@dataclass(frozen=True)
class Offset:
    """How long before a workshop a reminder goes: N calendar days (wall clock), hours or minutes."""

    label: str
    amount: int
    unit: str  # d | h | m

    @classmethod
    def parse(cls, label: str) -> Offset:
        """"1d", "2h", "30m"."""
        found = OFFSET.match(label.strip().lower())
        if not found:
            raise ValueError(f"not a reminder offset: {label!r} (like 1d, 2h or 30m)")
        return cls(found.group(0), int(found.group(1)), found.group(2))

    def due(self, starts: datetime) -> datetime:
        """When the reminder for a workshop starting then is due, in the workshop's zone."""
        zone = starts.tzinfo
        if self.unit == "d":
            wall = datetime.combine(starts.date() - timedelta(days=self.amount), starts.time(), zone)
            return wall.astimezone(UTC).astimezone(zone)  # a time in the skipped hour moves forward
        span = timedelta(hours=self.amount) if self.unit == "h" else timedelta(minutes=self.amount)
        return (starts.astimezone(UTC) - span).astimezone(zone)

    @property
    def late_limit(self) -> timedelta:
        """How late a reminder may still go out (a worker was down): half its offset, at least 10 minutes."""
        nominal = {"d": timedelta(days=self.amount), "h": timedelta(hours=self.amount),
                   "m": timedelta(minutes=self.amount)}[self.unit]
        return max(nominal / 2, MIN_LATE_LIMIT)

    @property
    def text_key(self) -> str:
        """reminder.day for day offsets, reminder.hours for shorter ones."""
        return "reminder.day" if self.unit == "d" else "reminder.hours"


def due_times(starts: datetime, offsets: Iterable[str], now: datetime) -> list[tuple[str, datetime]]:
    """(offset, due time) of each reminder still to come for a workshop starting then, earliest first."""
    found = [(o.label, o.due(starts)) for o in map(Offset.parse, offsets)]
    return sorted(((label, due) for label, due in found if due > now and due < starts), key=lambda x: x[1])


def schedule(workshop: Workshop, offsets: Iterable[str], now: datetime) -> list[tuple[str, datetime]]:
    """The reminders a registration made now gets: those due after now (a late sign-up gets fewer)."""
    return due_times(workshop.starts, offsets, now)


def job_id(*parts: str) -> str:
    """An RQ job id from parts (RQ allows letters, digits, _ and - only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", "-".join(("ws", *parts)))


def reminder_job_id(workshop_id: str, offset: str) -> str:
    """The deterministic id of a workshop's reminder job for one offset."""
    return job_id("rem", workshop_id, offset)


def close_job_id(workshop_id: str) -> str:
    """The deterministic id of the job that deletes a workshop's registrations once it is over."""
    return job_id("close", workshop_id)


def schedule_workshop(connection: redis.Redis, workshop: Workshop, offsets: Iterable[str], now: datetime,
                      pipeline=None) -> list[tuple[str, datetime]]:
    """Schedule (or move) a workshop's reminder jobs and its closing job; the reminders scheduled.

    Safe to repeat: the same ids are overwritten. A job whose due time moved to the past is left to
    find out for itself when it runs (its due time no longer matches: it sends nothing).
    """
    queue = Queue(queues.DEFAULT, connection=connection)
    pipe = pipeline if pipeline is not None else connection.pipeline()
    planned = due_times(workshop.starts, offsets, now)
    for label, due in planned:
        queue.enqueue_at(
            due, queues.SEND_REMINDERS, workshop.id, label, int(due.timestamp()),
            job_id=reminder_job_id(workshop.id, label),
            retry=JOB_RETRY, job_timeout=JOB_TIMEOUT, result_ttl=JOB_RESULT_TTL, failure_ttl=JOB_FAILURE_TTL,
            description=f"reminder {label} for workshop {workshop.id}", pipeline=pipe,
        )
    closing = datetime.fromtimestamp(registrations.keep_until(workshop), UTC)
    queue.enqueue_at(closing, queues.CLOSE_WORKSHOP, workshop.id, job_id=close_job_id(workshop.id), retry=JOB_RETRY,
                     result_ttl=JOB_RESULT_TTL, failure_ttl=JOB_FAILURE_TTL, pipeline=pipe)
    if pipeline is None:
        pipe.execute()
    return planned


def enqueue_promotions(connection: redis.Redis, workshop_ids: Iterable[str], pipeline=None) -> None:
    """Queue the job that tells promoted contacts (on a pipeline, or now)."""
    queue = Queue(queues.DEFAULT, connection=connection)
    for workshop_id in workshop_ids:
        queue.enqueue(queues.SEND_PROMOTIONS, workshop_id, job_id=job_id("promo", workshop_id, uuid.uuid4().hex[:8]),
                      retry=JOB_RETRY, result_ttl=JOB_RESULT_TTL, failure_ttl=JOB_FAILURE_TTL,
                      **({"pipeline": pipeline} if pipeline is not None else {}))


def recover(aviso, now: datetime | None = None) -> list[str]:
    """Re-queue every reminder due now (within its late limit): a worker killed mid-job is retried at once.

    For a worker's start. RQ would retry an abandoned job too, but only after its heartbeat expires
    and a maintenance pass (minutes); the exactly-once claims make running a reminder again harmless.
    """
    now = now if now is not None else datetime.now(UTC)
    content = aviso.content.active()
    queue = Queue(queues.DEFAULT, connection=aviso.connection)
    queued = []
    for workshop in content.workshops if content else []:
        if now >= workshop.starts:
            continue
        for label in aviso.settings.reminder_offsets:
            offset = Offset.parse(label)
            due = offset.due(workshop.starts)
            if due <= now <= due + offset.late_limit:
                queued.append(queue.enqueue(
                    queues.SEND_REMINDERS, workshop.id, label, int(due.timestamp()),
                    job_id=job_id("rem", workshop.id, label, "again", uuid.uuid4().hex[:8]), retry=JOB_RETRY,
                    job_timeout=JOB_TIMEOUT, result_ttl=JOB_RESULT_TTL, failure_ttl=JOB_FAILURE_TTL).id)
    return queued
