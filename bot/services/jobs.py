"""RQ jobs: each takes ids, builds this process's services and hands them to its capability.

Capabilities queue these by dotted name (bot.store.queues), so they never import the layer that runs them.
"""

from __future__ import annotations

from datetime import datetime

from bot.broadcasts import calls, fanout, notices
from bot.observability import logs
from bot.services import for_job
from bot.workshops import changes, reminders


def start_broadcast(broadcast_id: str, policy: dict | None = None) -> str:
    """Snapshot a broadcast's audience into batches and queue them; safe to run again."""
    logs.bind_broadcast(broadcast_id)
    return fanout.start_broadcast(for_job(), broadcast_id, policy)


def watch_broadcast(broadcast_id: str, linger: bool = False) -> str:
    """Re-queue batches whose worker died and finish the broadcast."""
    logs.bind_broadcast(broadcast_id)
    return fanout.watch(for_job(), broadcast_id, linger)


def send_batch(broadcast_id: str, batch_no: int) -> str:
    """Send one batch of a broadcast; safe to run again."""
    logs.bind_broadcast(broadcast_id, batch=batch_no)
    return fanout.send_batch(for_job(), broadcast_id, batch_no)


def place_calls(broadcast_id: str) -> str:
    """Place an urgent broadcast's voice alert calls (or stand by to take over from a placer that died)."""
    logs.bind_broadcast(broadcast_id)
    return calls.place(for_job(), broadcast_id)


def send_reminders(workshop_id: str, offset: str, due_epoch: int, now: datetime | None = None) -> str:
    """One workshop reminder to every seat holder who signed up before it was due; safe to run again."""
    return reminders.send_reminders(for_job(), workshop_id, offset, due_epoch, now)


def send_promotions(workshop_id: str, now: datetime | None = None) -> str:
    """Tell each contact promoted from a workshop's waitlist that the seat is theirs; safe to run again."""
    return reminders.send_promotions(for_job(), workshop_id, now)


def send_notices(workshop_id: str, kind: str, version: str, tag: str, now: datetime | None = None) -> str:
    """A workshop's change or cancellation notice to every registrant, once per tag."""
    return reminders.send_notices(for_job(), workshop_id, kind, version, tag, now)


def close_workshop(workshop_id: str, now: datetime | None = None) -> str:
    """Delete a workshop's registrations once it is over."""
    return reminders.close_workshop(for_job(), workshop_id, now)


def sync_workshops() -> str:
    """Bring workshop registrations, reminders and notices in line with the active content."""
    return changes.sync_job(for_job())


def notify_approvers(broadcast_id: str, reminder: bool = False) -> str:
    """Text a waiting broadcast's approvers (or remind them); nothing once it is decided; safe to run again."""
    return notices.notify_approvers(for_job(), broadcast_id, reminder)


def notify_sender(broadcast_id: str, decision: str) -> str:
    """Text a broadcast's sender that it was approved or sent back; safe to run again."""
    return notices.notify_sender(for_job(), broadcast_id, decision)
