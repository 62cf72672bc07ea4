"""Liveness: whether RQ workers listen on each of Aviso's queues and a scheduler holds each queue's lock,
read from RQ's own records in Redis (its worker registry, the scheduler locks)."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from rq import Queue
from rq.scheduler import RQScheduler
from rq.worker_registration import get_keys

from bot.store import queues


@dataclass(frozen=True)
class Liveness:
    """Live workers per queue, and the queues whose scheduler lock is held."""

    workers: dict[str, int]
    scheduled: frozenset[str]

    @property
    def workers_alive(self) -> bool:
        """Every queue has a worker listening."""
        return all(self.workers.values())

    @property
    def scheduler_alive(self) -> bool:
        """A scheduler holds every queue's lock (reminders and scheduled broadcasts go out)."""
        return self.scheduled == frozenset(self.workers)

    @property
    def ok(self) -> bool:
        """Messages queued now, and those due later, will be sent."""
        return self.workers_alive and self.scheduler_alive


def check(connection: redis.Redis, names: tuple[str, ...] = queues.ALL) -> Liveness:
    """Read RQ's records. A worker that stopped cleanly leaves the registry at once; one that was killed
    stays listed until its key expires (the worker's TTL, 75 s for `aviso worker`), so only keys that still
    exist count."""
    workers = {}
    for name in names:
        keys = sorted(get_keys(Queue(name, connection=connection)))
        workers[name] = connection.exists(*keys) if keys else 0
    locks = [RQScheduler.get_locking_key(name) for name in names]
    held = connection.mget(locks)
    return Liveness(workers, frozenset(name for name, holder in zip(names, held, strict=True) if holder))
