"""Error reports: with SENTRY_DSN set, sentry-sdk with its Flask and RQ integrations, and a scrubber that
removes every phone number, WhatsApp user id, message body, cookie and credential before anything leaves.

The SDK is told not to collect these (no default PII, no request bodies, no local variables); the scrubber
is the second lock, for whatever an exception message or a job's arguments still carry: anything shaped like a
number or user id, and the words of the request being answered wherever they are quoted."""

from __future__ import annotations

import re
from typing import Any

from flask import has_request_context, request

from bot.config import Settings

REMOVED = "[removed]"
NUMBER = "[number]"
# Twilio's form fields and Aviso's own names that carry a number, a user id, a name or a family's words.
PRIVATE_FIELDS = frozenset(name.lower() for name in (
    "Body", "From", "To", "ProfileName", "WaId", "ExternalUserId", "ForwardedFrom", "ReferralBody",
    "ButtonText", "ButtonPayload", "Latitude", "Longitude", "Address", "Label", "number", "phone", "body",
    "text", "cookies", "cookie", "authorization", "x-twilio-signature", "data", "query_string", "env",
))
# Anything that looks like a phone number (7+ digits, with the usual separators) or a WhatsApp user id.
_NUMBER = re.compile(r"\+?\(?\d(?:[\d\s().-]{5,}\d)")
_USER_ID = re.compile(r"\b[A-Z]{2}\.[A-Za-z0-9]{10,}\b")


def scrub(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's before_send (and before_send_transaction): the event without numbers, bodies or cookies."""
    described = event.get("request")
    if isinstance(described, dict):
        for name in ("data", "cookies", "query_string", "env"):
            described.pop(name, None)
    return _clean(event, _request_words())


def _request_words() -> tuple[str, ...]:
    """What the request being answered carries in its private fields (a family's message, its profile name):
    removed wherever it shows up, e.g. quoted in an exception's message. Longest first."""
    if not has_request_context():
        return ()
    words = {value for name, value in request.form.items(multi=True)
             if name.lower() in PRIVATE_FIELDS and len(value.strip()) >= 3}
    return tuple(sorted(words, key=len, reverse=True))


def _clean(value: Any, words: tuple[str, ...] = ()) -> Any:
    if isinstance(value, dict):
        return {key: REMOVED if isinstance(key, str) and key.lower() in PRIVATE_FIELDS else _clean(item, words)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        cleaned = [_clean(item, words) for item in value]
        if len(cleaned) == 2 and isinstance(cleaned[0], str) and cleaned[0].lower() in PRIVATE_FIELDS:
            return [cleaned[0], REMOVED]  # headers as [name, value] pairs
        return cleaned
    if isinstance(value, str):
        for word in words:
            value = value.replace(word, REMOVED)
        return _NUMBER.sub(NUMBER, _USER_ID.sub(NUMBER, value))  # user ids first: they hold digit runs
    return value


def init(settings: Settings) -> bool:
    """Start sentry-sdk when SENTRY_DSN is set (once per process); whether it is on."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.env,
        integrations=[FlaskIntegration(), RqIntegration()],
        # send_default_pii stays unset (False in sentry-sdk 2, which warns when it is passed): no cookies,
        # user or client address. sentry-sdk 3 collects more by default: pyproject pins below it.
        max_request_body_size="never",  # a webhook's body is a family's message
        include_local_variables=False,  # a frame's locals may hold a decrypted number
        traces_sample_rate=0,
        before_send=scrub,
        before_send_transaction=scrub,
        before_breadcrumb=lambda crumb, hint: _clean(crumb),
    )
    return True
