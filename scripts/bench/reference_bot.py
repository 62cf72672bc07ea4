"""The reference bot of the webhook benchmark: a Twilio SMS bot written the way Twilio's Flask samples write
one, run under the same gunicorn settings as Aviso.

    gunicorn --config python:bot.gunicorn_conf --pythonpath scripts/bench "reference_bot:create_app()"

It checks X-Twilio-Signature with RequestValidator (as the samples' validate_twilio_request decorator
does), reads and writes the sender's state in Redis keyed by the number (one GET and one SET, plaintext:
the samples do not encrypt), and answers with MessagingResponse. It understands nothing: the same answer
for every message. Aviso does far more per message and is measured against it (issue 12).
"""

from __future__ import annotations

import os

import redis
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse


def create_app() -> Flask:
    """The sample-style bot: validate, get+set the sender's count in Redis, reply with TwiML."""
    app = Flask(__name__)
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    url = os.environ["PUBLIC_BASE_URL"].rstrip("/") + "/twilio/messages"
    store = redis.Redis.from_url(os.environ["REDIS_URL"])

    @app.post("/twilio/messages")
    def messages() -> Response:
        if not validator.validate(url, request.form, request.headers.get("X-Twilio-Signature", "")):
            return Response("invalid or missing X-Twilio-Signature\n", 403, mimetype="text/plain")
        key = "reference:" + request.form.get("From", "")
        seen = int(store.get(key) or 0)
        store.set(key, seen + 1)
        reply = MessagingResponse()
        reply.message("Thanks for your message. Reply HELP for help." if seen else "Welcome! Reply HELP for help.")
        return Response(str(reply), 200, mimetype="text/xml")

    return app
