"""Voice TwiML: a turn of the voice menu written with the twilio library's VoiceResponse."""

from __future__ import annotations

from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from bot.content.voice import VoiceContent
from bot.conversation.voice_menu import CallState, Line, Turn

MENU_PATH = "/twilio/voice/menu"
GATHER_TIMEOUT_SECONDS = 6  # long enough to find the key on an old phone, short enough not to feel dead


def menu_url(base_url: str, state: CallState) -> str:
    """The gather callback for a state: the state travels in the signed URL, so Redis keeps no call state."""
    query = {"at": state.at, "quiet": str(state.silences)}
    if state.language:
        query["lang"] = state.language
    return f"{base_url}{MENU_PATH}?{urlencode(query)}"


def _say(verb, line: Line, voice: VoiceContent) -> None:
    spoken = voice.voice(line.language)
    verb.say(line.text, voice=spoken.name, language=spoken.locale)


def render(turn: Turn, voice: VoiceContent, base_url: str) -> str:
    """The TwiML of a turn: lines inside a <Gather> for one key (silence calls back too), or a <Dial>, or goodbye."""
    response = VoiceResponse()
    if turn.dial:
        for line in turn.lines:
            _say(response, line, voice)
        response.dial(turn.dial)
        # Heard when the hotline call ends or cannot connect: the number again, to call it later.
        language = turn.state.language or voice.heard_languages[0]
        _say(response, Line(language, voice.say(language, "goodbye")), voice)
        response.hangup()
    elif turn.gather:
        gather = response.gather(num_digits=1, action=menu_url(base_url, turn.state), method="POST",
                                 timeout=GATHER_TIMEOUT_SECONDS, action_on_empty_result=True)
        for line in turn.lines:
            _say(gather, line, voice)
    else:
        for line in turn.lines:
            _say(response, line, voice)
        response.hangup()
    return str(response)
