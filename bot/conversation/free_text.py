"""Free text: the engine's answers to sentences, thanks, ways of saying stop, pictures, and its questions
when unsure (which answer, or which of two languages). Pure, like the engine that calls it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

from bot.content.intents import is_symbol
from bot.content.language_id import Guess
from bot.content.model import Content
from bot.content.schools import looks_like_a_school, without_school_words
from bot.content.understanding import GREETING, SPECIAL, STOP, THANKS, URGENT
from bot.conversation.turn import OptOut, Outcome, Turn, outcome

CLARIFY = "clarify"  # pending: "Do you mean: 1 ..., 2 ...?" (choices: the answers offered)
WHICH_LANGUAGE = "which_language"  # pending: "1 العربية 2 فارسی" (choices: "language:answer")
_TWO_LANGUAGE_SCRIPTS = frozenset({"fa", "ar"})  # one script, two languages sharing many words
WELCOMED = frozenset({GREETING, THANKS, "help", "menu"})  # a first message like these gets the welcome

Commands = Mapping[str, Callable[[Turn], Outcome]]


def answerable(turn: Turn, commands: Iterable[str]) -> frozenset[str]:
    """The answers a reading may pick: commands (but FORGET, never guessed), texts, and the special ones."""
    return _answerable(turn.content, frozenset(commands))


@lru_cache(maxsize=16)  # per content version: asked on every message that is no keyword
def _answerable(content: Content, commands: frozenset[str]) -> frozenset[str]:
    texts = set(content.language(content.default_language).get("texts", {}))
    return frozenset({*commands, *SPECIAL, *texts} - {"forget"})


def media(turn: Turn) -> Outcome:
    """A picture, voice note or sticker with no text: Aviso cannot open it, and says which words work."""
    if turn.state.language is None:
        codes = turn.content.welcome_languages
        return outcome(turn, ("\n\n".join(turn.content.text(c, "media") for c in codes),), "media")
    return outcome(turn, (turn.text("media"),), "media")


def understand(turn: Turn, commands: Commands) -> Outcome | None:
    """The answer to a sentence, or a question when unsure; None when nothing in it was understood."""
    text = turn.inbound.text
    first = turn.state.language is None
    if not any(ch.isalnum() for ch in text) and any(is_symbol(ch) for ch in text):  # 👍, 😊, 🙏: a nod
        return None if first else give(turn, THANKS, commands)
    reading = turn.content.understanding.read(text, answerable(turn, commands))
    if first and reading.answer in WELCOMED:  # "hi", "thanks", "what is this": the welcome says it all
        return None
    labels = turn.content.language(turn.content.default_language).get("labels", {})
    choices = tuple(c for c in reading.choices if c in labels)  # a question offers what a menu can name
    if reading.answer is None and not choices:
        return None
    language = answer_language(turn, reading.guess)
    if language is None:
        return ask_language(turn, reading.guess.languages[:2], reading.answer or "")
    turn = turn.with_state(language=language, pending=None, pending_until=None, choices=())
    if reading.answer is not None:
        return give(turn, reading.answer, commands)
    return _clarify(turn, choices)


def reads_as_other(turn: Turn, command: str, commands: Commands) -> bool:
    """Whether the text is surely about something else than command ("알림 그만 받을래요" is a way of stopping)."""
    reading = turn.content.understanding.read(turn.inbound.text, answerable(turn, commands))
    if reading.answer is None:
        return bool(reading.choices) and command not in reading.choices
    return reading.answer != command


def urgent_only(turn: Turn, commands: Commands) -> Outcome | None:
    """An urgent situation (or a way of saying stop) written in the middle of another question; else None."""
    urgent = frozenset({*URGENT, STOP})
    reading = turn.content.understanding.read(turn.inbound.text, urgent)
    if reading.answer is None:
        return None
    if looks_like_a_school(turn.inbound.text):  # "Lincoln High School" names a school; "ICE at the school" is more
        rest = turn.content.understanding.read(without_school_words(turn.inbound.text), urgent)
        if rest.answer is None and not rest.choices:
            return None
    language = answer_language(turn, reading.guess) or turn.lang
    turn = turn.with_state(language=language, pending=None, pending_until=None, choices=())
    return give(turn, reading.answer, commands)


def answer_language(turn: Turn, guess: Guess) -> str | None:
    """The saved language, unless the text is clearly in another; None when two languages of one script
    tie and nothing was saved (Aviso asks)."""
    saved = turn.state.language
    if guess.clear and guess.best:
        return guess.best
    if saved is not None:
        return saved
    if len(guess.languages) >= 2 and set(guess.languages[:2]) <= _TWO_LANGUAGE_SCRIPTS:
        return None
    return turn.content.default_language


def give(turn: Turn, answer: str, commands: Commands) -> Outcome:
    """Give one answer: a text, a command's answer, or a special one (stop, thanks, greeting)."""
    if answer == STOP:  # not a carrier word, so no carrier answered it: Aviso confirms, on every channel
        return outcome(turn, (turn.text("stop.done"),), "stop", OptOut(), opted_out=True, pending=None,
                       pending_until=None, choices=())
    if answer == THANKS:
        return outcome(turn, (turn.text("thanks"),), "thanks")
    if answer == GREETING:
        return commands["menu"](turn)
    if answer in commands:
        return commands[answer](turn)
    if answer in URGENT:  # what to do now and the hotline first, then the full text
        return outcome(turn, (turn.text(URGENT[answer]), turn.text(answer)), answer)
    return outcome(turn, (turn.text(answer),), answer)


def _clarify(turn: Turn, choices: tuple[str, ...]) -> Outcome:
    lines = [turn.text("clarify.urgent")] if any(c in URGENT for c in choices) else []
    lines.append(turn.text("clarify.intro"))
    lines += [f"{n} {turn.content.label(turn.lang, c)}" for n, c in enumerate(choices, 1)]
    lines.append(turn.text("clarify.footer"))
    return outcome(turn, ("\n".join(lines),), CLARIFY, pending=CLARIFY, choices=choices)


def ask_language(turn: Turn, codes: tuple[str, ...], answer: str) -> Outcome:
    """Ask which of several languages the family writes, naming each in itself; the answer follows the choice."""
    lines = [turn.content.text(code, "language.which") for code in codes]
    lines += [f"{n} {turn.content.language_name(code)}" for n, code in enumerate(codes, 1)]
    return outcome(turn, ("\n".join(lines),), WHICH_LANGUAGE, pending=WHICH_LANGUAGE,
                   choices=tuple(f"{code}:{answer}" for code in codes))


def _number(turn: Turn) -> int | None:
    word = turn.inbound.text.strip()
    return int(word) if word.isdigit() and len(word) < 3 else None


def answered(turn: Turn, commands: Commands) -> Outcome | None:
    """The answer to Aviso's last question (which answer, which language); None when the text is no answer."""
    number, choices = _number(turn), turn.state.choices
    if number is None or number == 0:
        return None
    if not 1 <= number <= len(choices):  # a number not offered asks the question again
        if turn.state.pending == CLARIFY:
            return _clarify(turn, choices)
        return None
    cleared = turn.with_state(pending=None, pending_until=None, choices=())
    if turn.state.pending == WHICH_LANGUAGE:
        language, _, answer = choices[number - 1].partition(":")
        cleared = cleared.with_state(language=language)
        return give(cleared, answer, commands) if answer else commands["menu"](cleared)
    return give(cleared, choices[number - 1], commands)
