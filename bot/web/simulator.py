"""Simulator: a phone in the browser (development only) that texts the real webhook with real signatures."""

from __future__ import annotations

import uuid

from flask import Blueprint, jsonify, render_template, request
from twilio.request_validator import RequestValidator

from bot import services
from bot.config import Settings
from bot.people.identity import InvalidAddress, parse_address
from bot.twilio.outbox import OutboxSender

bp = Blueprint("simulator", __name__, url_prefix="/dev")
AVISO_NUMBER = "+12135550100"  # the number families "text" in development (555-01xx is fictional)
WEBHOOK_PATH = "/twilio/messages"
VOICE_PATH = "/twilio/voice"  # a call starts here; each key pressed goes to the gather's action (/twilio/voice/...)
DEVELOPMENT_TOKEN = "development-token"  # signs when no token is set; the webhook then skips checks


def inbound_params(from_: str, body: str, settings: Settings) -> dict[str, str]:
    """The form fields Twilio would post for a message from `from_` saying `body`."""
    address = parse_address(from_)
    to = AVISO_NUMBER
    if address.channel == "whatsapp":
        to = settings.twilio_whatsapp_from or f"whatsapp:{AVISO_NUMBER}"
    params = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": settings.twilio_account_sid or "AC" + "0" * 32,
        "From": address.twilio,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    if address.channel == "whatsapp":
        if address.is_user_id:  # a family on a WhatsApp username: Twilio sends no number, only the user id
            params["ExternalUserId"] = address.twilio
        else:
            params["WaId"] = address.handle.lstrip("+")
        params["ProfileName"] = "Simulator"
    return params


def call_params(from_: str, call_sid: str, digits: str | None, settings: Settings) -> dict[str, str]:
    """The form fields Twilio would post for a call from `from_` (and the keys pressed, at a gather)."""
    address = parse_address(from_)
    params = {"CallSid": call_sid, "AccountSid": settings.twilio_account_sid or "AC" + "0" * 32,
              "From": address.twilio, "To": AVISO_NUMBER, "CallStatus": "in-progress", "Direction": "inbound",
              "ApiVersion": "2010-04-01"}
    if digits is not None:
        params["Digits"] = digits
    return params


def sign(settings: Settings, path: str, params: dict[str, str]) -> tuple[str, str]:
    """The URL Twilio would call and the X-Twilio-Signature it would send with params."""
    url = settings.public_base_url + path
    token = settings.twilio_auth_token or DEVELOPMENT_TOKEN
    return url, RequestValidator(token).compute_signature(url, params)


@bp.get("/phone")
def phone():
    """The phone simulator page."""
    return render_template("simulator.html", aviso_number=AVISO_NUMBER)


@bp.post("/phone/sign")
def phone_sign():
    """Build and sign the Twilio parameters for one simulated message."""
    data = request.get_json(silent=True) or {}
    settings = services.current().settings
    call = data.get("call")  # the keypad: {"path": the voice URL to post to, "sid", "digits" or null}
    path = str(call.get("path", VOICE_PATH)) if isinstance(call, dict) else WEBHOOK_PATH
    if call is not None and not (isinstance(call, dict) and path.startswith(VOICE_PATH)):
        return jsonify(error="a call goes to the voice line only"), 400
    try:
        if call is None:
            params = inbound_params(str(data.get("from", "")), str(data.get("body", "")), settings)
        else:
            digits = call.get("digits")
            params = call_params(str(data.get("from", "")), str(call.get("sid") or "CA" + uuid.uuid4().hex),
                                 None if digits is None else str(digits), settings)
    except InvalidAddress as exc:
        return jsonify(error=f"From: {exc}"), 400
    _, signature = sign(settings, path, params)
    return jsonify(path=path, params=params, signature=signature)


@bp.get("/phone/outbox")
def phone_outbox():
    """Messages the outbox recorded for the simulated phone (alerts, reminders, codes)."""
    aviso = services.current()
    try:
        address = parse_address(request.args.get("from", ""))
    except InvalidAddress as exc:
        return jsonify(error=f"from: {exc}"), 400
    sender = aviso.sender
    if not isinstance(sender, OutboxSender):
        return jsonify(messages=[], note="Twilio is configured: messages go to real phones")
    return jsonify(messages=sender.messages_for(address))
