"""Voice alerts: the TwiML an urgent-alert call speaks, and the calls' status callbacks (thin, signed)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from flask import Blueprint, Response, request
from twilio.twiml.voice_response import VoiceResponse

from bot import services
from bot.broadcasts import calls
from bot.broadcasts.errors import BroadcastNotFound
from bot.content.voice import VoiceContent
from bot.store.outage import REDIS_ERRORS
from bot.web.voice_twiml import GATHER_TIMEOUT_SECONDS
from bot.web.voice_webhook import CALL_SID, STATE_LANGUAGE
from bot.web.webhook import twilio_signed

bp = Blueprint("twilio_voice_alert", __name__, url_prefix="/twilio/voice")

BROADCAST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ALERT_PATH = "/twilio/voice/alert"
REPEAT_KEY = "1"
MAX_HEARINGS = 5  # "press 1 to hear it again" at most this often, then the call ends


def _hangup() -> Response:
    response = VoiceResponse()
    response.hangup()
    return Response(str(response), 200, mimetype="text/xml")


def spelled(code: str) -> str:
    """A verification code as a voice reads it: one character at a time ("K, 7, P, 2, Q")."""
    return ", ".join(code)


def alert_twiml(broadcast, language: str, content, base_url: str, heard: int) -> str:
    """The TwiML of an alert call: the school, the alert as sent, the VERIFY code read out, and "press 1"."""
    voice = VoiceContent.of(content).voice(language)
    response = VoiceResponse()
    if voice is None:
        response.hangup()
        return str(response)
    query = urlencode({"b": broadcast.id, "lang": language, "heard": str(heard + 1)})
    gather = response.gather(num_digits=1, action=f"{base_url}{ALERT_PATH}?{query}", method="POST",
                             timeout=GATHER_TIMEOUT_SECONDS)
    school = content.school_names(broadcast.schools)
    said = broadcast.bodies.get(language) or broadcast.texts.get(language, "")
    for line in (content.text(language, "voice_alert.intro", school=school), said,
                 content.text(language, "voice_alert.code", code=spelled(broadcast.code)),
                 content.text(language, "voice_alert.repeat")):
        gather.say(" ".join(line.split()), voice=voice.name, language=voice.locale)
    response.hangup()  # no key: the call ends
    return str(response)


@bp.post("/alert")
@twilio_signed
def alert():
    """Speak an urgent alert to a family who asked for calls; 1 repeats it."""
    broadcast_id, language = request.args.get("b", ""), request.args.get("lang", "")
    heard = request.args.get("heard", "0")
    if not (BROADCAST_ID.fullmatch(broadcast_id) and STATE_LANGUAGE.fullmatch(language) and heard.isdigit()
            and CALL_SID.fullmatch(request.form.get("CallSid", ""))):
        return Response("bad request: malformed alert call\n", 400, mimetype="text/plain")
    digits = request.form.get("Digits")
    if (digits is not None and digits != REPEAT_KEY) or int(heard) >= MAX_HEARINGS:
        return _hangup()
    aviso = services.current()
    try:
        broadcast = aviso.broadcasts.get(broadcast_id)
        content = aviso.active_content()
    except (BroadcastNotFound, *REDIS_ERRORS):
        return _hangup()
    if language not in content.languages:
        return _hangup()
    return Response(alert_twiml(broadcast, language, content, aviso.settings.public_base_url, int(heard)),
                    200, mimetype="text/xml")


@bp.post("/status")
@twilio_signed
def status():
    """Twilio's status callback for an alert call: its end (answered, no answer, busy, failed) counted once."""
    broadcast_id, sid = request.args.get("b", ""), request.form.get("CallSid", "")
    if not (BROADCAST_ID.fullmatch(broadcast_id) and CALL_SID.fullmatch(sid)):
        return Response("bad request: malformed call status\n", 400, mimetype="text/plain")
    calls.record_status(services.current().webhook_connection, broadcast_id, sid, request.form.get("CallStatus", ""))
    return Response("", 204)
