"""The staff dashboard (/dashboard): home, compose with a live preview, approvals, a broadcast's live
progress, workshops, content, the audit log and the RQ queues. Thin views over the desk and the stores;
sign-in, sessions and CSRF are in web/dashboard/auth.py, the figures in web/dashboard/data.py; the strings are
gettext messages (bot/translations, web/dashboard/labels.py for codes, web/dashboard/locale.py the language)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

from flask import flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext

from bot.broadcasts import calls
from bot.broadcasts import variables as template_variables
from bot.broadcasts.compose import KINDS, SENSITIVE_KINDS, ComposeError, templates
from bot.broadcasts.desk import workshop_schools
from bot.broadcasts.errors import BroadcastError, BroadcastNotFound
from bot.broadcasts.index import Query
from bot.broadcasts.store import CANCELLED, DONE, DRAFT, FAILED, ID_PATTERN, PENDING_APPROVAL, SCHEDULED, SENDING
from bot.people import audience_counts
from bot.people.staff import NotAllowed
from bot.publishing.check import check
from bot.publishing.store import NothingToRollBack, VersionConflict
from bot.web.api import broadcast_json, parse_request, plan_json
from bot.web.dashboard import audit as dashboard_audit  # noqa: F401  (its views join this blueprint)
from bot.web.dashboard import data
from bot.web.dashboard import history as dashboard_history  # noqa: F401  (its views join this blueprint)
from bot.web.dashboard import roster as dashboard_roster  # noqa: F401  (its views join this blueprint)
from bot.web.dashboard.auth import actor, bp, error_page, roles
from bot.web.dashboard.pages import content as _content
from bot.web.dashboard.pages import local as _local
from bot.web.dashboard.pages import page as _page
from bot.workshops import registrations

__all__ = ["bp"]
TERMINAL = (DONE, CANCELLED, FAILED)
# Delivery receipts (Twilio's status callbacks) keep coming after the last message is accepted, for
# minutes when a carrier is slow: a finished broadcast's page keeps counting them this long.
RECEIPTS_WATCH = timedelta(minutes=30)
RECENT = 20
SHORT_LIST = 50  # the home page's waiting and sent-back lists; Approvals pages through all of them


def _rejections(ids: set[str]) -> dict[str, object]:
    """The latest "sent back" audit entry of each of these broadcasts (read from each one's own entries)."""
    found: dict[str, object] = {}
    for broadcast_id in ids:
        entry = next((e for e in g.aviso.audit.about(broadcast_id) if e.action == "rejected"), None)
        if entry is not None:
            found[broadcast_id] = entry
    return found


def _mine(limit: int = RECENT, **filters):
    """A page of this member's schools' broadcasts, read from their schools' indexes."""
    return g.aviso.desk().list(g.staff, Query(None, limit=limit, **filters))


@bp.get("/")
def home():
    """My schools and their subscribers (counts), approvals waiting, broadcasts sent back, recent ones."""
    aviso, content = g.aviso, _content()
    schools = [(code, content.schools.by_code[code].name, audience_counts.per_language(aviso.connection, code))
               for code in data.my_schools(g.staff, content)]
    recent = _mine().broadcasts
    pending = _mine(SHORT_LIST, status=PENDING_APPROVAL).broadcasts if g.staff.can_approve else []
    pending = [b for b in pending if b.created_by != g.staff.id]
    sent_back = _mine(SHORT_LIST, status=DRAFT, sender=g.staff.id).broadcasts
    return _page("home.html", schools=schools, recent=recent, pending=pending, sent_back=sent_back,
                 reasons=_rejections({b.id for b in sent_back}))


# ---- compose -----------------------------------------------------------------------------------------------

def _compose(form=None, preview=None, error=None, status=200, confirm=None):
    content = _content()
    form = form if form is not None else request.args
    if form.get("again"):  # "write it again" after a send-back: the same texts, audience, urgency and time
        found, refused = _load(form["again"])
        if refused:
            return refused
        form = data.again_form(found, g.aviso.settings.timezone, g.aviso.settings.whatsapp_templates)
    corrects = form.get("corrects") or None
    original = None
    if corrects:
        try:
            original = g.aviso.broadcasts.get(corrects)
        except BroadcastNotFound:
            return _not_found()
        owners = g.aviso.desk().owners(original)
        if not g.staff.covers(owners):
            return _not_yours(owners)
    names = templates(content)
    variables = {var: " ".join(name for name, needed in names.items() if var in needed)
                 for var in sorted({var for needed in names.values() for var in needed})}
    workshop = content.workshop(form.get("workshop", "")) if form.get("workshop") else None
    if workshop is not None and not g.staff.covers(workshop_schools(content, workshop)):  # refused before writing
        return error_page(403, gettext("Only an admin can message the registrants of this workshop."))
    mine = data.my_schools(g.staff, content)
    schools = list(original.schools) if original else form.getlist("schools") or (mine if len(mine) == 1 else [])
    return _page("compose.html", status, form=form, original=original, workshop=workshop, templates=names,
                 variables=variables, variable_kinds={v: template_variables.kind_of(content, v) for v in variables},
                 audience=None if workshop else data.audience_languages(g.aviso.connection, schools, content),
                 kinds=[k for k in KINDS if (k == "correction") == bool(original)], sensitive=SENSITIVE_KINDS,
                 schools=[(c, content.schools.by_code[c].name) for c in data.my_schools(g.staff, content)],
                 preview=preview, error=error, settings=g.aviso.settings, confirm=confirm)


def _preview(form) -> dict:
    """The desk's preview of the form: texts, plan (as the JSON API gives them) and the rendered cards."""
    content = _content()
    draft, plan = g.aviso.desk().preview(g.staff, parse_request(data.form_payload(form, content,
                                                                                 g.aviso.settings.timezone)))
    return {"texts": draft.texts, "code_example": draft.code, "plan": plan_json(plan),
            "html": render_template("dashboard/_plan.html", texts=draft.texts, plan=plan, content=content, example=True,
                                    language_name=lambda code: data.language_name(content, code))}


@bp.get("/broadcasts/new")
def compose():
    """The compose form (a correction when ?kind=correction&corrects=<id>)."""
    return _compose()


@bp.post("/broadcasts/preview.json")
def preview_json():
    """The live preview the compose page asks for as the form changes (session + X-CSRF-Token)."""
    form, content = request.form, _content()
    audience = None if form.get("workshop") else data.audience_languages(g.aviso.connection,
                                                                         form.getlist("schools"), content)
    try:
        return jsonify(audience=audience, **_preview(form))
    except (ComposeError, BroadcastError, NotAllowed) as exc:
        problem = data.refusal(exc, content)
        return jsonify(error=problem.message, audience=audience), problem.status


@bp.post("/broadcasts/new")
def compose_post():
    """Preview (without JavaScript) or create: it is sent, scheduled, or waits for a second staff member."""
    form = request.form
    try:
        if form.get("action") == "preview":
            return _compose(form, preview=_preview(form))
        payload = data.form_payload(form, _content(), g.aviso.settings.timezone)
        needs_approval = g.aviso.settings.require_approval and payload["kind"] in SENSITIVE_KINDS
        if not needs_approval and form.get("confirmed") != "1":  # "Send to 6 families?" before it goes out
            shown = _preview(form)
            return _compose(form, preview=shown, confirm=shown["plan"]["messages"])
        broadcast = g.aviso.desk().create(g.staff, parse_request(payload))
    except (ComposeError, BroadcastError, NotAllowed) as exc:
        problem = data.refusal(exc, _content())
        return _compose(form, error=problem.message, status=problem.status)
    if broadcast.status == PENDING_APPROVAL:
        flash(gettext("Saved. It waits for a second staff member's approval."))
    elif broadcast.status == SCHEDULED:
        when = broadcast.starts_at or broadcast.scheduled_for
        flash(gettext("Scheduled. It goes out at %(time)s.", time=_local(when)))
    else:
        flash(gettext("Sending now."))
    return redirect(url_for("dashboard.broadcast", broadcast_id=broadcast.id))


# ---- one broadcast -------------------------------------------------------------------------------------------

def _not_found():
    return error_page(404, gettext("There is no such broadcast (or it has expired)."))


def _not_yours(owners):
    return error_page(403, gettext("You may not send to %(schools)s: it is not one of your schools.",
                                   schools=", ".join(owners)))


def _load(broadcast_id: str):
    """The broadcast, if this member may see it; else an error page."""
    if not ID_PATTERN.match(broadcast_id):
        return None, _not_found()
    try:
        broadcast = g.aviso.broadcasts.get(broadcast_id)
    except BroadcastNotFound:
        return None, _not_found()
    owners = g.aviso.desk().owners(broadcast)
    if not g.staff.covers(owners):
        return None, _not_yours(owners)
    return broadcast, None


def receipts_open(broadcast, now: datetime | None = None) -> bool:
    """Whether a finished broadcast may still get delivery receipts worth showing as they come."""
    finished = broadcast.finished_at
    return (broadcast.status in TERMINAL and finished is not None
            and (now or datetime.now(UTC)) - finished < RECEIPTS_WATCH)


def _progress_context(broadcast) -> dict:
    outcomes = g.aviso.broadcasts.outcomes(broadcast.id)
    return {"broadcast": broadcast, "outcomes": outcomes, "settled": data.settled(outcomes),
            "receipts_open": receipts_open(broadcast), "calls": calls.counts(g.aviso.connection, broadcast.id),
            "failed_total": sum(outcomes.failed.values()), "skipped_total": sum(outcomes.skipped.values())}


@bp.get("/broadcasts/<broadcast_id>")
def broadcast(broadcast_id: str):
    """Texts, state, full preview for an approver, live progress, cancel, send a correction."""
    found, refused = _load(broadcast_id)
    if refused:
        return refused
    waiting = found.status in (DRAFT, PENDING_APPROVAL)
    desk = g.aviso.desk()
    plan = None
    if waiting:
        plan = desk.with_calls(found, g.aviso.broadcasts.plan(found, strict=False, district=desk.district))
    reason = _rejections({found.id}).get(found.id) if found.status == DRAFT else None
    snapshots = data.progress(g.aviso.connection, found.id)
    corrections = g.aviso.broadcasts.corrections_of(found.id)  # the original's page leads to what corrected it
    goes_out = g.aviso.desk().goes_out(found.scheduled_for, found.urgent) if waiting else None
    later = goes_out if goes_out and goes_out > datetime.now(UTC) + timedelta(minutes=1) else None
    return _page("broadcast.html", plan=plan, reason=reason, snapshots=snapshots, terminal=TERMINAL,
                 corrections=corrections, goes_out_later=later,
                 can_approve=(found.status == PENDING_APPROVAL and g.staff.can_approve
                              and g.staff.id != found.created_by),
                 can_correct=found.status in (SENDING, DONE), **_progress_context(found))


@bp.get("/broadcasts/<broadcast_id>/progress.json")
def progress(broadcast_id: str):
    """Counts so far (and their history for the chart), polled by the broadcast page while it fans out."""
    found, refused = _load(broadcast_id)
    if refused:
        return refused
    context = _progress_context(found)
    started = found.status not in (DRAFT, PENDING_APPROVAL)
    snapshots = data.record_progress(g.aviso.connection, found.id, context["outcomes"]) if started else []
    return jsonify(status=found.status, terminal=found.status in TERMINAL, receipts_open=context["receipts_open"],
                   outcomes=asdict(context["outcomes"]),
                   broadcast=broadcast_json(found), snapshots=snapshots,
                   html=render_template("dashboard/_progress.html", **context))


def _act(broadcast_id: str, action, done):
    found, refused = _load(broadcast_id)
    if refused:
        return refused
    try:
        result = action(found)
    except (ComposeError, BroadcastError, NotAllowed) as exc:
        problem = data.refusal(exc, _content())
        return error_page(problem.status, problem.message)
    flash(done(result) if callable(done) else done)
    return redirect(url_for("dashboard.broadcast", broadcast_id=broadcast_id))


@bp.post("/broadcasts/<broadcast_id>/approve")
def approve(broadcast_id: str):
    """A second staff member approves: it goes out (or waits for its time)."""
    def said(approved) -> str:
        if approved.status == SCHEDULED:
            when = approved.starts_at or approved.scheduled_for
            return gettext("Approved. It goes out at %(time)s.", time=_local(when))
        return gettext("Approved. It is going out now.")
    return _act(broadcast_id, lambda b: g.aviso.desk().approve(g.staff, b.id), said)


@bp.post("/broadcasts/<broadcast_id>/reject")
def reject(broadcast_id: str):
    """Send it back to its sender with a reason (shown on their home page and the broadcast's page)."""
    reason = request.form.get("reason", "")
    return _act(broadcast_id, lambda b: g.aviso.desk().reject(g.staff, b.id, reason),
                gettext("Sent back to its sender with your reason."))


@bp.post("/broadcasts/<broadcast_id>/cancel")
def cancel(broadcast_id: str):
    """Stop it: before it goes out, or while it is sending."""
    return _act(broadcast_id, lambda b: g.aviso.desk().cancel(g.staff, b.id), gettext("Cancelled."))


@bp.get("/approvals")
def approvals():
    """Broadcasts waiting for a second staff member."""
    found = _mine(status=PENDING_APPROVAL, cursor=request.args.get("cursor") or None)
    return _page("approvals.html", waiting=found.broadcasts, next_cursor=found.next_cursor)


# ---- workshops, content, audit, queues --------------------------------------------------------------------

@bp.get("/workshops")
def workshops():
    """Upcoming workshops with their registrations (counts only)."""
    content, now = _content(), datetime.now(UTC)
    names = {content.schools.by_code[c].name for c in data.my_schools(g.staff, content)}
    rows = [(w, registrations.counts(g.aviso.connection, w.id)) for w in content.workshops
            if w.ends > now and (g.staff.role == "admin" or not w.school or w.school in names)]
    # "Message the registrants" only where the desk would let this member send (online: admins only)
    may_message = {w.id for w, _ in rows if g.staff.covers(workshop_schools(content, w))}
    return _page("workshops.html", rows=rows, may_message=may_message)


def _folder_report():
    return check(g.aviso.settings.content_dir)


@bp.get("/content")
def content_page():
    """The active content version, who published it and when, each language's review."""
    content = _content()
    window, rows = data.reviews(content, date.today())
    folder = _folder_report() if g.staff.role == "admin" else None
    status_info = g.aviso.content.status()
    if status_info["published_at"]:
        status_info["published_at"] = _local(datetime.fromisoformat(status_info["published_at"]))
    return _page("content.html", status_info=status_info, window=window, reviews=rows, folder=folder,
                 settings=g.aviso.settings, default_language=content.language_name(content.default_language))


@bp.post("/content/publish")
@roles("admin")
def content_publish():
    """Validate the content folder and make it live everywhere (admins)."""
    report = _folder_report()
    if report.errors:
        return error_page(400, ngettext("The content folder has %(num)d problem; nothing was published: %(first)s",
                                        "The content folder has %(num)d problems; nothing was published. First: "
                                        "%(first)s", len(report.errors), first=str(report.errors[0])))
    try:
        version = g.aviso.content.publish(g.aviso.shipped_content(), by=actor(g.staff))
    except VersionConflict:
        return error_page(409, gettext("That version number was published before with different content. Bump "
                                       "the version first."))
    g.aviso.audit.record(actor(g.staff), "published", f"content {version}")
    flash(gettext("Version %(version)s is live.", version=version))
    return redirect(url_for("dashboard.content_page"))


@bp.post("/content/rollback")
@roles("admin")
def content_rollback():
    """Return to the previously published version (admins)."""
    try:
        version = g.aviso.content.rollback()
    except NothingToRollBack:
        return error_page(409, gettext("There is no earlier version to roll back to."))
    g.aviso.audit.record(actor(g.staff), "rolled back", f"content {version}")
    flash(gettext("Rolled back: version %(version)s is live.", version=version))
    return redirect(url_for("dashboard.content_page"))


@bp.get("/queues")
@roles("admin")
def queues_page():
    """RQ: jobs waiting, running, scheduled, deferred and failed per queue; the workers (admins)."""
    rows, workers = data.queue_report(g.aviso.connection)
    return _page("queues.html", rows=rows, workers=workers)
