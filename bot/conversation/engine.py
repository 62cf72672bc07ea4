"""The conversation engine: a pure function from (state, inbound text, content) to replies and effects.

No Flask, no Redis, no clock: everything it needs is passed in, so it is tested with tables.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from bot.content.matching import fold_case, menu_number
from bot.content.model import Content
from bot.content.schools import looks_like_a_school
from bot.conversation import alerts as alert_flow
from bot.conversation import free_text
from bot.conversation import sources as sources_reply
from bot.conversation import workshops as workshop_flow
from bot.conversation.turn import (  # noqa: F401  (re-exported: the engine's public vocabulary)
    AlertFacts,
    CancelRegistration,
    ContactState,
    Effect,
    Forget,
    Inbound,
    OptIn,
    OptOut,
    Outcome,
    Policy,
    Register,
    Subscribe,
    Turn,
    Unsubscribe,
    outcome,
)
from bot.conversation.workshops import WORKSHOPS_LISTED, format_when, workshops_text  # noqa: F401  (re-exported)
from bot.people.identity import SMS

# Carrier keywords keep their industry meaning (CTIA; Twilio Advanced Opt-Out) and nothing else.
CARRIER_OPT_OUT = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"})
CARRIER_OPT_IN = frozenset({"start", "unstop", "yes"})
CARRIER_HELP = frozenset({"help", "info"})
CARRIER_WORDS = CARRIER_OPT_OUT | CARRIER_OPT_IN | CARRIER_HELP
# Twilio's OptOutType webhook parameter, when Advanced Opt-Out recognised the message.
OPT_OUT_TYPES = {"STOP": "opt_out", "START": "opt_in", "HELP": "carrier_help"}

MAIN = "main"
LANGUAGE_MENU = "language"
FORGET_CONFIRM_WINDOW = timedelta(minutes=10)
# What an answer means while the family is in the middle of a question, per flow.
PENDING = {**alert_flow.PENDING, **workshop_flow.PENDING}
_FREE_TEXT_PENDING = (free_text.CLARIFY, free_text.WHICH_LANGUAGE)


DEFAULT_POLICY = Policy()


def respond(state: ContactState, inbound: Inbound, content: Content, policy: Policy = DEFAULT_POLICY) -> Outcome:
    """Answer one inbound message."""
    turn = Turn(state, inbound, content, policy)
    word = fold_case(inbound.text)
    carrier = OPT_OUT_TYPES.get((inbound.opt_out_type or "").upper()) or _carrier_command(word)
    if carrier:
        return _CARRIER_HANDLERS[carrier](turn)
    match = content.keywords.lookup(inbound.text)
    if state.opted_out:
        if match is not None and match.command == "forget":
            return _forget_after_stop(turn)
        return outcome(turn, (), "ignored_opted_out")
    if not word and inbound.has_media:
        return free_text.media(turn)
    verifying = alert_flow.parse_verify(inbound.text, content)
    if verifying is not None:
        return alert_flow.verify(turn.with_state(language=_language_after(turn, verifying[1])))
    if match is None and not word.isdigit():  # "Derechos por favor": a keyword among politeness words
        match = content.keywords.lookup(content.understanding.without_fillers(inbound.text) or word)
    if state.pending == "forget" and match is not None and match.command == "forget":
        if state.pending_until and inbound.now <= state.pending_until:
            return Outcome((turn.text("forget.done"),), ContactState(), "forget", (Forget(),))
    if match is None:  # "ALERTAS Garfield": a keyword and its answer in one message
        named = _keyword_with_school(turn)
        if named is not None:
            return named
    if state.pending in _FREE_TEXT_PENDING and match is None:
        answered = free_text.answered(turn, _COMMAND_HANDLERS)
        if answered is not None:
            return answered
    if state.pending in PENDING and match is None:
        answered = PENDING[state.pending](turn)
        unanswered = answered is not None and (answered.state.pending == state.pending
                                               or answered.command == "alerts_unknown_school")
        if unanswered and not word.isdigit():
            # Not an answer (the question would be asked again, or no such school): agents come first.
            return free_text.urgent_only(turn, _COMMAND_HANDLERS) or answered
        if answered is not None:
            return answered
    turn = turn.with_state(pending=None, pending_until=None, choices=())
    number = menu_number(word)
    if number is not None:
        return _number(turn, number)
    if match is not None and match.command in _COMMAND_HANDLERS:
        shared = _shared_keyword_languages(turn, match.languages)
        if shared:  # "حقوق" is Arabic and Farsi: ask which, naming both, rather than guess
            return free_text.ask_language(turn, shared, match.command)
        turn = turn.with_state(language=_language_after(turn, match.languages))
        return _COMMAND_HANDLERS[match.command](turn)
    if match is not None and match.command == "language_choice":
        return _choose_language(turn, _first_language(content, match.languages))
    understood = free_text.understand(turn, _COMMAND_HANDLERS)
    if understood is not None:
        return understood
    if turn.state.language is None:
        return _welcome(turn)
    return outcome(turn, (turn.text("unknown"),), "unknown")


# Keywords whose question may be answered in the same message, and how.
_NAMING = {"alerts": alert_flow.start_naming, "leave": alert_flow.leave_naming}


def _keyword_with_school(turn: Turn) -> Outcome | None:
    """A leading ALERTS or LEAVE keyword (one or two words) and a school's name after it; else None."""
    words = turn.inbound.text.split()
    for size in (2, 1):
        if len(words) <= size:
            continue
        match = turn.content.keywords.lookup(" ".join(words[:size]))
        if match is not None and match.command in _NAMING:
            asked = turn.with_state(language=_language_after(turn, match.languages), pending=None, choices=())
            rest = turn.content.understanding.without_fillers(" ".join(words[size:]))
            named = _NAMING[match.command](asked, rest) if rest else None
            if named is None and match.command == "alerts" and looks_like_a_school(rest) \
                    and not free_text.reads_as_other(turn, "alerts", _COMMAND_HANDLERS):
                return outcome(asked, (asked.text("alerts.unknown_school"),), "alerts_unknown_school")
            return named
    return None


def _shared_keyword_languages(turn: Turn, languages: frozenset[str]) -> tuple[str, ...]:
    """The languages to ask between when a keyword belongs to several and none is the contact's; else ()."""
    if turn.state.language in languages or turn.content.default_language in languages or len(languages) < 2:
        return ()
    return tuple(code for code in turn.content.languages if code in languages)


def _carrier_command(word: str) -> str | None:
    if word in CARRIER_OPT_OUT:
        return "opt_out"
    if word in CARRIER_OPT_IN:
        return "opt_in"
    if word in CARRIER_HELP:
        return "carrier_help"
    return None


def _first_language(content: Content, languages: frozenset[str]) -> str:
    return next(code for code in content.languages if code in languages)


def _language_after(turn: Turn, languages: frozenset[str]) -> str:
    """The keyword's language sticks, but a Latin keyword everyone knows keeps an established choice."""
    current = turn.state.language
    if current in languages:
        return current
    if current is not None and turn.content.default_language in languages:
        return current
    return _first_language(turn.content, languages)


def _silent_on_carrier_sms(turn: Turn) -> bool:
    return turn.inbound.channel == SMS and turn.policy.carrier_answers_sms_keywords


def _opt_out(turn: Turn) -> Outcome:
    replies = () if _silent_on_carrier_sms(turn) else (turn.text("stop.done"),)
    return outcome(turn, replies, "stop", OptOut(), opted_out=True, pending=None, pending_until=None, choices=(),
                   voice_calls=False)


def _opt_in(turn: Turn) -> Outcome:
    replies = () if _silent_on_carrier_sms(turn) else (turn.text("start.done"),)
    return outcome(turn, replies, "start", OptIn(), opted_out=False)


def _help(turn: Turn) -> Outcome:
    """Who is sending and how to stop (carrier rules), then the hotline and how to reach a person."""
    return outcome(turn, (turn.text("help"), turn.text("help.more")), "help")


def _forget_after_stop(turn: Turn) -> Outcome:
    """FORGET from a contact who sent STOP deletes at once: the carrier blocks the SMS question that would
    confirm it, so no reply goes out on SMS; on WhatsApp Aviso confirms (docs/understanding.md)."""
    replies = () if _silent_on_carrier_sms(turn) else (turn.text("forget.done"),)
    return Outcome(replies, ContactState(), "forget", (Forget(),))


_CARRIER_HANDLERS: dict[str, Callable[[Turn], Outcome]] = {
    "opt_out": _opt_out,
    "opt_in": _opt_in,
    "carrier_help": _help,
}


def main_menu_text(content: Content, lang: str) -> str:
    """The main menu: heading, numbered entries, footer."""
    lines = [f"{n} {content.label(lang, node)}" for n, node in enumerate(content.main_menu, 1)]
    return "\n".join([content.text(lang, "menu.intro"), *lines, content.text(lang, "menu.footer")])


def submenu_text(content: Content, lang: str, menu_id: str) -> str:
    """A sub-menu: its intro, numbered entries, footer."""
    menu = content.menus[menu_id]
    lines = [f"{n} {content.label(lang, item)}" for n, item in enumerate(menu["items"], 1)]
    return "\n".join([content.text(lang, menu["intro"]), *lines, content.text(lang, "submenu.footer")])


def language_lines(content: Content) -> str:
    """The numbered list of languages, each in its own name, then the indigenous-languages entry."""
    lines = [f"{n} {content.language_name(code)}" for n, code in enumerate(content.languages, 1)]
    if content.interpreters:
        lines.append(f"{len(lines) + 1} {content.interpreters['label']}")
    return "\n".join(lines)


def interpreters_text(content: Content) -> str:
    """How to get a spoken interpreter, in each welcome language (Spanish first: most readers)."""
    texts = content.interpreters["texts"]
    return "\n\n".join(texts[code] for code in sorted(texts, key=lambda c: c != "es"))


def welcome_text(content: Content) -> str:
    """The first-contact welcome: a line in each welcome language, then the language list."""
    intros = [content.text(code, "welcome") for code in content.welcome_languages]
    return "\n".join([*intros, language_lines(content)])


def _welcome(turn: Turn) -> Outcome:
    return outcome(turn, (welcome_text(turn.content),), "welcome", at=LANGUAGE_MENU)


def _main_menu(turn: Turn) -> Outcome:
    return outcome(turn, (main_menu_text(turn.content, turn.lang),), "menu", at=MAIN)


def _submenu(menu_id: str) -> Callable[[Turn], Outcome]:
    def show(turn: Turn) -> Outcome:
        intro = turn.content.menus[menu_id].get("intro")
        return outcome(turn, (submenu_text(turn.content, turn.lang, menu_id),), menu_id, at=menu_id, last=intro)

    return show


def _language_menu(turn: Turn) -> Outcome:
    text = "\n".join([turn.content.text(turn.lang, "language.prompt"), language_lines(turn.content)])
    return outcome(turn, (text,), "language", at=LANGUAGE_MENU)


def _choose_language(turn: Turn, code: str) -> Outcome:
    turn = turn.with_state(language=code)
    text = "\n".join([turn.content.text(code, "language.set"), main_menu_text(turn.content, code)])
    return outcome(turn, (text,), "language_set", at=MAIN)


def _voice_calls(wanted: bool) -> Callable[[Turn], Outcome]:
    def answer(turn: Turn) -> Outcome:
        key = "voice_calls.on" if wanted else "voice_calls.off"
        return outcome(turn, (turn.text(key),), key.replace(".", "_"), voice_calls=wanted)
    return answer


def _forget(turn: Turn) -> Outcome:
    until = turn.inbound.now + FORGET_CONFIRM_WINDOW
    text = turn.content.text(turn.lang, "forget.confirm")
    return outcome(turn, (text,), "forget_confirm", pending="forget", pending_until=until)


def _number(turn: Turn, number: int) -> Outcome:
    content, at = turn.content, turn.state.at
    if at == LANGUAGE_MENU:
        if number == 0 and turn.state.language:
            return _main_menu(turn)
        if 1 <= number <= len(content.languages):
            return _choose_language(turn, content.languages[number - 1])
        if number == len(content.languages) + 1 and content.interpreters:
            return outcome(turn, (interpreters_text(content),), "interpreters")
        return _language_menu(turn) if turn.state.language else _welcome(turn)
    if turn.state.language is None:
        return _welcome(turn)
    if number == 0:
        return _main_menu(turn)
    if at in content.menus:
        items = content.menus[at]["items"]
        if 1 <= number <= len(items):
            item = items[number - 1]
            return outcome(turn, (content.text(turn.lang, item),), item, last=item)
        return _submenu(at)(turn)
    if 1 <= number <= len(content.main_menu):
        return _COMMAND_HANDLERS[content.main_menu[number - 1]](turn)
    return _main_menu(turn)


_COMMAND_HANDLERS: dict[str, Callable[[Turn], Outcome]] = {
    "rights": _submenu("rights"),
    "resources": _submenu("resources"),
    "workshops": workshop_flow.list_workshops,
    "my_workshops": workshop_flow.my_workshops,
    "alerts": alert_flow.start,
    "my_alerts": alert_flow.list_schools,
    "leave": alert_flow.leave,
    "verify": alert_flow.verify,
    "menu": _main_menu,
    "help": _help,
    "language": _language_menu,
    "forget": _forget,
    "sources": sources_reply.answer,
    "voice_calls": _voice_calls(True),
    "no_voice_calls": _voice_calls(False),
}
COMMAND_NAMES = frozenset(_COMMAND_HANDLERS)
