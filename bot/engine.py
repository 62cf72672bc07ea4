"""The conversation engine: a pure function from (state, inbound text, content) to replies and effects.

No Flask, no Redis, no clock: everything it needs is passed in, so it is tested with tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from .content import Content
from .identity import SMS
from .matching import fold_case

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
WORKSHOPS_LISTED = 4


@dataclass(frozen=True)
class ContactState:
    """What Aviso remembers of a conversation: language, place in the menus, pending confirmation."""

    language: str | None = None
    at: str | None = None
    pending: str | None = None
    pending_until: datetime | None = None
    opted_out: bool = False
    is_new: bool = True


@dataclass(frozen=True)
class Inbound:
    """One message from a family, as the engine needs it."""

    text: str
    channel: str
    now: datetime
    opt_out_type: str | None = None
    has_media: bool = False


@dataclass(frozen=True)
class Policy:
    """Deployment choices that change answers."""

    carrier_answers_sms_keywords: bool = True  # Twilio Advanced Opt-Out answers STOP/START on SMS


@dataclass(frozen=True)
class OptOut:
    """Stop sending anything to this contact."""


@dataclass(frozen=True)
class OptIn:
    """The contact may be sent messages again."""


@dataclass(frozen=True)
class Forget:
    """Delete everything about this contact."""


Effect = OptOut | OptIn | Forget


@dataclass(frozen=True)
class Outcome:
    """What to answer, what to remember, and what to do."""

    replies: tuple[str, ...]
    state: ContactState
    command: str
    effects: tuple[Effect, ...] = field(default=())

    @property
    def language(self) -> str | None:
        """The language the contact is answered in."""
        return self.state.language


@dataclass(frozen=True)
class _Turn:
    state: ContactState
    inbound: Inbound
    content: Content
    policy: Policy

    @property
    def lang(self) -> str:
        return self.state.language or self.content.default_language


def respond(state: ContactState, inbound: Inbound, content: Content, policy: Policy = Policy()) -> Outcome:
    """Answer one inbound message."""
    turn = _Turn(replace(state, is_new=state.is_new), inbound, content, policy)
    word = fold_case(inbound.text)
    carrier = OPT_OUT_TYPES.get((inbound.opt_out_type or "").upper()) or _carrier_command(word)
    if carrier:
        return _CARRIER_HANDLERS[carrier](turn)
    if state.opted_out:
        return _outcome(turn, (), "ignored_opted_out")
    if state.pending == "forget":
        confirmed = _matched_command(turn, inbound.text) == "forget"
        if confirmed and state.pending_until and inbound.now <= state.pending_until:
            return Outcome((content.text(turn.lang, "forget.done"),), ContactState(), "forget", (Forget(),))
        turn = replace(turn, state=replace(turn.state, pending=None, pending_until=None))
    if word.isdigit():
        return _number(turn, int(word))
    match = content.keywords.lookup(inbound.text)
    if match is not None and match.command in _COMMAND_HANDLERS:
        turn = replace(turn, state=replace(turn.state, language=_language_after(turn, match.languages)))
        return _COMMAND_HANDLERS[match.command](turn)
    if match is not None and match.command == "language_choice":
        return _choose_language(turn, _first_language(content, match.languages))
    if turn.state.language is None:
        return _welcome(turn)
    return _outcome(turn, (content.text(turn.lang, "unknown"),), "unknown")


def _carrier_command(word: str) -> str | None:
    if word in CARRIER_OPT_OUT:
        return "opt_out"
    if word in CARRIER_OPT_IN:
        return "opt_in"
    if word in CARRIER_HELP:
        return "carrier_help"
    return None


def _matched_command(turn: _Turn, text: str) -> str | None:
    match = turn.content.keywords.lookup(text)
    return match.command if match else None


def _first_language(content: Content, languages: frozenset[str]) -> str:
    return next(code for code in content.languages if code in languages)


def _language_after(turn: _Turn, languages: frozenset[str]) -> str:
    """The keyword's language sticks, but a Latin keyword everyone knows keeps an established choice."""
    current = turn.state.language
    if current in languages:
        return current
    if current is not None and turn.content.default_language in languages:
        return current
    return _first_language(turn.content, languages)


def _outcome(turn: _Turn, replies: tuple[str, ...], command: str, **state_changes) -> Outcome:
    state = replace(turn.state, is_new=False, **state_changes)
    return Outcome(replies, state, command)


def _silent_on_carrier_sms(turn: _Turn) -> bool:
    return turn.inbound.channel == SMS and turn.policy.carrier_answers_sms_keywords


def _opt_out(turn: _Turn) -> Outcome:
    replies = () if _silent_on_carrier_sms(turn) else (turn.content.text(turn.lang, "stop.done"),)
    state = replace(turn.state, opted_out=True, is_new=False, pending=None, pending_until=None)
    return Outcome(replies, state, "stop", (OptOut(),))


def _opt_in(turn: _Turn) -> Outcome:
    replies = () if _silent_on_carrier_sms(turn) else (turn.content.text(turn.lang, "start.done"),)
    return Outcome(replies, replace(turn.state, opted_out=False, is_new=False), "start", (OptIn(),))


def _help(turn: _Turn) -> Outcome:
    return _outcome(turn, (turn.content.text(turn.lang, "help"),), "help")


_CARRIER_HANDLERS: dict[str, Callable[[_Turn], Outcome]] = {
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
    """The numbered list of languages, each in its own name."""
    return "\n".join(f"{n} {content.language_name(code)}" for n, code in enumerate(content.languages, 1))


def welcome_text(content: Content) -> str:
    """The first-contact welcome: a line in each welcome language, then the language list."""
    intros = [content.text(code, "welcome") for code in content.welcome_languages]
    return "\n".join([*intros, language_lines(content)])


def _welcome(turn: _Turn) -> Outcome:
    return _outcome(turn, (welcome_text(turn.content),), "welcome", at=LANGUAGE_MENU)


def _main_menu(turn: _Turn) -> Outcome:
    return _outcome(turn, (main_menu_text(turn.content, turn.lang),), "menu", at=MAIN)


def _submenu(menu_id: str) -> Callable[[_Turn], Outcome]:
    def show(turn: _Turn) -> Outcome:
        return _outcome(turn, (submenu_text(turn.content, turn.lang, menu_id),), menu_id, at=menu_id)

    return show


def _language_menu(turn: _Turn) -> Outcome:
    text = "\n".join([turn.content.text(turn.lang, "language.prompt"), language_lines(turn.content)])
    return _outcome(turn, (text,), "language", at=LANGUAGE_MENU)


def _choose_language(turn: _Turn, code: str) -> Outcome:
    turn = replace(turn, state=replace(turn.state, language=code))
    text = "\n".join([turn.content.text(code, "language.set"), main_menu_text(turn.content, code)])
    return _outcome(turn, (text,), "language_set", at=MAIN)


def _alerts(turn: _Turn) -> Outcome:
    return _outcome(turn, (turn.content.text(turn.lang, "alerts.info"),), "alerts")


def _forget(turn: _Turn) -> Outcome:
    until = turn.inbound.now + FORGET_CONFIRM_WINDOW
    text = turn.content.text(turn.lang, "forget.confirm")
    return _outcome(turn, (text,), "forget_confirm", pending="forget", pending_until=until)


def workshops_text(content: Content, lang: str, now: datetime) -> str:
    """Upcoming workshops, those offered in the family's language first."""
    upcoming = content.upcoming_workshops(now, limit=50)
    mine = [w for w in upcoming if lang in w.languages] or upcoming
    if not mine:
        return content.text(lang, "workshops.none")
    lines = [content.text(lang, "workshops.intro")]
    for number, workshop in enumerate(mine[:WORKSHOPS_LISTED], 1):
        title = workshop.title.get(lang) or workshop.title.get(content.default_language, workshop.id)
        place = content.text(lang, "workshops.online") if workshop.online else workshop.place
        lines.append(
            content.text(
                lang, "workshops.item", number=str(number), title=title,
                when=format_when(content, lang, workshop.starts), place=place,
            )
        )
    lines.append(content.text(lang, "workshops.footer"))
    return "\n".join(lines)


def format_when(content: Content, lang: str, moment: datetime) -> str:
    """A date and time written the way the language writes them."""
    calendar = content.language(lang).get("calendar") or content.language(content.default_language)["calendar"]
    if calendar.get("clock", "12h") == "12h":
        hour = moment.hour % 12 or 12
        time = f"{hour}:{moment.minute:02d} {'pm' if moment.hour >= 12 else 'am'}"
    else:
        time = f"{moment.hour}:{moment.minute:02d}"
    return content.text(
        lang, "workshops.when",
        weekday=calendar["weekdays"][moment.weekday()],
        day=str(moment.day),
        month=calendar["months"][moment.month - 1],
        time=time,
    )


def _workshops(turn: _Turn) -> Outcome:
    return _outcome(turn, (workshops_text(turn.content, turn.lang, turn.inbound.now),), "workshops")


def _number(turn: _Turn, number: int) -> Outcome:
    content, at = turn.content, turn.state.at
    if at == LANGUAGE_MENU:
        if 1 <= number <= len(content.languages):
            return _choose_language(turn, content.languages[number - 1])
        return _language_menu(turn) if turn.state.language else _welcome(turn)
    if turn.state.language is None:
        return _welcome(turn)
    if number == 0:
        return _main_menu(turn)
    if at in content.menus:
        items = content.menus[at]["items"]
        if 1 <= number <= len(items):
            return _outcome(turn, (content.text(turn.lang, items[number - 1]),), items[number - 1])
        return _submenu(at)(turn)
    if 1 <= number <= len(content.main_menu):
        return _COMMAND_HANDLERS[content.main_menu[number - 1]](turn)
    return _main_menu(turn)


_COMMAND_HANDLERS: dict[str, Callable[[_Turn], Outcome]] = {
    "rights": _submenu("rights"),
    "resources": _submenu("resources"),
    "workshops": _workshops,
    "alerts": _alerts,
    "menu": _main_menu,
    "help": _help,
    "language": _language_menu,
    "forget": _forget,
}
