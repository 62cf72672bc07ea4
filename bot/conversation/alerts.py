"""Alert conversations: following a school's safety alerts (double opt-in), listing, leaving, VERIFY."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from bot.content import encoding, segments
from bot.content.matching import TYPO_MIN_LENGTH, fold_case, menu_number, strip_accents, within_one_edit
from bot.content.model import Content
from bot.content.schools import looks_like_a_school
from bot.conversation.turn import AlertFacts, Outcome, Subscribe, Turn, Unsubscribe, outcome
from bot.conversation.workshops import format_when
from bot.people.identity import WHATSAPP

ASK_SCHOOL = "school"
CHOOSE_SCHOOL = "school_choice"
CONFIRM_SCHOOL = "school_confirm"
CHOOSE_LEAVE = "leave_choice"
MAX_CODE_LENGTH = 12  # codes are shorter; a longer "code" is echoed back cut, never stored
MIN_CODE_LENGTH = 3  # a shorter first word after VERIFY is not a code someone copied ("check my alerts")


def numbered(names: list[str]) -> str:
    """Lines "1 name" for a numbered question."""
    return "\n".join(f"{n} {name}" for n, name in enumerate(names, 1))


def start(turn: Turn) -> Outcome:
    """ALERTS: explain the alerts and ask which school."""
    return outcome(turn, (turn.text("alerts.info"),), "alerts", pending=ASK_SCHOOL, choices=())


def _confirm(turn: Turn, code: str) -> Outcome:
    if code in turn.state.schools:
        return outcome(turn, (turn.text("alerts.subscribed", school=turn.content.school_names([code])),),
                       "alerts_already", pending=None, choices=())
    text = turn.text("alerts.confirm", school=turn.content.school_names([code]))
    return outcome(turn, (text,), "alerts_confirm", pending=CONFIRM_SCHOOL, choices=(code,))


def _school_named(turn: Turn) -> Outcome | None:
    """The family named a school (or tried to); 0 cancels."""
    if _number(turn) == 0:
        return _cancelled(turn)
    named = start_naming(turn, turn.inbound.text)
    if named is None and looks_like_a_school(turn.inbound.text):  # a school Aviso does not cover: no loop
        return outcome(turn, (turn.text("alerts.unknown_school"),), "alerts_unknown_school", pending=None,
                       choices=())
    if named is None:  # the question stays open (a typo?): MENU or another keyword leaves it
        return outcome(turn, (turn.text("alerts.no_school"),), "alerts_no_school")
    return named


def start_naming(turn: Turn, named: str) -> Outcome | None:
    """ALERTS with the school in the same message ("ALERTAS Garfield"); None when it names no school."""
    found = turn.content.schools.find(named)
    if not found:
        return None
    if len(found) == 1:
        return _confirm(turn, found[0].code)
    return _choose(turn, tuple(s.code for s in found))


def leave_naming(turn: Turn, named: str) -> Outcome | None:
    """LEAVE with a followed school's name in the same message ("SALIR Belmont"); None when it names none."""
    codes = [s.code for s in turn.content.schools.find(named) if s.code in turn.state.schools]
    return _leave_school(turn, codes[0]) if len(codes) == 1 else None


def _choose(turn: Turn, codes: tuple[str, ...]) -> Outcome:
    names = [turn.content.school_names([code]) for code in codes]
    text = "\n".join([turn.text("alerts.choose_school"), numbered(names)])
    return outcome(turn, (text,), "alerts_choose", pending=CHOOSE_SCHOOL, choices=codes)


def _cancelled(turn: Turn) -> Outcome:
    return outcome(turn, (turn.text("alerts.cancelled"),), "alerts_cancelled", pending=None, choices=())


def _number(turn: Turn) -> int | None:
    return menu_number(fold_case(turn.inbound.text))


def _school_chosen(turn: Turn) -> Outcome:
    """A number from the list of schools (another number asks again), 0 to cancel, or a new name."""
    number = _number(turn)
    if number is None:
        return _school_named(turn)
    if number == 0:
        return _cancelled(turn)
    if 1 <= number <= len(turn.state.choices):
        return _confirm(turn, turn.state.choices[number - 1])
    return _choose(turn, turn.state.choices)


def _confirmed(turn: Turn) -> Outcome:
    """1 follows the school, 0 cancels; any other answer asks again (the question is not dropped)."""
    number = _number(turn)
    if not turn.state.choices:
        return _cancelled(turn)
    code = turn.state.choices[0]
    if number == 1:
        schools = tuple(dict.fromkeys((*turn.state.schools, code)))
        text = turn.text("alerts.subscribed", school=turn.content.school_names([code]))
        return outcome(turn, (text,), "alerts_subscribed", Subscribe(code), schools=schools, pending=None,
                       choices=())
    if number == 0:
        return _cancelled(turn)
    text = turn.text("alerts.confirm", school=turn.content.school_names([code]))
    return outcome(turn, (text,), "alerts_confirm", pending=CONFIRM_SCHOOL, choices=(code,))


def list_schools(turn: Turn) -> Outcome:
    """MY ALERTS: the schools the family follows."""
    if not turn.state.schools:
        return outcome(turn, (turn.text("alerts.none"),), "my_alerts", pending=None, choices=())
    names = [turn.content.school_names([code]) for code in turn.state.schools]
    return outcome(turn, (turn.text("alerts.list", schools="\n".join(names)),), "my_alerts", pending=None,
                   choices=())


def _leave_school(turn: Turn, code: str) -> Outcome:
    schools = tuple(c for c in turn.state.schools if c != code)
    text = turn.text("alerts.left", school=turn.content.school_names([code]))
    return outcome(turn, (text,), "alerts_left", Unsubscribe(code), schools=schools, pending=None, choices=())


def leave(turn: Turn) -> Outcome:
    """LEAVE: stop one school's alerts (asking which when there are several)."""
    if not turn.state.schools:
        return outcome(turn, (turn.text("alerts.none"),), "leave")
    if len(turn.state.schools) == 1:
        return _leave_school(turn, turn.state.schools[0])
    return _leave_which(turn, turn.state.schools)


def _leave_which(turn: Turn, codes: tuple[str, ...]) -> Outcome:
    names = [turn.content.school_names([code]) for code in codes]
    text = "\n".join([turn.text("alerts.leave_which"), numbered(names)])
    return outcome(turn, (text,), "leave", pending=CHOOSE_LEAVE, choices=codes)


def _leave_chosen(turn: Turn) -> Outcome:
    """A number from the list (0 keeps every school), or a followed school's name; else ask again."""
    number = _number(turn)
    if number == 0:
        return list_schools(turn)  # nothing changed: say what they still follow
    if number is not None and 1 <= number <= len(turn.state.choices):
        return _leave_school(turn, turn.state.choices[number - 1])
    named = leave_naming(turn, turn.inbound.text) if number is None else None
    if named is not None:
        return named
    followed = tuple(code for code in turn.state.choices if code in turn.state.schools)
    return _leave_which(turn, followed or turn.state.choices)


# What an answer means while the family is in the middle of a question (None: not an answer).
PENDING: dict[str, Callable[[Turn], Outcome | None]] = {
    ASK_SCHOOL: _school_named,
    CHOOSE_SCHOOL: _school_chosen,
    CONFIRM_SCHOOL: _confirmed,
    CHOOSE_LEAVE: _leave_chosen,
}


@lru_cache(maxsize=16)  # per content version object: the webhook asks on every message
def _verify_phrases(content: Content) -> list[tuple[str, frozenset[str]]]:
    phrases: dict[str, set[str]] = {}
    for code in content.languages:
        for phrase in content.language(code).get("keywords", {}).get("verify", []):
            phrases.setdefault(strip_accents(fold_case(phrase)), set()).add(code)
    return sorted(((p, frozenset(c)) for p, c in phrases.items()), key=lambda item: len(item[0]), reverse=True)


@lru_cache(maxsize=64)  # the webhook and the engine both ask about the same message
def parse_verify(text: str, content: Content) -> tuple[str, frozenset[str]] | None:
    """("code", languages of the keyword) for "VERIFY <code>" ("" for the bare keyword); None otherwise."""
    folded = strip_accents(fold_case(text[:80]))
    for phrase, languages in _verify_phrases(content):
        if folded == phrase:
            return "", languages
        rest = folded[len(phrase):] if folded.startswith(phrase) else None
        # "VERIFY K7P2Q"; in scripts without spaces between words, "확인K7P2Q" too.
        if rest and (rest[0] == " " or (not phrase[-1].isascii() and rest[0].isascii() and rest[0].isalnum())):
            # The code is the first word: "VERIFICAR 7W37D por favor" is 7W37D. A word too short to be a
            # code ("check my alerts") asks how to verify instead of calling a code false.
            return _code_in(rest), languages
    # "VERIFCAR 7W37D": a one-letter typo in a one-word keyword, when a code-like word follows.
    first, _, rest = folded.partition(" ")
    if len(first) >= TYPO_MIN_LENGTH and _code_in(rest):
        for phrase, languages in _verify_phrases(content):
            if " " not in phrase and within_one_edit(first, phrase):
                return _code_in(rest), languages
    return None


def _code_in(rest: str) -> str:
    """The code in what follows VERIFY: its first word, letters and digits only ("" when too short)."""
    words = rest.split()
    code = re.sub(r"[^A-Z0-9]", "", words[0].upper())[:MAX_CODE_LENGTH] if words else ""
    return code if len(code) >= MIN_CODE_LENGTH else ""


def verify_code(text: str, content: Content) -> str | None:
    """The code a VERIFY message names ("" for none), or None when the text is no VERIFY."""
    parsed = parse_verify(text, content)
    return parsed[0] if parsed else None


def verify(turn: Turn) -> Outcome:
    """VERIFY <code>: is this alert genuine? (The service looked the code up.)"""
    code = verify_code(turn.inbound.text, turn.content) or ""
    if not code:
        return outcome(turn, (turn.text("verify.usage"),), "verify_usage")
    facts = turn.inbound.verification
    if facts is None or facts.code != code:
        return outcome(turn, (turn.text("verify.unknown", code=code),), "verify_unknown")

    text = turn.text(
        "verify.genuine", code=code, school=turn.content.school_names(facts.schools),
        when=format_when(turn.content, turn.lang, facts.sent_at.astimezone(turn.inbound.now.tzinfo)),
        status=turn.text(f"status.{facts.kind}", verified_by=facts.verified_by, corrects=facts.corrects),
    )
    tail = turn.text("verify.corrected", correction=facts.corrected_by) if facts.corrected_by else ""
    said = _said(facts, turn.lang, turn.content.default_language)
    # What the genuine alert said: a real code under a doctored text does not check out. A forwarded alert
    # that was later corrected must not stand as it is: the correction's line comes last.
    lines = [text, _quoted(turn, text, tail, said) if said else "", tail]
    return outcome(turn, ("\n".join(line for line in lines if line),), "verify_genuine")


# VERIFY's answer costs no more than an alert: the manifest's "(alert) *" budgets, GSM-7 and UCS-2.
VERIFY_SEGMENTS = {segments.GSM7: 3, segments.UCS2: 5}


def _said(facts: AlertFacts, lang: str, default: str) -> str:
    """The alert's text in the asker's language, else the one their language got (fallback), else the default."""
    for candidate in (lang, facts.fallback_language, default, *facts.said):
        if candidate and facts.said.get(candidate):
            return facts.said[candidate]
    return ""


def _quoted(turn: Turn, head: str, tail: str, said: str) -> str:
    """The "it said" line, shortened at a word (a character in scripts without spaces) so the whole answer
    fits an alert's budget on SMS."""
    line = turn.text("verify.said", text=said)
    if turn.inbound.channel == WHATSAPP:
        return line
    glue = " " if " " in said.strip() else ""
    pieces = said.split() if glue else list(said.strip())
    while len(pieces) > 1:
        cost = encoding.sms_cost("\n".join(part for part in (head, line, tail) if part), turn.lang)
        if cost.segments <= VERIFY_SEGMENTS[cost.encoding]:
            break
        pieces.pop()
        line = turn.text("verify.said", text=glue.join(pieces) + " ...")
    return line
