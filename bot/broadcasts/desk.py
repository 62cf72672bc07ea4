"""The desk: staff create, preview, approve, reject, schedule and cancel broadcasts here (the CLI and the
JSON API are thin shells around it). Quiet hours and the two-person rule live here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.broadcasts import calls, fanout, notices
from bot.broadcasts.compose import (
    SENSITIVE_KINDS,
    BroadcastRequest,
    ComposeError,
    bodies,
    check_languages,
    new_code,
    render,
    validate,
    whatsapp_templates,
)
from bot.broadcasts.errors import BroadcastNotFound, DuplicateBroadcast, InvalidTransition
from bot.broadcasts.index import Query
from bot.broadcasts.lists import Page, page
from bot.broadcasts.plan import Plan
from bot.broadcasts.store import APPROVED, CANCELLED, DONE, DRAFT, PENDING_APPROVAL, Broadcast, BroadcastStore, new_id
from bot.config import Settings
from bot.content.model import Content, Workshop
from bot.people.audit import AuditLog
from bot.people.staff import NotAllowed, StaffMember

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
        self.district = frozenset(content.schools.by_code)  # a broadcast to all of them reads district counts

    def get(self, broadcast_id: str) -> Broadcast:
        """The broadcast with this id, or BroadcastNotFound saying so."""
        try:
            return self.store.get(broadcast_id)
        except BroadcastNotFound:
            raise BroadcastNotFound(f"no broadcast with id {broadcast_id}") from None

    def owners(self, broadcast: Broadcast) -> tuple[str, ...]:
        """The schools whose staff may see and act on a broadcast: its own, its workshop's or its original's."""
        if broadcast.schools:
            return broadcast.schools
        if broadcast.workshop:  # stored before workshop broadcasts kept their schools
            workshop = self.content.workshop(broadcast.workshop)
            return workshop_schools(self.content, workshop) if workshop else ()
        if broadcast.corrects:
            try:
                return self.owners(self.store.get(broadcast.corrects))
            except BroadcastNotFound:
                return ()
        return ()

    def check_access(self, staff: StaffMember, broadcast: Broadcast) -> None:
        """Raise NotAllowed unless the broadcast belongs to the staff member's schools (admins: any)."""
        staff.check_schools(self.owners(broadcast))

    def show(self, staff: StaffMember, broadcast_id: str) -> Broadcast:
        """One broadcast, if it belongs to the staff member's schools."""
        broadcast = self.get(broadcast_id)
        self.check_access(staff, broadcast)
        return broadcast

    def recent(self, staff: StaffMember, limit: int) -> list[Broadcast]:
        """The newest broadcasts of the staff member's schools (read from their schools' indexes)."""
        return self.list(staff, Query(None if staff.role == "admin" else staff.schools, limit=limit)).broadcasts

    def list(self, staff: StaffMember, query: Query) -> Page:
        """One page of the broadcasts a query asks for, only of the staff member's schools."""
        if query.schools is None and staff.role != "admin":
            query = replace(query, schools=staff.schools)
        elif query.schools is not None:
            staff.check_schools(query.schools)
        return page(self.store.connection, query)

    def _draft(self, staff: StaffMember, request: BroadcastRequest, now: datetime | None = None,
               ) -> tuple[Broadcast, Callable[[str], Broadcast]]:
        """The broadcast as it would be stored, and how to write its texts again under another code."""
        workshop = self.content.workshop(request.workshop) if request.workshop else None
        corrects_code = ""
        if request.corrects and request.kind == "correction":
            original = self.get(request.corrects)
            corrects_code = original.code
            if original.started_at is None:  # cancelled or failed part way still reached some families
                raise ComposeError("only a broadcast that was sent can be corrected; this one never started")
            # a correction reaches exactly the original's recipients, so it belongs to the original's schools;
            # it is urgent when the original was: a wrong alert sent at night is not corrected next morning
            request = replace(request, schools=self.owners(original), urgent=request.urgent or original.urgent)
        elif workshop is not None:  # the workshop's school owns the message, whatever schools were named
            request = replace(request, schools=workshop_schools(self.content, workshop))
        validate(request, self.content, now)
        schools = request.schools
        staff.check_schools(schools)
        draft = Broadcast(
            id=new_id(), schools=schools, kind=request.kind, texts={}, code="", created_by=staff.id,
            languages=request.languages, fallback_language=request.fallback_language, urgent=request.urgent,
            corrects=request.corrects, verified_by=request.verified_by or None,
            content_version=self.content.version, scheduled_for=request.send_at, workshop=request.workshop,
        )
        code, on = new_code(), self._goes_out(request, now)
        def written(fresh: str) -> Broadcast:  # the texts and WhatsApp templates quote the code
            texts = render(request, self.content, fresh, on=on, corrects_code=corrects_code)
            return replace(draft, code=fresh, texts=texts, whatsapp_templates=whatsapp_templates(
                request, self.content, self.settings.whatsapp_templates, texts, fresh))

        draft = replace(written(code), bodies=bodies(request, self.content))
        missing = self.store.plan(draft, strict=False, district=self.district).missing
        audience_languages = set(missing) | set(draft.texts)
        check_languages(request, self.content, audience_languages)
        return draft, written

    def preview(self, staff: StaffMember, request: BroadcastRequest) -> tuple[Broadcast, Plan]:
        """What the broadcast would say in each language and cost, without storing anything."""
        draft, _ = self._draft(staff, request)
        return draft, self.with_calls(draft, self.store.plan(draft, strict=False, district=self.district))

    def with_calls(self, broadcast: Broadcast, plan: Plan) -> Plan:
        """A plan with the calls an urgent broadcast places, and how long they take at the account's limit."""
        if not broadcast.urgent:
            return plan
        found, rate = len(calls.callees(self.store.connection, self.store, broadcast)), self.settings.calls_per_second
        return replace(plan, calls=found, calls_seconds=calls.duration_seconds(found, rate), calls_per_second=rate)

    def create(self, staff: StaffMember, request: BroadcastRequest, now: datetime | None = None) -> Broadcast:
        """Store a broadcast; send (or schedule) it now unless a second staff member must approve it."""
        draft, written = self._draft(staff, request, now)
        for _ in range(CODE_ATTEMPTS):
            try:
                broadcast = self.store.create(draft)
                break
            except DuplicateBroadcast:  # the frame holds the code: write it again with a new one
                draft = replace(written(new_code()), bodies=draft.bodies)
        else:
            raise ComposeError("could not find a free verification code; try again")
        detail = f"{broadcast.kind} for {', '.join(broadcast.schools)}"
        self.audit.record(_actor(staff), "created", broadcast.id, detail, broadcast.schools)
        if self.settings.require_approval and broadcast.kind in SENSITIVE_KINDS:
            waiting = self.store.transition(broadcast.id, PENDING_APPROVAL)
            notices.waiting(self.store.connection, waiting, self.settings.approval_reminder_minutes)
            return waiting
        return self._release(broadcast, now)

    def approve(self, approver: StaffMember, broadcast_id: str, now: datetime | None = None) -> Broadcast:
        """A second staff member approves; the broadcast goes out (or waits for its time)."""
        broadcast = self.get(broadcast_id)
        self.check_access(approver, broadcast)
        if broadcast.status != PENDING_APPROVAL:
            raise InvalidTransition(f"broadcast {broadcast_id} is {broadcast.status}, not waiting for approval")
        if approver.id == broadcast.created_by:
            raise NotAllowed("a broadcast needs a second staff member's approval, not its sender's")
        if not approver.can_approve:
            raise NotAllowed(f"{approver.name} is a sender, not an approver")
        broadcast = self.store.save(replace(broadcast, approved_by=approver.id))
        self.audit.record(_actor(approver), "approved", broadcast.id, schools=broadcast.schools)
        notices.decided(self.store.connection, broadcast, notices.APPROVED)
        return self._release(broadcast, now)

    def reject(self, approver: StaffMember, broadcast_id: str, reason: str) -> Broadcast:
        """Send a broadcast back to its sender with a reason."""
        if not reason.strip():
            raise ComposeError("say why, so the sender can fix it")
        broadcast = self.get(broadcast_id)
        self.check_access(approver, broadcast)
        if broadcast.status != PENDING_APPROVAL:
            raise InvalidTransition(f"broadcast {broadcast_id} is {broadcast.status}, not waiting for approval")
        if approver.id == broadcast.created_by or not approver.can_approve:
            raise NotAllowed("only another staff member who approves can reject")
        self.audit.record(_actor(approver), "rejected", broadcast.id, reason.strip(), broadcast.schools)
        sent_back = self.store.transition(broadcast_id, DRAFT)
        notices.decided(self.store.connection, sent_back, notices.SENT_BACK)
        return sent_back

    def cancel(self, staff: StaffMember, broadcast_id: str) -> Broadcast:
        """Stop a broadcast: before it goes out, or while it is sending."""
        broadcast = self.get(broadcast_id)
        self.check_access(staff, broadcast)
        if broadcast.status in (DONE, CANCELLED):
            raise InvalidTransition(f"broadcast {broadcast_id} is already {broadcast.status}")
        cancelled = fanout.cancel(self.store.connection, broadcast_id)
        self.audit.record(_actor(staff), "cancelled", broadcast_id, schools=broadcast.schools)
        return cancelled

    def _goes_out(self, request: BroadcastRequest, now: datetime | None) -> datetime:
        """The local moment a broadcast is expected to go out: its time, or now; after quiet hours unless urgent."""
        return self.goes_out(request.send_at, request.urgent, now)

    def goes_out(self, scheduled_for: datetime | None, urgent: bool, now: datetime | None = None) -> datetime:
        """When a broadcast released at `now` goes out (local time): its time or now, after quiet hours unless
        urgent. The approval page and the notice after approving say it."""
        now = now or datetime.now(UTC)
        when = max(scheduled_for or now, now)
        if not urgent:
            when = quiet_until(self.settings, when) or when
        return when.astimezone(self.settings.timezone)

    def _release(self, broadcast: Broadcast, now: datetime | None) -> Broadcast:
        now = now or datetime.now(UTC)
        if broadcast.status != APPROVED:
            broadcast = self.store.transition(broadcast.id, APPROVED)
        when = self.goes_out(broadcast.scheduled_for, broadcast.urgent, now)
        if when > now + timedelta(seconds=1):
            fanout.schedule(self.store.connection, broadcast.id, when)
            self.audit.record("aviso", "scheduled", broadcast.id, when.isoformat(timespec="minutes"), broadcast.schools)
        else:
            fanout.enqueue_start(self.store.connection, broadcast.id)
            self.audit.record("aviso", "sending", broadcast.id, schools=broadcast.schools)
        return self.store.get(broadcast.id)


def workshop_schools(content: Content, workshop: Workshop) -> tuple[str, ...]:
    """The codes of the school a workshop is at (content names it; an online workshop has none)."""
    if not workshop.school:
        return ()
    return tuple(code for code, school in content.schools.by_code.items() if school.name == workshop.school)


def _actor(staff: StaffMember) -> str:
    return f"{staff.name} ({staff.id})"
