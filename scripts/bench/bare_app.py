"""Reference endpoints of the webhook benchmark, run under the same gunicorn settings as Aviso.

    gunicorn --config python:bot.gunicorn_conf --pythonpath scripts/bench "bare_app:create_app()"

create_app(): the bare endpoint the target is measured against: Flask answering POST /twilio/messages
with constant TwiML; no signature check, no form parsing, no Redis.

create_signed_app() (--signed-bare): the same, after parsing the form and checking X-Twilio-Signature
with Twilio's RequestValidator the way bot/web/webhook.py does (TWILIO_AUTH_TOKEN, PUBLIC_BASE_URL from
the environment): what any correct Twilio webhook in Flask pays before doing its own work.
"""

from __future__ import annotations

import os

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Hola</Message></Response>'


def create_app() -> Flask:
    """A Flask app with the one constant webhook route."""
    app = Flask(__name__)

    @app.post("/twilio/messages")
    def messages() -> Response:
        return Response(TWIML, 200, mimetype="text/xml")

    return app


def create_signed_app() -> Flask:
    """The constant webhook behind Twilio's signature check."""
    app = Flask(__name__)
    token = os.environ["TWILIO_AUTH_TOKEN"]
    url = os.environ["PUBLIC_BASE_URL"].rstrip("/") + "/twilio/messages"

    @app.post("/twilio/messages")
    def messages() -> Response:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not RequestValidator(token).validate(url, request.form, signature):
            return Response("invalid or missing X-Twilio-Signature\n", 403, mimetype="text/plain")
        return Response(TWIML, 200, mimetype="text/xml")

    return app
