"""Voice TwiML: a turn of the voice menu written with the twilio library's VoiceResponse."""

from __future__ import annotations

from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from bot.content.voice import VoiceContent
from bot.conversation.voice_menu import CallState, Line, Turn, line_of

MENU_PATH = "/twilio/voice/menu"
RECORDINGS_PATH = "/voice/recordings/"  # where Twilio fetches a recorded language's clips (<Play>)
GATHER_TIMEOUT_SECONDS = 6  # long enough to find the key on an old phone, short enough not to feel dead


def menu_url(base_url: str, state: CallState) -> str:
    """The gather callback for a state: the state travels in the signed URL, so Redis keeps no call state."""
    query = {"at": state.at, "quiet": str(state.silences)}
    if state.language:
        query["lang"] = state.language
    return f"{base_url}{MENU_PATH}?{urlencode(query)}"


def _say(verb, line: Line, voice: VoiceContent, base_url: str) -> None:
    if line.audio:
        verb.play(f"{base_url}{RECORDINGS_PATH}{line.audio}")
        return
    spoken = voice.voice(line.language)
    verb.say(line.text, voice=spoken.name, language=spoken.locale)


def render(turn: Turn, voice: VoiceContent, base_url: str) -> str:
    """The TwiML of a turn: lines inside a <Gather> for one key (silence calls back too), or a <Dial>, or goodbye."""
    response = VoiceResponse()
    if turn.dial:
        for line in turn.lines:
            _say(response, line, voice, base_url)
        response.dial(turn.dial)
        # Heard when the hotline call ends or cannot connect: the number again, to call it later.
        language = turn.state.language or voice.heard_languages[0]
        _say(response, line_of(voice, language, "goodbye"), voice, base_url)
        response.hangup()
    elif turn.gather:
        gather = response.gather(num_digits=1, action=menu_url(base_url, turn.state), method="POST",
                                 timeout=GATHER_TIMEOUT_SECONDS, action_on_empty_result=True)
        for line in turn.lines:
            _say(gather, line, voice, base_url)
    else:
        for line in turn.lines:
            _say(response, line, voice, base_url)
        response.hangup()
    return str(response)
