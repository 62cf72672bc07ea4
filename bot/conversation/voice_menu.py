"""Voice menu: the pure engine of a call, (state, keys pressed, voice content) -> (what to say, next state)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.content.voice import SPOKEN_MENUS, VoiceContent

LANGUAGE = "language"
MAIN = "main"
INTERPRETERS = "interpreters"  # the language menu's last option: how to get an interpreter, in the greeting languages
MAIN_MENU = SPOKEN_MENUS  # the main menu's sub-menus, keys 1 and 2
ALERTS = "alerts.signup"  # key 3: how to sign up for a school's safety alerts (by text)
CALLS_KEY = "1"  # in ALERTS: be called for urgent alerts (as VOICE / VOZ by text)
MAIN_OPTIONS = (*MAIN_MENU, ALERTS)  # 0 is always the hotline
HOTLINE_KEY = "0"
REPEAT_KEY = "*"
BACK_KEY = "#"
REPEATS_ON_SILENCE = 2  # silence repeats the question this many times, then offers the hotline


@dataclass(frozen=True)
class CallState:
    """Where a call is: a menu (language, main, rights, resources) or a text heard; language; silences in a row."""

    at: str = LANGUAGE
    language: str | None = None
    silences: int = 0


@dataclass(frozen=True)
class Line:
    """One sentence to speak, and the language (so the voice) it is spoken in; or a recording to play."""

    language: str
    text: str
    audio: str | None = None  # a recorded language's clip (a path under voice/recordings/)


def line_of(voice: VoiceContent, language: str, key: str, /, **values: str) -> Line:
    """A voice text as a line: spoken by the language's voice, or its recording for a recorded language."""
    clip = voice.clip(language, key)
    if clip:
        return Line(language, "", clip)
    return Line(language, voice.say(language, key, **values))


@dataclass(frozen=True)
class Turn:
    """What the call does next: speak lines, then wait for a key, connect to a number, or hang up."""

    lines: tuple[Line, ...]
    state: CallState
    gather: bool = True
    dial: str | None = None
    remember_language: str | None = None  # the caller chose a language: keep it for their texts and calls
    ask_for_calls: bool = False  # the caller asked to be called for urgent alerts: keep it on their contact


def _menu_of(at: str, voice: VoiceContent) -> str | None:
    """The menu a text belongs to (rights.home -> rights), or None when at is no text of a voice menu."""
    if at == ALERTS:
        return MAIN
    for name in MAIN_MENU:
        if at in voice.menus.get(name, ()):
            return name
    return None


def _valid(state: CallState, voice: VoiceContent) -> CallState:
    """The state itself, or the language menu when the content changed under the call (language no longer
    heard, a text gone): a caller is never stuck on a state the active content cannot speak."""
    if state.at in (LANGUAGE, INTERPRETERS):
        return replace(state, language=None) if state.language not in voice.menu_languages else state
    if state.language not in voice.menu_languages:
        return CallState()
    if state.at == MAIN or state.at in MAIN_MENU or _menu_of(state.at, voice):
        return state
    return CallState()


def _prompt(state: CallState, voice: VoiceContent) -> tuple[Line, ...]:
    """The question a state asks (what * repeats and silence repeats)."""
    if state.at == LANGUAGE:
        options = tuple(line_of(voice, code, "language.option", key=str(number))
                        for number, code in enumerate(voice.menu_languages, start=1))
        last = str(len(voice.menu_languages) + 1)
        return options + tuple(line_of(voice, code, "language.indigenous", key=last)
                               for code in _greeting_languages(voice, None))
    if state.at == INTERPRETERS:  # families who speak none of the menu's languages may follow Spanish or English
        spoken = _greeting_languages(voice, None)
        return (*(line_of(voice, code, "resources.interpreters") for code in spoken),
                *(line_of(voice, code, "after") for code in spoken))
    language = state.language
    if state.at == MAIN:
        return (line_of(voice, language, "menu.main"),)
    if state.at in MAIN_MENU:
        return (line_of(voice, language, f"menu.{state.at}"),)
    return (line_of(voice, language, state.at), line_of(voice, language, "after"))


def _greeting_languages(voice: VoiceContent, known: str | None) -> tuple[str, ...]:
    if known:
        return (known,)
    return voice.heard_languages[:2]  # the first two (English, Spanish): a greeting in ten languages is too long


def start(known_language: str | None, voice: VoiceContent) -> Turn:
    """The first words of a call: a caller whose language is known goes straight to the main menu in it."""
    if not voice.heard_languages:  # content with no voice at all: nothing can be said, end the call cleanly
        return Turn((), CallState(), gather=False)
    if known_language in voice.heard_languages:
        state = CallState(MAIN, known_language)
    else:
        state = CallState()
    greeting = tuple(line_of(voice, code, "greeting")
                     for code in _greeting_languages(voice, state.language))
    return Turn(greeting + _prompt(state, voice), state)


def _speaker(state: CallState, voice: VoiceContent) -> str:
    return state.language or voice.heard_languages[0]


def _hotline(state: CallState, voice: VoiceContent) -> Turn:
    number = voice.hotline
    language = _speaker(state, voice)
    if number is None:  # no verified hotline configured: never dial a guess; read the menu again
        return Turn((line_of(voice, language, "invalid"), *_prompt(state, voice)), state)
    return Turn((line_of(voice, language, "connecting"),), state, gather=False, dial=number)


def _goodbye(state: CallState, voice: VoiceContent) -> Turn:
    language = _speaker(state, voice)
    return Turn((line_of(voice, language, "goodbye"),), state, gather=False)


def _silence(state: CallState, voice: VoiceContent) -> Turn:
    silences = state.silences + 1
    quiet = replace(state, silences=silences)
    if silences <= REPEATS_ON_SILENCE:
        return Turn(_prompt(state, voice), quiet)
    if silences == REPEATS_ON_SILENCE + 1:
        language = _speaker(state, voice)
        return Turn((line_of(voice, language, "silence.offer"),), quiet)
    return _goodbye(quiet, voice)


def _back(state: CallState, voice: VoiceContent) -> CallState:
    if state.at in MAIN_MENU:
        return CallState(MAIN, state.language)
    if state.at in (MAIN, INTERPRETERS):
        return CallState(LANGUAGE, state.language)
    menu = _menu_of(state.at, voice)
    return CallState(menu, state.language) if menu else state


def _choose(state: CallState, key: str, voice: VoiceContent) -> CallState | None:
    """The state a numbered key leads to from a menu, or None when it is no option there."""
    if not key.isdigit() or key == "0":
        return None
    number = int(key)
    if state.at == LANGUAGE:
        languages = voice.menu_languages
        if number == len(languages) + 1:
            return CallState(INTERPRETERS)
        return CallState(MAIN, languages[number - 1]) if number <= len(languages) else None
    if state.at == MAIN:
        return CallState(MAIN_OPTIONS[number - 1], state.language) if number <= len(MAIN_OPTIONS) else None
    if state.at in MAIN_MENU:
        items = voice.menus.get(state.at, ())
        return CallState(items[number - 1], state.language) if number <= len(items) else None
    return None  # a text heard: only *, # and 0 mean something


def step(state: CallState, digits: str, voice: VoiceContent) -> Turn:
    """Answer the keys a caller pressed (empty: silence) in a state."""
    if not voice.heard_languages:
        return Turn((), CallState(), gather=False)
    state = _valid(state, voice)
    if not digits:
        return _silence(state, voice)
    key = digits[0]
    awake = replace(state, silences=0)
    if key == HOTLINE_KEY:
        return _hotline(awake, voice)
    if key == REPEAT_KEY:
        return Turn(_prompt(awake, voice), awake)
    if key == BACK_KEY:
        back = _back(awake, voice)
        return Turn(_prompt(back, voice), back)
    if awake.at == ALERTS and key == CALLS_KEY:
        language = awake.language
        lines = (line_of(voice, language, "alerts.calls_on"), line_of(voice, language, "after"))
        return Turn(lines, awake, ask_for_calls=True)
    chosen = _choose(awake, key, voice)
    if chosen is None:
        language = _speaker(awake, voice)
        return Turn((line_of(voice, language, "invalid"), *_prompt(awake, voice)), awake)
    # A language of the texts is kept for the caller's texts and next call; a recorded one is for this call only.
    remember = chosen.language if awake.at == LANGUAGE and chosen.language in voice.heard_languages else None
    return Turn(_prompt(chosen, voice), chosen, remember_language=remember)
