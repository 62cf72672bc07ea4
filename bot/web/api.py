"""The staff JSON API (for the dashboard and district systems): bearer-token auth, thin views over the desk."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from functools import wraps

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from bot import services
from bot.broadcasts import report as broadcast_report
from bot.broadcasts import variables as template_variables
from bot.broadcasts.compose import BroadcastRequest, ComposeError, MissingTranslation, templates
from bot.broadcasts.errors import BroadcastError, BroadcastNotFound, InvalidTransition
from bot.broadcasts.errors import MissingTranslation as PlanMissingTranslation
from bot.broadcasts.lists import BadQuery, query_from_args
from bot.broadcasts.store import Broadcast
from bot.people.staff import NotAllowed

bp = Blueprint("api", __name__, url_prefix="/api")
REQUEST_FIELDS = ("schools", "kind", "template", "variables", "texts", "languages", "fallback_language",
                  "verified_by", "corrects", "urgent", "send_at", "workshop", "whatsapp_templates")
SEND_AT_EXAMPLE = "2026-12-03T07:00:00-08:00"


class BadBody(ComposeError):
    """A request body that is not the JSON the endpoint expects; the message names what is wrong."""


def _error(status: int, message: str, **extra):
    return jsonify(error=message, **extra), status


def staff_required(view):
    """Reject requests without a valid `Authorization: Bearer <token>` of a rostered staff member."""

    @wraps(view)
    def checked(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        member = services.current().roster.by_token(token) if token else None
        if member is None:
            return _error(401, "a valid staff API token is required (Authorization: Bearer <token>); an expired or "
                               "revoked one is refused: ask an admin for a new one")
        g.staff = member
        return view(*args, **kwargs)

    return checked


def _desk_errors(view):
    """Map the desk's refusals to clear 4xx answers."""

    @wraps(view)
    def mapped(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except (MissingTranslation, PlanMissingTranslation) as exc:
            return _error(422, str(exc), missing=list(exc.languages))
        except NotAllowed as exc:
            return _error(403, str(exc))
        except BroadcastNotFound as exc:
            return _error(404, str(exc))
        except InvalidTransition as exc:
            return _error(409, str(exc))
        except (ComposeError, BroadcastError) as exc:
            return _error(400, str(exc))

    return mapped


def json_body():
    """The request's JSON (None when there is no body), or BadBody when it is not JSON."""
    if not request.get_data(cache=True):
        return None
    try:
        return request.get_json(force=True)
    except BadRequest:
        raise BadBody("the body is not valid JSON") from None
    except RecursionError:  # json's decoder recurses once per level of nesting
        raise BadBody("the body is not valid JSON: it is nested too deeply") from None


def parse_request(data: dict) -> BroadcastRequest:
    """A BroadcastRequest from JSON, or BadBody naming the bad field."""
    if not isinstance(data, dict):
        raise BadBody("send a JSON object")
    unknown = sorted(set(data) - set(REQUEST_FIELDS))
    if unknown:  # a misspelt send_at would otherwise send a scheduled alert at once
        raise BadBody(f"unknown field(s) {', '.join(unknown)}; known fields: {', '.join(REQUEST_FIELDS)}")

    def text(name: str) -> str | None:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise BadBody(f"{name} must be a string")
        return (value or "").strip() or None

    def strings(name: str) -> tuple[str, ...]:
        value = data.get(name) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadBody(f"{name} must be a list of strings")
        return tuple(v.strip().upper() if name == "schools" else v.strip() for v in value)

    def mapping(name: str) -> dict[str, str]:
        value = data.get(name) or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise BadBody(f"{name} must be an object of strings")
        return dict(value)

    def variables() -> dict:
        value = data.get("variables") or {}
        if not isinstance(value, dict) or not all(
                isinstance(v, str) or (isinstance(v, dict) and all(isinstance(t, str) for t in v.values()))
                for v in value.values()):
            raise BadBody('variables must be an object of strings, or of {"language": "text"} for free text')
        return {k: dict(v) if isinstance(v, dict) else v for k, v in value.items()}

    urgent = data.get("urgent")
    if urgent is not None and not isinstance(urgent, bool):
        raise BadBody("urgent must be true or false")
    chosen = data.get("whatsapp_templates")
    if chosen is not None and chosen is not False and not isinstance(chosen, dict):
        raise BadBody('whatsapp_templates must be false (none) or an object like {"es": "HX..."}')
    send_at = text("send_at")
    try:
        when = datetime.fromisoformat(send_at) if send_at else None
    except ValueError:
        raise BadBody(f"send_at must be an ISO date and time with its offset, like {SEND_AT_EXAMPLE}") from None
    if when is not None and when.tzinfo is None:
        raise BadBody(f"send_at needs a UTC offset, like {SEND_AT_EXAMPLE}")
    return BroadcastRequest(
        schools=strings("schools"), kind=text("kind") or "", template=text("template"),
        variables=variables(), custom_texts=mapping("texts"), languages=strings("languages") or None,
        fallback_language=text("fallback_language"), verified_by=text("verified_by") or "",
        corrects=text("corrects"), urgent=bool(urgent), send_at=when, workshop=text("workshop"),
        whatsapp_templates=mapping("whatsapp_templates") if chosen else {}, use_whatsapp_templates=chosen is not False,
    )


def parse_reason(data) -> str:
    """The reason of a rejection body ({"reason": "..."}), or BadBody."""
    if data is None:
        return ""
    if not isinstance(data, dict):
        raise BadBody('send a JSON object like {"reason": "..."}')
    unknown = sorted(set(data) - {"reason"})
    if unknown:
        raise BadBody(f"unknown field(s) {', '.join(unknown)}; known fields: reason")
    reason = data.get("reason") or ""
    if not isinstance(reason, str):
        raise BadBody("reason must be a string")
    return reason


def broadcast_json(broadcast: Broadcast, with_outcomes: bool = False) -> dict:
    """A broadcast as the API shows it."""
    data = {
        "id": broadcast.id, "status": broadcast.status, "kind": broadcast.kind, "schools": list(broadcast.schools),
        "code": broadcast.code, "texts": broadcast.texts, "urgent": broadcast.urgent,
        "created_by": broadcast.created_by, "approved_by": broadcast.approved_by,
        "verified_by": broadcast.verified_by, "corrects": broadcast.corrects,
        "languages": list(broadcast.languages) if broadcast.languages is not None else None,
        "fallback_language": broadcast.fallback_language,
        "whatsapp_templates": {lang: t["content_sid"] for lang, t in broadcast.whatsapp_templates.items()},
        "content_version": broadcast.content_version,
        "created_at": broadcast.created_at.isoformat() if broadcast.created_at else None,
        "scheduled_for": broadcast.scheduled_for.isoformat() if broadcast.scheduled_for else None,
        "starts_at": broadcast.starts_at.isoformat() if broadcast.starts_at else None,  # quiet hours included
        "started_at": broadcast.started_at.isoformat() if broadcast.started_at else None,
        "finished_at": broadcast.finished_at.isoformat() if broadcast.finished_at else None,
    }
    if with_outcomes:
        data["outcomes"] = asdict(services.current().broadcasts.outcomes(broadcast.id))
    return data


def plan_json(plan) -> dict:
    """A preview as JSON."""
    data = asdict(plan)
    # WhatsApp families outside the 24-hour window, and those of them no template covers (they get nothing)
    data.update(whatsapp_outside_window=plan.whatsapp_outside_window, whatsapp_without_template=plan.whatsapp_uncovered)
    rate = services.current().settings.rate_limit_segments_per_second  # None below: no rate of Aviso's own
    data.update(send_seconds=plan.send_seconds(rate), segments_per_second=rate or None)
    for language in data["languages"]:
        count = language.pop("sms_segments")
        language["sms_encoding"] = count["encoding"] if count else None
        language["sms_segments_per_message"] = count["segments"] if count else None
    return data


@bp.get("/templates")
@staff_required
def list_templates():
    """Template names and their variables; how each variable is given (text: {language: text}; name, date,
    time, datetime: once)."""
    content = services.current().active_content()
    return jsonify(templates=templates(content), variables=template_variables.declared(content))


@bp.post("/broadcasts/preview")
@staff_required
@_desk_errors
def preview():
    """Texts per language, segments, recipients per language and channel — nothing stored."""
    draft, plan = services.current().desk().preview(g.staff, parse_request(json_body()))
    return jsonify(texts=draft.texts, code_example=draft.code, plan=plan_json(plan))


@bp.post("/broadcasts")
@staff_required
@_desk_errors
def create():
    """Create a broadcast (sent, scheduled or waiting for approval)."""
    broadcast = services.current().desk().create(g.staff, parse_request(json_body()))
    return jsonify(broadcast_json(broadcast)), 201


@bp.get("/broadcasts")
@staff_required
def recent():
    """The caller's schools' broadcasts, newest first, a page at a time (filters: school, kind, status,
    since, until; next_cursor continues)."""
    aviso = services.current()
    try:
        query = query_from_args(request.args, g.staff, aviso.settings.timezone)
    except BadQuery as exc:
        return _error(400, str(exc))
    except NotAllowed as exc:
        return _error(403, str(exc))
    found = aviso.desk().list(g.staff, query)
    return jsonify(broadcasts=[broadcast_json(b) for b in found.broadcasts], next_cursor=found.next_cursor)


@bp.get("/broadcasts/<broadcast_id>")
@staff_required
@_desk_errors
def show(broadcast_id: str):
    """One broadcast with its outcome counts."""
    return jsonify(broadcast_json(services.current().desk().show(g.staff, broadcast_id), with_outcomes=True))


@bp.get("/broadcasts/<broadcast_id>/report.csv")
@staff_required
@_desk_errors
def report_csv(broadcast_id: str):
    """Recipients per language, channel, outcome and reason as CSV: counts, never a number."""
    aviso = services.current()
    found = aviso.desk().show(g.staff, broadcast_id)
    rows = broadcast_report.rows(aviso.connection, found.id, aviso.broadcasts.outcomes(found.id))
    return Response(broadcast_report.to_csv(rows), mimetype="text/csv")


@bp.post("/broadcasts/<broadcast_id>/approve")
@staff_required
@_desk_errors
def approve(broadcast_id: str):
    """Approve another staff member's broadcast."""
    return jsonify(broadcast_json(services.current().desk().approve(g.staff, broadcast_id)))


@bp.post("/broadcasts/<broadcast_id>/reject")
@staff_required
@_desk_errors
def reject(broadcast_id: str):
    """Send a broadcast back with a reason."""
    reason = parse_reason(json_body())
    return jsonify(broadcast_json(services.current().desk().reject(g.staff, broadcast_id, reason)))


@bp.post("/broadcasts/<broadcast_id>/cancel")
@staff_required
@_desk_errors
def cancel(broadcast_id: str):
    """Cancel a broadcast, also while it is sending."""
    return jsonify(broadcast_json(services.current().desk().cancel(g.staff, broadcast_id)))


@bp.app_errorhandler(HTTPException)
def json_errors_under_api(exc: HTTPException):
    """JSON instead of an HTML error page under /api (unknown routes, wrong methods, bodies too large)."""
    if request.path != bp.url_prefix and not request.path.startswith(f"{bp.url_prefix}/"):
        return exc  # other pages keep Flask's own answer
    if isinstance(exc, NotFound):
        response, status = _error(404, f"no API endpoint {request.method} {request.path}")
    elif isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(exc.valid_methods or ())
        response, status = _error(405, f"{request.method} is not allowed here; use {allowed}")
        response.headers["Allow"] = allowed
    elif isinstance(exc, RequestEntityTooLarge):
        response, status = _error(413, f"the body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes")
    else:
        response, status = _error(exc.code or 500, exc.description or exc.name)
    return response, status
