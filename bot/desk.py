"""The desk: staff create, preview, approve, reject, schedule and cancel broadcasts here (the CLI and the
JSON API are thin shells around it). Quiet hours and the two-person rule live here."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from . import fanout
from .audit import AuditLog
from .broadcasts import (
    APPROVED,
    CANCELLED,
    DONE,
    DRAFT,
    PENDING_APPROVAL,
    SENDING,
    Broadcast,
    BroadcastStore,
    DuplicateBroadcast,
    InvalidTransition,
    Plan,
    new_id,
)
from .compose import SENSITIVE_KINDS, BroadcastRequest, ComposeError, check_languages, new_code, render, validate
from .config import Settings
from .content import Content
from .staff import NotAllowed, StaffMember

CODE_ATTEMPTS = 20


def quiet_until(settings: Settings, moment: datetime) -> datetime | None:
    """When quiet hours end, if `moment` falls inside them (None: not quiet)."""
    if settings.quiet_hours is None:
        return None
    start, end = settings.quiet_hours
    local = moment.astimezone(settings.timezone)
    now_time = local.timetz().replace(tzinfo=None)
    overnight = start > end
    inside = (now_time >= start or now_time < end) if overnight else (start <= now_time < end)
    if not inside:
        return None
    day = local.date() + timedelta(days=1) if overnight and now_time >= start else local.date()
    return datetime.combine(day, end, tzinfo=settings.timezone)


class Desk:
    """Broadcast work for staff, with the rules: own schools only, a second approver, quiet hours."""

    def __init__(self, store: BroadcastStore, content: Content, settings: Settings, audit: AuditLog):
        self.store = store
        self.content = content
        self.settings = settings
        self.audit = audit

    def _draft(self, staff: StaffMember, request: BroadcastRequest) -> Broadcast:
        validate(request, self.content)
        schools = request.schools
        if request.corrects:
            original = self.store.get(request.corrects)
            if original.status not in (SENDING, DONE):
                raise ComposeError("only a broadcast that was sent can be corrected")
            schools = original.schools  # a correction reaches exactly the original's recipients
            request = replace(request, schools=schools)
        if request.workshop:
            check_workshop(staff, self.content, request.workshop)
        else:
            staff.check_schools(schools)
        draft = Broadcast(
            id=new_id(), schools=schools, kind=request.kind, texts={}, code="", created_by=staff.id,
            languages=request.languages, fallback_language=request.fallback_language, urgent=request.urgent,
            corrects=request.corrects, verified_by=request.verified_by or None,
            content_version=self.content.version, scheduled_for=request.send_at, workshop=request.workshop,
        )
        code = new_code()
        draft = replace(draft, code=code, texts=render(request, self.content, code))
        audience_languages = set(self.store.plan(draft, strict=False).missing) | set(draft.texts)
        check_languages(request, self.content, audience_languages)
        return draft

    def preview(self, staff: StaffMember, request: BroadcastRequest) -> tuple[Broadcast, Plan]:
        """What the broadcast would say in each language and cost, without storing anything."""
        draft = self._draft(staff, request)
        return draft, self.store.plan(draft, strict=False)

    def create(self, staff: StaffMember, request: BroadcastRequest, now: datetime | None = None) -> Broadcast:
        """Store a broadcast; send (or schedule) it now unless a second staff member must approve it."""
        draft = self._draft(staff, request)
        for _ in range(CODE_ATTEMPTS):
            try:
                broadcast = self.store.create(draft)
                break
            except DuplicateBroadcast:
                code = new_code()
                draft = replace(draft, code=code, texts=render(request, self.content, code))
        else:
            raise ComposeError("could not find a free verification code; try again")
        detail = f"{broadcast.kind} for {', '.join(broadcast.schools)}"
        self.audit.record(_actor(staff), "created", broadcast.id, detail)
        if self.settings.require_approval and broadcast.kind in SENSITIVE_KINDS:
            return self.store.transition(broadcast.id, PENDING_APPROVAL)
        return self._release(broadcast, now)

    def approve(self, approver: StaffMember, broadcast_id: str, now: datetime | None = None) -> Broadcast:
        """A second staff member approves; the broadcast goes out (or waits for its time)."""
        broadcast = self.store.get(broadcast_id)
        if broadcast.status != PENDING_APPROVAL:
            raise InvalidTransition(f"broadcast {broadcast_id} is {broadcast.status}, not waiting for approval")
        if approver.id == broadcast.created_by:
            raise NotAllowed("a broadcast needs a second staff member's approval, not its sender's")
        if not approver.can_approve:
            raise NotAllowed(f"{approver.name} is a sender, not an approver")
        approver.check_schools(broadcast.schools)
        broadcast = self.store.save(replace(broadcast, approved_by=approver.id))
        self.audit.record(_actor(approver), "approved", broadcast.id)
        return self._release(broadcast, now)

    def reject(self, approver: StaffMember, broadcast_id: str, reason: str) -> Broadcast:
        """Send a broadcast back to its sender with a reason."""
        if not reason.strip():
            raise ComposeError("say why, so the sender can fix it")
        broadcast = self.store.get(broadcast_id)
        if broadcast.status != PENDING_APPROVAL:
            raise InvalidTransition(f"broadcast {broadcast_id} is {broadcast.status}, not waiting for approval")
        if approver.id == broadcast.created_by or not approver.can_approve:
            raise NotAllowed("only another staff member who approves can reject")
        approver.check_schools(broadcast.schools)
        self.audit.record(_actor(approver), "rejected", broadcast.id, reason.strip())
        return self.store.transition(broadcast_id, DRAFT)

    def cancel(self, staff: StaffMember, broadcast_id: str) -> Broadcast:
        """Stop a broadcast: before it goes out, or while it is sending."""
        broadcast = self.store.get(broadcast_id)
        staff.check_schools(broadcast.schools)
        if broadcast.status in (DONE, CANCELLED):
            raise InvalidTransition(f"broadcast {broadcast_id} is already {broadcast.status}")
        cancelled = fanout.cancel(self.store.connection, broadcast_id)
        self.audit.record(_actor(staff), "cancelled", broadcast_id)
        return cancelled

    def _release(self, broadcast: Broadcast, now: datetime | None) -> Broadcast:
        now = now or datetime.now(UTC)
        if broadcast.status != APPROVED:
            broadcast = self.store.transition(broadcast.id, APPROVED)
        when = max(broadcast.scheduled_for or now, now)
        if not broadcast.urgent:
            when = quiet_until(self.settings, when) or when
        if when > now + timedelta(seconds=1):
            fanout.schedule(self.store.connection, broadcast.id, when)
            self.audit.record("aviso", "scheduled", broadcast.id, when.isoformat(timespec="minutes"))
        else:
            fanout.enqueue_start(self.store.connection, broadcast.id)
            self.audit.record("aviso", "sending", broadcast.id)
        return self.store.get(broadcast.id)


def check_workshop(staff: StaffMember, content: Content, workshop_id: str) -> None:
    """Staff may message a workshop's registrants when it is at one of their schools (admins: any)."""
    if staff.role == "admin":
        return
    workshop = content.workshop(workshop_id)
    their_names = {content.school_names([code]) for code in staff.schools}
    if workshop is None or workshop.school not in their_names:
        raise NotAllowed(f"{staff.name} may not message the registrants of {workshop_id}")


def _actor(staff: StaffMember) -> str:
    return f"{staff.name} ({staff.id})"
