"""The webhook's fast path: POST /twilio/messages answered in front of Flask, with the same checks and core.

Families' messages are nearly all of Aviso's traffic, and Flask's request and response objects, routing and
hooks cost as much CPU as the conversation itself. This WSGI layer answers the usual case itself (a signed,
urlencoded, well-formed message), exactly as the Flask view would: the same form parser, signature,
`parse_inbound`, `Aviso.answer`, TwiML, request id, log context and timing metric. Anything else (another
route or method, a query string, a missing or large body, a signature that needs the library's full check,
a bad field) goes to Flask untouched, the body replayed, so those answers stay Flask's own.
"""

from __future__ import annotations

import hmac
import io
import re
import time
from datetime import UTC, datetime

import structlog
from flask import Flask

from bot import services
from bot.observability import logs, metrics
from bot.web.forms import parse_urlencoded
from bot.web.payloads import BadRequest, parse_inbound
from bot.web.webhook import expected_signature

PATH = "/twilio/messages"
ROUTE = "/twilio/messages"  # the metric's label: the Flask rule of the same view
_URLENCODED = re.compile(r"application/x-www-form-urlencoded\s*(;\s*charset=\"?utf-8\"?\s*)?", re.IGNORECASE)


class FastMessages:
    """WSGI middleware (installed as app.wsgi_app) answering inbound messages without Flask's request cycle."""

    def __init__(self, app: Flask, flask_wsgi):
        self.app = app
        self.flask_wsgi = flask_wsgi
        self.max_length = app.config.get("MAX_CONTENT_LENGTH")

    def __call__(self, environ, start_response):
        if not self._ours(environ):
            return self.flask_wsgi(environ, start_response)
        started = time.perf_counter()
        length = int(environ["CONTENT_LENGTH"])
        body = environ["wsgi.input"].read(length) if length else b""
        if len(body) != length:  # the client sent less than it announced: Flask's answer
            return self._to_flask(environ, body, start_response)
        try:
            pairs = parse_urlencoded(body.decode())
        except UnicodeDecodeError:
            return self._to_flask(environ, body, start_response)
        aviso = services.current_from(self.app)
        if aviso.settings.validates_signatures:
            signature = environ.get("HTTP_X_TWILIO_SIGNATURE", "")
            expected = expected_signature(aviso.request_validator.token, aviso.settings.public_base_url + PATH, pairs)
            if not signature or not hmac.compare_digest(expected, signature.encode()):
                return self._to_flask(environ, body, start_response)  # 403, or the library's port variants
        form: dict[str, str] = {}
        for name, value in pairs:
            form.setdefault(name, value)  # the first of a repeated field, as Flask's request.form.get
        try:
            message = parse_inbound(form)
        except BadRequest:
            return self._to_flask(environ, body, start_response)
        request_id = logs.request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            now = datetime.now(UTC).astimezone(aviso.settings.timezone)
            twiml = aviso.answer(message, now)
        except Exception as error:  # noqa: BLE001 - Flask's error handling (500, log, error report)
            return self._failed(environ, body, start_response, error)
        finally:
            structlog.contextvars.clear_contextvars()
        data = twiml.encode()
        metrics.webhook_answered(ROUTE, 200, time.perf_counter() - started)
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(data))),
                                  ("X-Request-Id", request_id)])
        return [data]  # the answer's write is confirmed before this thread's next message (bot/store/scripts.py)

    def _ours(self, environ) -> bool:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return False
        if environ.get("QUERY_STRING") or environ.get("HTTP_TRANSFER_ENCODING"):
            return False
        if not _URLENCODED.fullmatch(environ.get("CONTENT_TYPE", "")):
            return False
        length = environ.get("CONTENT_LENGTH", "")
        if not length.isascii() or not length.isdigit():
            return False
        return self.max_length is None or int(length) <= self.max_length

    def _to_flask(self, environ, body: bytes, start_response):
        """Flask answers this request, as if it had come straight to it."""
        return self.flask_wsgi(_replayed(environ, body), start_response)

    def _failed(self, environ, body: bytes, start_response, error: Exception):
        """An unexpected error while answering: Flask's own handling of it (the error signal Sentry
        listens to, the log line, a 500), in a request context for the same request."""
        with self.app.request_context(_replayed(environ, body)):
            response = self.app.handle_exception(error)
            return response(environ, start_response)


def _replayed(environ, body: bytes) -> dict:
    replay = dict(environ)
    replay["wsgi.input"] = io.BytesIO(body)
    return replay
