"""What the staff dashboard shows, computed: counts (never numbers), the compose form read into an API
request, the desk's refusals in the staff member's words, progress snapshots, review dates, queues.
Plain functions over Redis and content; the views in bot/web/dashboard/views.py are thin shells around them."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import date, datetime

from rq import Queue, Worker

from bot.broadcasts.compose import ComposeError, MissingTranslation, templates
from bot.broadcasts.errors import BroadcastError, InvalidTransition, OriginalUnavailable
from bot.broadcasts.errors import MissingTranslation as PlanMissingTranslation
from bot.broadcasts.outcomes import Outcomes
from bot.content.model import Content
from bot.people.staff import NotAllowed, StaffMember
from bot.publishing.check import DEFAULT_REVIEW_WINDOW_DAYS
from bot.publishing.reviews import review_of
from bot.store import keys, queues

# Seven or more digits in a row (with the usual separators): what could be a phone number in free text.
PHONE_LIKE = re.compile(r"\+?\d(?:[\s().-]*\d){6,}")


# ---- who sees what -------------------------------------------------------------------------------------

def my_schools(staff: StaffMember, content: Content) -> list[str]:
    """The school codes a member works for (an admin: every school)."""
    if staff.role == "admin":
        return sorted(content.schools.by_code)
    return [code for code in staff.schools if code in content.schools.by_code]


def mask_numbers(value: str) -> str:
    """Free text with anything that looks like a phone number hidden."""
    return PHONE_LIKE.sub("•••", value or "")


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
                     "fallback_language": form.get("fallback") or None, "workshop": form.get("workshop") or None}
    if kind == "verified":
        payload["verified_by"] = form.get("verified_by", "").strip()
    if kind == "correction":
        payload["corrects"] = form.get("corrects") or None
    if form.get("source", "template") == "template":
        name = form.get("template", "")
        payload["template"] = name or None
        payload["variables"] = {var: form.get(f"var.{var}", "").strip() for var in templates(content).get(name, [])}
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


@dataclass(frozen=True)
class Refusal:
    """A desk refusal as the dashboard says it: HTTP status, dashboard_text key and its values."""

    status: int
    key: str
    values: dict


# ComposeError messages (broadcasts.compose, broadcasts.desk) -> dashboard_text keys; the desk words them in English.
_COMPOSE_MESSAGES = (
    (r"^kind must be", "err.kind"),
    (r"^name at least one school", "err.no_school"),
    (r"^unknown school code", "err.unknown_school"),
    (r"^a verified alert must say who verified", "err.verified_by"),
    (r"^a correction must name", "err.corrects"),
    (r"^give either a template", "err.template_or_text"),
    (r"^unknown template", "err.template"),
    (r"^template \S+ needs: (?P<names>.+)$", "err.variables"),
    (r"^verified_by is too long", "err.verified_by_long"),
    (r"too long", "err.too_long"),
    (r"^unknown (fallback )?language", "err.language"),
    (r"^only a broadcast that was sent can be corrected", "err.correct_unsent"),
    (r"^the fallback language", "err.fallback_empty"),
    (r"^send_at", "err.send_at"),
    (r"^the send time has passed", "err.send_at_past"),
    (r"^the send time is too far ahead", "err.send_at_far"),
    (r"^could not find a free verification code", "err.try_again"),
    (r"^say why", "err.reason"),
)


def refusal(exc: Exception, content: Content, lang: str) -> Refusal:
    """Translate what the desk refused into the staff member's language."""
    if isinstance(exc, MissingTranslation | PlanMissingTranslation):
        names = ", ".join(language_name(content, code) for code in exc.languages)
        return Refusal(422, "err.missing_translation", {"languages": names})
    if isinstance(exc, NotAllowed):
        message = str(exc)
        outside = re.search(r"may not send to (?P<schools>.+)$", message)
        if outside:
            return Refusal(403, "err.not_your_school", {"schools": outside["schools"]})
        if "second staff member" in message:
            return Refusal(403, "err.own_broadcast", {})
        return Refusal(403, "err.not_approver", {})
    if isinstance(exc, InvalidTransition):
        return Refusal(409, "err.changed", {})
    if isinstance(exc, OriginalUnavailable):
        return Refusal(400, "err.original_gone", {})
    if isinstance(exc, ComposeError | BroadcastError):
        for pattern, key in _COMPOSE_MESSAGES:
            found = re.search(pattern, str(exc))
            if found:
                return Refusal(400, key, {k: v for k, v in found.groupdict().items() if v})
        return Refusal(400, "err.generic", {"detail": str(exc)})
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
