"""What the staff dashboard shows, computed: counts (never numbers), the compose form read into an API
request, the desk's refusals in the staff member's words, progress snapshots, review dates, queues.
Plain functions over Redis and content; the views in bot/web/dashboard/views.py are thin shells around them."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext, lazy_gettext
from rq import Queue, Worker
from werkzeug.datastructures import MultiDict

from bot import whatsapp_templates
from bot.broadcasts import variables as template_variables
from bot.broadcasts.compose import ComposeError, MissingTranslation, templates
from bot.broadcasts.errors import BroadcastError, InvalidTransition, OriginalUnavailable
from bot.broadcasts.errors import MissingTranslation as PlanMissingTranslation
from bot.broadcasts.outcomes import Outcomes
from bot.content.model import Content
from bot.people import audience_counts
from bot.people.staff import NotAllowed, StaffMember
from bot.publishing.check import DEFAULT_REVIEW_WINDOW_DAYS
from bot.publishing.reviews import review_of
from bot.store import keys, queues
from bot.web.dashboard.labels import label

# Seven or more digits in a row (with the usual separators): what could be a phone number in free text.
PHONE_LIKE = re.compile(r"\+?\d(?:[\s().-]*\d){6,}")
# An ISO date or time (2026-12-04, 2026-12-04T07:00-08:00): the audit log's times are not phone numbers.
ISO_TIME = re.compile(r"(?<![\d+])\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:\d{2})?)?(?!\d)")


# ---- who sees what -------------------------------------------------------------------------------------

def my_schools(staff: StaffMember, content: Content) -> list[str]:
    """The school codes a member works for (an admin: every school)."""
    if staff.role == "admin":
        return sorted(content.schools.by_code)
    return [code for code in staff.schools if code in content.schools.by_code]


def mask_numbers(value: str) -> str:
    """Free text with anything that looks like a phone number hidden."""
    value = value or ""
    kept, at = [], 0
    for moment in ISO_TIME.finditer(value):
        kept += [PHONE_LIKE.sub("•••", value[at:moment.start()]), moment.group()]
        at = moment.end()
    return "".join([*kept, PHONE_LIKE.sub("•••", value[at:])])


# ---- progress ----------------------------------------------------------------------------------------------

def settled(outcomes: Outcomes) -> int:
    """Recipients with a final outcome so far."""
    return outcomes.sent + sum(outcomes.failed.values()) + sum(outcomes.skipped.values())


def record_progress(connection, broadcast_id: str, outcomes: Outcomes) -> list[list[float]]:
    """Add a snapshot of the counts when they changed; every snapshot so far, oldest first."""
    name = keys.DASHBOARD_PROGRESS.format(id=broadcast_id)
    point = [outcomes.sent, outcomes.delivered, sum(outcomes.failed.values()), sum(outcomes.skipped.values())]
    last = connection.lindex(name, -1)
    if last is None or json.loads(last)[1:] != point:
        pipe = connection.pipeline(transaction=True)
        pipe.rpush(name, json.dumps([round(time.time(), 1), *point]))
        pipe.ltrim(name, -keys.DASHBOARD_PROGRESS_MAX, -1)
        pipe.expire(name, keys.BROADCAST_RECIPIENT_TTL_SECONDS)
        pipe.execute()
    return progress(connection, broadcast_id)


def progress(connection, broadcast_id: str) -> list[list[float]]:
    """The recorded snapshots: [epoch seconds, sent, delivered, failed, skipped]."""
    return [json.loads(raw) for raw in connection.lrange(keys.DASHBOARD_PROGRESS.format(id=broadcast_id), 0, -1)]


# ---- the compose form ------------------------------------------------------------------------------------

def form_payload(form, content: Content, timezone) -> dict:
    """The compose form as the JSON API's request (so api.parse_request reads both the same way)."""
    kind = form.get("kind", "")
    payload: dict = {"schools": form.getlist("schools"), "kind": kind, "urgent": form.get("urgent") == "1",
                     "fallback_language": form.get("fallback_language") or None,
                     "workshop": form.get("workshop") or None,
                     "whatsapp_templates": None if form.get("whatsapp_template", "1") == "1" else False}
    if form.getlist("languages"):  # only families reading these (kept when a broadcast is written again)
        payload["languages"] = form.getlist("languages")
    if kind == "verified":
        payload["verified_by"] = form.get("verified_by", "").strip()
    if kind == "correction":
        payload["corrects"] = form.get("corrects") or None
    if form.get("source", "template") == "template":
        name = form.get("template", "")
        payload["template"] = name or None
        payload["variables"] = {var: _variable(form, content, var) for var in templates(content).get(name, [])}
    else:
        payload["texts"] = {code: form.get(f"text.{code}", "").strip() for code in content.languages
                            if form.get(f"text.{code}", "").strip()}
    if form.get("when") == "later":
        local = form.get("send_at", "").strip()
        try:
            moment = datetime.fromisoformat(local)
        except ValueError:
            raise ComposeError("send_at must be a date and time") from None
        payload["send_at"] = (moment if moment.tzinfo else moment.replace(tzinfo=timezone)).isoformat()
    return payload


def again_form(broadcast, timezone, configured: tuple = ()) -> MultiDict:
    """The compose form filled from a broadcast sent back ("write it again"): its texts as written in each
    language, schools, kind, who verified it, the alert it corrects, languages, fallback, urgency, time; "no
    WhatsApp template" only when one was configured (AVISO_WHATSAPP_TEMPLATES) and it went without."""
    declined = bool(whatsapp_templates.for_kind(configured, broadcast.kind, list(broadcast.texts)))
    fields = [("kind", broadcast.kind), ("source", "custom"), ("verified_by", broadcast.verified_by or ""),
              ("fallback_language", broadcast.fallback_language or ""), ("urgent", "1" if broadcast.urgent else ""),
              ("whatsapp_template", "0" if declined and not broadcast.whatsapp_templates else "1")]
    fields += [("schools", code) for code in broadcast.schools]
    fields += [("languages", code) for code in broadcast.languages or ()]
    fields += [(f"text.{code}", text) for code, text in broadcast.bodies.items()]
    for name in ("corrects", "workshop"):
        if getattr(broadcast, name):
            fields.append((name, getattr(broadcast, name)))
    if broadcast.scheduled_for:
        local = broadcast.scheduled_for.astimezone(timezone).replace(tzinfo=None)
        fields += [("when", "later"), ("send_at", local.isoformat(timespec="minutes"))]
    return MultiDict(fields)


def audience_languages(connection, schools: list[str], content: Content) -> list[str] | None:
    """The content languages the chosen schools' families read (from the audience counts), so the form asks
    for free-text variables only in those; None when no school is chosen (every language is asked)."""
    chosen = [code for code in schools if code in content.schools.by_code]
    if not chosen:
        return None
    read = {language for code in chosen for language in audience_counts.per_language(connection, code)}
    return [code for code in content.languages if code in read]


def _variable(form, content: Content, name: str):
    """A template variable from the form: free text per language (var.NAME.LANG), anything else once."""
    if template_variables.kind_of(content, name) == template_variables.TEXT:
        return {code: form.get(f"var.{name}.{code}", "").strip() for code in content.languages
                if form.get(f"var.{name}.{code}", "").strip()}
    return form.get(f"var.{name}", "").strip()


@dataclass(frozen=True)
class Refusal:
    """A desk refusal as the dashboard says it: HTTP status and the message in the staff member's language."""

    status: int
    message: str


# ComposeError messages (broadcasts.compose, broadcasts.desk) -> what the dashboard says (in English).
_COMPOSE_MESSAGES = (
    (r"^kind must be", lazy_gettext("Choose a kind.")),
    (r"^name at least one school", lazy_gettext("Choose at least one school.")),
    (r"^unknown school code", lazy_gettext("One of the schools is unknown.")),
    (r"^a verified alert must say who verified", lazy_gettext("A verified alert must say who verified it.")),
    (r"^a correction must name", lazy_gettext("A correction must name the alert it corrects.")),
    (r"^give either a template", lazy_gettext("Choose a template, or write your own text (not both).")),
    (r"^unknown template", lazy_gettext("Choose a template from the list.")),
    (r"^template \S+ needs: (?P<names>.+)$", lazy_gettext("Fill in: %(names)s.")),
    (r"^(?P<name>\S+) is free text", lazy_gettext("Write %(name)s in each language the families read.")),
    (r"^(?P<name>\S+) is a date:", lazy_gettext("%(name)s: choose a date.")),
    (r"^(?P<name>\S+) is a time:", lazy_gettext("%(name)s: give a time like 7:45 am or 19:45.")),
    (r"^(?P<name>\S+) is a date and time:", lazy_gettext("%(name)s: choose a date and a time.")),
    (r"^verified_by is too long",
     lazy_gettext("Who verified it: 80 characters at most (it goes into every family's message).")),
    (r"too long", lazy_gettext("A text is too long for a safety alert.")),
    (r"^unknown (fallback )?language", lazy_gettext("Unknown language.")),
    (r"^only a broadcast that was sent can be corrected",
     lazy_gettext("Only an alert that went out can be corrected.")),
    (r"^the fallback language", lazy_gettext("The fallback language has no text either.")),
    (r"^send_at", lazy_gettext("Give a date and time to schedule it.")),
    (r"^the send time has passed", lazy_gettext("That time has passed. Choose a later one, or send it now.")),
    (r"^the send time is too far ahead",
     lazy_gettext("That time is too far ahead: schedule it at most 300 days from now.")),
    (r"^could not find a free verification code", lazy_gettext("Something was busy. Try again.")),
    (r"^say why", lazy_gettext("Say why, so the sender can fix it.")),
)


def refusal(exc: Exception, content: Content) -> Refusal:
    """Translate what the desk refused into the staff member's language."""
    if isinstance(exc, MissingTranslation | PlanMissingTranslation):
        names = ", ".join(language_name(content, code) for code in exc.languages)
        return Refusal(422, gettext("No text for %(languages)s. Add a translation, or choose what these families "
                                    "receive.", languages=names))
    if isinstance(exc, NotAllowed):
        message = str(exc)
        outside = re.search(r"may not send to (?P<schools>.+)$", message)
        if outside:
            return Refusal(403, gettext("You may not send to %(schools)s: it is not one of your schools.",
                                        schools=outside["schools"]))
        if "second staff member" in message:
            return Refusal(403, gettext("A second staff member must approve this, not the person who wrote it."))
        return Refusal(403, gettext("Only another staff member with the approver role can approve or send back."))
    if isinstance(exc, InvalidTransition):
        return Refusal(409, gettext("This broadcast changed in the meantime. Reload the page to see where it is now."))
    if isinstance(exc, OriginalUnavailable):
        return Refusal(400, gettext("The original alert cannot be corrected: it was never sent or its records "
                                    "expired."))
    if isinstance(exc, ComposeError | BroadcastError):
        for pattern, message in _COMPOSE_MESSAGES:
            found = re.search(pattern, str(exc))
            if found:
                values = {k: v for k, v in found.groupdict().items() if v}
                if "name" in values:  # a template variable: as the form labels it
                    values["name"] = str(label("variable", values["name"]))
                return Refusal(400, str(message) % values if values else str(message))
        return Refusal(400, gettext("It cannot be sent as it is: %(detail)s", detail=str(exc)))
    raise exc


def language_name(content: Content, code: str) -> str:
    """A content language's own name (the code itself when unknown)."""
    return content.language_name(code) if code in content.languages else code


# ---- content reviews --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Review:
    """One language's review state as the content page shows it."""

    code: str
    name: str
    state: str  # reviewed | draft | changed (reviewed, then its texts changed: a draft again)
    reviewer: str
    reviewed_on: date | None
    stale: bool  # reviewed longer ago than the review window
    version: str = ""  # the content version the reviewer read


def reviews(content: Content, today: date) -> tuple[int, list[Review]]:
    """The review window (days) and each language's review, as published."""
    window = int(content.tree["manifest"].get("review_window_days", DEFAULT_REVIEW_WINDOW_DAYS))
    rows = []
    for code in content.languages:
        found = review_of(content, code)
        stale = found.approved and (found.reviewed_on is None or (today - found.reviewed_on).days > window)
        rows.append(Review(code, content.language_name(code), found.state, found.reviewer, found.reviewed_on, stale,
                           found.version))
    return window, rows


# ---- the RQ queues ---------------------------------------------------------------------------------------

def queue_report(connection) -> tuple[list[dict], list[dict]]:
    """Per queue: waiting, running, scheduled, deferred, failed; and the workers."""
    rows = []
    for name in queues.ALL:
        queue = Queue(name, connection=connection)
        rows.append({"name": name, "waiting": queue.count, "running": queue.started_job_registry.count,
                     "scheduled": queue.scheduled_job_registry.count, "deferred": queue.deferred_job_registry.count,
                     "failed": queue.failed_job_registry.count})
    workers = []
    for worker in Worker.all(connection=connection):
        state = worker.get_state()
        workers.append({"name": worker.name, "state": str(getattr(state, "value", state)),
                        "queues": ", ".join(worker.queue_names()),
                        "job": worker.get_current_job_id() or "", "heartbeat": worker.last_heartbeat})
    return rows, sorted(workers, key=lambda w: w["name"])
