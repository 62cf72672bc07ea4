"""Voice webhook: Twilio's incoming-call endpoint and its gather callbacks (thin: check, parse, step, render)."""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, request, send_from_directory

from bot import services
from bot.content.voice import RECORDINGS_DIR, VoiceContent
from bot.conversation.voice_menu import CallState, start, step
from bot.people.identity import Address, InvalidAddress, parse_address
from bot.people.voice_callers import VoiceCallers
from bot.store import keys
from bot.store.outage import REDIS_ERRORS
from bot.web.voice_twiml import render
from bot.web.webhook import twilio_signed

bp = Blueprint("twilio_voice", __name__, url_prefix="/twilio")
recordings_bp = Blueprint("voice_recordings", __name__)

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
DIGITS = re.compile(r"[0-9*#]{0,16}")
STATE_AT = re.compile(r"[a-z]+(?:\.[a-z]+)?")
STATE_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z]{2,4})?")
STATE_QUIET = re.compile(r"[0-9]")


class BadCall(ValueError):
    """A voice request missing a field or carrying a malformed one."""


def _caller(form) -> Address | None:
    """The caller's number, or None for a withheld or unusable caller id (the call is still answered)."""
    if not CALL_SID.fullmatch(form.get("CallSid", "")):
        raise BadCall("CallSid is missing or malformed")
    try:
        return parse_address(form.get("From", ""))
    except InvalidAddress:
        return None


def _state(args) -> CallState:
    at, language, quiet = args.get("at", ""), args.get("lang"), args.get("quiet", "0")
    if not STATE_AT.fullmatch(at) or not STATE_QUIET.fullmatch(quiet):
        raise BadCall("the menu state in the URL is malformed")
    if language is not None and not STATE_LANGUAGE.fullmatch(language):
        raise BadCall("the language in the URL is malformed")
    return CallState(at, language, int(quiet))


def _voice_and_callers() -> tuple[VoiceContent, VoiceCallers | None]:
    """The active content's voice part, and the callers' store (None while Redis is unreachable: the menu
    still answers from the content in memory, it only cannot remember a language)."""
    content, callers = _active_voice_and_callers()
    if not content.heard_languages:  # a version from before the voice line is live (a rollback): the files' voice
        content = VoiceContent.of(services.current().shipped_content())
    return content, callers


def _active_voice_and_callers() -> tuple[VoiceContent, VoiceCallers | None]:
    aviso = services.current()
    if aviso.outage.worth_trying():
        try:  # the families' connection, which gives up in half a second: a caller never waits on a frozen Redis
            version = aviso.webhook_connection.get(keys.CONTENT_ACTIVE)
            content = aviso.content.get(version.decode()) if version else aviso.active_content()
        except REDIS_ERRORS as error:
            aviso.outage.failed(error)
        else:
            aviso.outage.recovered()
            callers = VoiceCallers(aviso.webhook_connection, aviso.keyring, aviso.settings.contact_ttl_days * 86400)
            return VoiceContent.of(content), callers
    aviso.outage.answered_from_memory()
    return VoiceContent.of(aviso.content_in_memory()), None


def _twiml(text: str) -> Response:
    return Response(text, 200, mimetype="text/xml")


def _bad(reason: str) -> Response:
    return Response(f"bad request: {reason}\n", 400, mimetype="text/plain")


def _safely(action, default=None):
    try:
        return action()
    except REDIS_ERRORS as error:  # the caller still hears the menu; only the language is not kept
        services.current().outage.failed(error)
        return default


@bp.post("/voice")
@twilio_signed
def voice():
    """Answer an incoming call: greeting and language menu, or the main menu in the caller's language."""
    try:
        caller = _caller(request.form)
    except BadCall as exc:
        return _bad(str(exc))
    content, callers = _voice_and_callers()
    known = _safely(lambda: callers.language(caller)) if callers and caller else None
    turn = start(known, content)
    return _twiml(render(turn, content, services.current().settings.public_base_url))


@bp.post("/voice/menu")
@twilio_signed
def voice_menu():
    """Answer the key a caller pressed (or their silence) in the menu the URL names."""
    try:
        caller = _caller(request.form)
        state = _state(request.args)
        digits = request.form.get("Digits", "")
        if not DIGITS.fullmatch(digits):
            raise BadCall("Digits must be keypad keys")
    except BadCall as exc:
        return _bad(str(exc))
    content, callers = _voice_and_callers()
    turn = step(state, digits, content)
    if turn.ask_for_calls and not callers:  # Redis is down: it cannot be kept, so do not say it was
        turn = step(state, "*", content)
    if turn.remember_language and callers and caller:
        _safely(lambda: callers.remember(caller, turn.remember_language))
    if turn.ask_for_calls and callers and caller:
        _safely(lambda: callers.want_calls(caller, turn.state.language))
    return _twiml(render(turn, content, services.current().settings.public_base_url))


@recordings_bp.get("/voice/recordings/<path:name>")
def recording(name: str):
    """A recorded language's clip, for Twilio to <Play> (only the files the active content lists)."""
    content, _ = _voice_and_callers()
    if name not in content.clips:
        abort(404)
    mimetype = "audio/mpeg" if name.endswith(".mp3") else "audio/wav"
    return send_from_directory(services.current().settings.content_dir / RECORDINGS_DIR, name, mimetype=mimetype,
                               max_age=3600)

