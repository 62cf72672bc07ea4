"""Webhook: Twilio's inbound-message and status-callback endpoints (thin: check, parse, call, render)."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import wraps

from flask import Blueprint, Response, abort, request
from twilio.request_validator import RequestValidator

from bot import services
from bot.broadcasts.outcomes import OutcomeStore
from bot.store.outage import REDIS_ERRORS
from bot.web.payloads import SID_PATTERN, BadRequest, parse_inbound

bp = Blueprint("twilio", __name__, url_prefix="/twilio")


def signed_url() -> str:
    """The URL Twilio signed: the public origin plus the path and query this request arrived on."""
    base = services.current().settings.public_base_url
    query = request.query_string.decode()
    return f"{base}{request.path}" + (f"?{query}" if query else "")


def expected_signature(token: bytes, url: str, pairs: Iterable[tuple[str, str]]) -> bytes:
    """Twilio's signature of a request (base64 HMAC-SHA1 of the URL, then every field name and value,
    sorted): RequestValidator.compute_signature's result, at half its cost."""
    signed = url + "".join(name + value for name, value in sorted(set(pairs)))
    return base64.b64encode(hmac.digest(token, signed.encode(), "sha1"))


def signature_valid(validator: RequestValidator, url: str, signature: str) -> bool:
    """Whether signature is Twilio's for this request: one HMAC for the URL as configured, and only when
    that differs, the library's full check (which also tries the URL with and without its port)."""
    expected = expected_signature(validator.token, url, request.form.items(multi=True))
    if hmac.compare_digest(expected, signature.encode()):
        return True
    return validator.validate(url, request.form, signature)


def twilio_signed(view):
    """Reject (403, nothing recorded) any request whose X-Twilio-Signature does not verify."""

    @wraps(view)
    def checked(*args, **kwargs):
        aviso = services.current()
        if aviso.settings.validates_signatures:
            signature = request.headers.get("X-Twilio-Signature", "")
            if not signature or not signature_valid(aviso.request_validator, signed_url(), signature):
                abort(Response("invalid or missing X-Twilio-Signature\n", 403, mimetype="text/plain"))
        return view(*args, **kwargs)

    return checked


def _bad_request(reason: str) -> Response:
    return Response(f"bad request: {reason}\n", 400, mimetype="text/plain")


@bp.post("/messages")
@twilio_signed
def messages():
    """Answer an SMS or WhatsApp message with TwiML."""
    try:
        message = parse_inbound(request.form)
    except BadRequest as exc:
        return _bad_request(str(exc))
    aviso = services.current()
    now = datetime.now(UTC).astimezone(aviso.settings.timezone)
    return Response(aviso.answer(message, now), 200, mimetype="text/xml")


@bp.post("/fallback")
@twilio_signed
def fallback():
    """Twilio's fallback for inbound messages (when /twilio/messages failed): answered from memory only,
    so it works while Redis is down; it reads and writes nothing."""
    try:
        message = parse_inbound(request.form)
    except BadRequest as exc:
        return _bad_request(str(exc))
    aviso = services.current()
    now = datetime.now(UTC).astimezone(aviso.settings.timezone)
    aviso.outage.answered_from_memory()
    return Response(aviso.conversations.answer_offline(message, now, aviso.content_in_memory()), 200,
                    mimetype="text/xml")


@bp.post("/status")
@twilio_signed
def status():
    """Accept Twilio's message status callback; a broadcast's (?b=<id> in its URL) rolls up into its counts."""
    sid = request.form.get("MessageSid", "")
    message_status = request.form.get("MessageStatus", "")
    if not SID_PATTERN.fullmatch(sid) or not message_status:
        return _bad_request("MessageSid and MessageStatus are required")
    broadcast_id = request.args.get("b")
    if broadcast_id:  # idempotent per MessageSid and final status, so Twilio's retries count once
        aviso = services.current()
        try:
            OutcomeStore(aviso.webhook_connection).record_status(broadcast_id, sid, message_status,
                                                                 request.form.get("ErrorCode", ""))
        except REDIS_ERRORS as error:  # a receipt cannot be answered from memory: say so, briefly
            aviso.outage.failed(error)
            return Response("redis unavailable\n", 503, mimetype="text/plain")
    return Response("", 204)
