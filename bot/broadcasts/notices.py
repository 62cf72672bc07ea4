"""Notices to staff by SMS, through the same sender as everything else: a school's approvers when a broadcast
waits for their approval (and a reminder a few minutes later if it still waits), and the sender when theirs
is approved or sent back. Each in the staff member's dashboard language.

The desk queues them (RQ jobs by dotted name, bot.store.queues); each job reloads the broadcast, does nothing
once it no longer applies, and texts each person once however often it runs."""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from rq import Queue

from bot.broadcasts.errors import BroadcastNotFound
from bot.broadcasts.store import PENDING_APPROVAL, Broadcast, BroadcastStore
from bot.dashboard_languages import N_, translate
from bot.people.identity import SMS, Address
from bot.people.staff import StaffMember
from bot.store import keys, queues

log = logging.getLogger(__name__)

APPROVED, SENT_BACK = "approved", "sent_back"
ONCE_SECONDS = 7 * 24 * 3600  # a notice's "already texted" mark outlives any retry of its job
RESULT_TTL = 600

# Translators: an SMS to an approver: plain ASCII keeps it short (GSM-7). %(link)s is the broadcast's page.
WAITING = N_("Aviso: %(sender)s's broadcast for %(schools)s waits for your approval. %(link)s")
# Translators: an SMS to an approver, a few minutes after the first one (plain ASCII).
REMINDER = N_("Aviso reminder: %(sender)s's broadcast for %(schools)s still waits for approval. %(link)s")
# Translators: an SMS to a broadcast's sender (plain ASCII).
WAS_APPROVED = N_("Aviso: %(approver)s approved your broadcast for %(schools)s. %(link)s")
# Translators: an SMS to a broadcast's sender; the reason is on the page the link opens (plain ASCII).
WAS_SENT_BACK = N_("Aviso: %(approver)s sent back your broadcast for %(schools)s. The reason: %(link)s")


def waiting(connection: redis.Redis, broadcast: Broadcast, reminder_minutes: int) -> None:
    """Queue the approvers' notice now (urgent queue) and their reminder in `reminder_minutes` (0: none)."""
    queue = Queue(queues.URGENT, connection=connection)
    queue.enqueue(queues.NOTIFY_APPROVERS, broadcast.id, False, result_ttl=RESULT_TTL)
    if reminder_minutes > 0:
        queue.enqueue_in(timedelta(minutes=reminder_minutes), queues.NOTIFY_APPROVERS, broadcast.id, True,
                         result_ttl=RESULT_TTL)


def decided(connection: redis.Redis, broadcast: Broadcast, decision: str) -> None:
    """Queue the sender's notice that their broadcast was approved or sent back."""
    Queue(queues.URGENT, connection=connection).enqueue(queues.NOTIFY_SENDER, broadcast.id, decision,
                                                        result_ttl=RESULT_TTL)


def notify_approvers(aviso, broadcast_id: str, reminder: bool) -> str:
    """Text the approvers of a broadcast still waiting for approval (the job queues.NOTIFY_APPROVERS)."""
    broadcast = _load(aviso, broadcast_id)
    if broadcast is None or broadcast.status != PENDING_APPROVAL:
        return "already decided"
    sender = aviso.roster.get(broadcast.created_by)
    owners = aviso.desk().owners(broadcast)
    approvers = [m for m in aviso.roster.approvers_of(owners) if m.id != broadcast.created_by]
    message = REMINDER if reminder else WAITING
    texted = sum(_text(aviso, member, broadcast, "reminder" if reminder else "waiting", message,
                       sender=sender.name if sender else broadcast.created_by) for member in approvers)
    log.info("approval notice for broadcast %s: %d approver(s) texted", broadcast_id, texted)
    return f"texted {texted} approver(s)"


def notify_sender(aviso, broadcast_id: str, decision: str) -> str:
    """Text a broadcast's sender that it was approved or sent back (the job queues.NOTIFY_SENDER)."""
    broadcast = _load(aviso, broadcast_id)
    sender = aviso.roster.get(broadcast.created_by) if broadcast else None
    if sender is None:
        return "nobody to tell"
    approver_id = broadcast.approved_by if decision == APPROVED else _sent_back_by(aviso, broadcast_id)
    approver = aviso.roster.get(approver_id) if approver_id else None
    message = WAS_APPROVED if decision == APPROVED else WAS_SENT_BACK
    texted = _text(aviso, sender, broadcast, decision, message, approver=approver.name if approver else "Aviso")
    return "texted the sender" if texted else "already told"


def _load(aviso, broadcast_id: str) -> Broadcast | None:
    try:
        return BroadcastStore(aviso.connection).get(broadcast_id)
    except BroadcastNotFound:
        return None


def _sent_back_by(aviso, broadcast_id: str) -> str | None:
    """The id of who last sent it back, from the audit entry ("Name (id)")."""
    entry = next((e for e in aviso.audit.about(broadcast_id) if e.action == "rejected"), None)
    return entry.actor.rsplit("(", 1)[-1].rstrip(")") if entry and entry.actor.endswith(")") else None


def _text(aviso, member: StaffMember, broadcast: Broadcast, what: str, message: str, **values) -> bool:
    """Text one staff member once per broadcast and notice, however often the job runs."""
    mark = keys.APPROVAL_NOTICE.format(id=broadcast.id, what=f"{what}:{member.id}")
    if not aviso.connection.set(mark, 1, nx=True, ex=ONCE_SECONDS):
        return False
    phone = aviso.roster.phone_of(member.id)
    if not phone:
        return False
    language = member.language or aviso.settings.dashboard_languages[0]
    link = f"{aviso.settings.public_base_url}/dashboard/broadcasts/{broadcast.id}"
    body = translate(language, message, schools=", ".join(broadcast.schools) or "-", link=link, **values)
    try:
        aviso.sender.send(Address(SMS, phone), body)
    except Exception:
        aviso.connection.delete(mark)  # not texted: RQ's retry tries again
        raise
    return True

