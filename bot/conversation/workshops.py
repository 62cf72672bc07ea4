"""Workshop conversations: the WORKSHOPS list, signing up (or joining the waitlist), MY WORKSHOPS, freeing a seat.

Pure, like the rest of the engine: the seats themselves are counted by registrations.py when the
service applies the Register effect. The engine assumes a seat is free unless Inbound.seats_left
says otherwise; when the store answers differently (the last seat just went, or one just freed up)
the service asks again with seats_left filled in.

Freeing a seat never uses the carrier word CANCEL (which stops everything): MY WORKSHOPS, then the
workshop's number, then 1 to confirm.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.content.matching import fold_case, menu_number
from bot.content.model import Content, Workshop
from bot.conversation.turn import CancelRegistration, Outcome, Register, Turn, outcome

WORKSHOPS_LISTED = 4
PICK = "ws_pick"  # the WORKSHOPS list is showing: a number signs up
WAITLIST = "ws_waitlist"  # the chosen workshop is full: 1 joins the waitlist, 0 does not
MINE = "ws_mine"  # MY WORKSHOPS is showing: a number chooses one to free
FREE = "ws_free"  # 1 frees the chosen seat (or waitlist place), 0 keeps it


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


def title_of(content: Content, lang: str, workshop: Workshop) -> str:
    """A workshop's title in a language (else the default language's, else its id)."""
    return workshop.title.get(lang) or workshop.title.get(content.default_language, workshop.id)


def place_of(content: Content, lang: str, workshop: Workshop, *, with_link: bool = False) -> str:
    """Where: the place, or "Online" (with the link, for a confirmation or a reminder)."""
    if not workshop.online:
        return workshop.place
    label = content.text(lang, "workshops.online")
    return f"{label} {workshop.link}" if with_link and workshop.link else label


def describe(content: Content, lang: str, workshop: Workshop) -> dict[str, str]:
    """The {title}, {when} and {place} of a confirmation, reminder or notice."""
    return {
        "title": title_of(content, lang, workshop),
        "when": format_when(content, lang, workshop.starts),
        "place": place_of(content, lang, workshop, with_link=True),
    }


def listed_workshops(content: Content, lang: str, now: datetime) -> list[Workshop]:
    """The workshops WORKSHOPS lists, in order: upcoming ones offered in the language (else all upcoming)."""
    upcoming = content.upcoming_workshops(now, limit=50)
    mine = [w for w in upcoming if lang in w.languages] or upcoming
    return mine[:WORKSHOPS_LISTED]


def workshops_text(content: Content, lang: str, now: datetime) -> str:
    """Upcoming workshops, those offered in the family's language first, numbered for signing up."""
    listed = listed_workshops(content, lang, now)
    if not listed:
        return content.text(lang, "workshops.none")
    lines = [content.text(lang, "workshops.intro")]
    for number, workshop in enumerate(listed, 1):
        lines.append(
            content.text(
                lang, "workshops.item", number=str(number), title=title_of(content, lang, workshop),
                when=format_when(content, lang, workshop.starts), place=place_of(content, lang, workshop),
            )
        )
    lines.append(content.text(lang, "workshops.footer"))
    return "\n".join(lines)


def _number(turn: Turn) -> int | None:
    return menu_number(fold_case(turn.inbound.text))


def _open(turn: Turn, workshop_id: str) -> Workshop | None:
    """The workshop, if it is still in the content and has not started."""
    workshop = turn.content.workshop(workshop_id)
    return workshop if workshop is not None and workshop.starts > turn.inbound.now else None


def _done(turn: Turn, key: str, command: str, *effects, values: dict[str, str] | None = None,
          **changes) -> Outcome:
    """A reply that ends the workshop question."""
    return outcome(turn, (turn.text(key, **(values or {})),), command, *effects, pending=None, choices=(),
                   **changes)


def list_workshops(turn: Turn) -> Outcome:
    """WORKSHOPS: the next workshops, numbered; a number signs up."""
    listed = listed_workshops(turn.content, turn.lang, turn.inbound.now)
    if not listed:
        return _done(turn, "workshops.none", "workshops")
    text = workshops_text(turn.content, turn.lang, turn.inbound.now)
    return outcome(turn, (text,), "workshops", pending=PICK, choices=tuple(w.id for w in listed))


def _sign_up(turn: Turn, workshop_id: str) -> Outcome:
    workshop = _open(turn, workshop_id)
    if workshop is None:
        return _done(turn, "workshops.gone", "workshop_gone")
    values = describe(turn.content, turn.lang, workshop)
    if workshop_id in turn.state.workshops:
        return _done(turn, "workshops.already", "workshop_already", values=values)
    if workshop_id in turn.state.waitlisted:
        return _done(turn, "workshops.waitlisted", "workshop_already", values={"title": values["title"]})
    if turn.inbound.seats_left.get(workshop_id, 1) <= 0:
        text = turn.text("workshops.full_waitlist", title=values["title"])
        return outcome(turn, (text,), "workshop_full", pending=WAITLIST, choices=(workshop_id,))
    return _done(turn, "workshops.confirmed", "workshop_signed_up", Register(workshop_id), values=values,
                 workshops=(*turn.state.workshops, workshop_id))


def _picked(turn: Turn) -> Outcome | None:
    number = _number(turn)
    if number is None or number == 0:
        return None  # a word, or 0 for the main menu: the family moved on
    if 1 <= number <= len(turn.state.choices):
        return _sign_up(turn, turn.state.choices[number - 1])
    return list_workshops(turn)


def _waitlist_answer(turn: Turn) -> Outcome | None:
    number = _number(turn)
    if number == 0:
        return _done(turn, "workshops.no_change", "workshop_no_change")
    if not turn.state.choices:
        return None
    workshop_id = turn.state.choices[0]
    workshop = _open(turn, workshop_id)
    if workshop is None:
        return _done(turn, "workshops.gone", "workshop_gone")
    values = describe(turn.content, turn.lang, workshop)
    if number != 1:  # any other answer asks again: the question is not dropped
        text = turn.text("workshops.full_waitlist", title=values["title"])
        return outcome(turn, (text,), "workshop_full", pending=WAITLIST, choices=(workshop_id,))
    if turn.inbound.seats_left.get(workshop_id, 0) > 0:  # a seat freed up meanwhile
        return _done(turn, "workshops.confirmed", "workshop_signed_up", Register(workshop_id, waitlist=True),
                     values=values, workshops=(*turn.state.workshops, workshop_id))
    return _done(turn, "workshops.waitlisted", "workshop_waitlisted", Register(workshop_id, waitlist=True),
                 values={"title": values["title"]}, waitlisted=(*turn.state.waitlisted, workshop_id))


def _mine(turn: Turn) -> list[tuple[Workshop, bool]]:
    """The family's upcoming sign-ups in start order, each with True for a seat, False for the waitlist."""
    found = [(w, True) for i in turn.state.workshops if (w := _open(turn, i))]
    found += [(w, False) for i in turn.state.waitlisted if (w := _open(turn, i))]
    return sorted(found, key=lambda item: item[0].starts)


def my_workshops(turn: Turn) -> Outcome:
    """MY WORKSHOPS: the family's sign-ups, numbered; a number frees one (after a confirmation)."""
    mine = _mine(turn)
    if not mine:
        return _done(turn, "workshops.none_mine", "my_workshops")
    lines = [turn.text("workshops.mine")]
    for number, (workshop, seat) in enumerate(mine, 1):
        title = title_of(turn.content, turn.lang, workshop)
        when = format_when(turn.content, turn.lang, workshop.starts)
        if seat:
            place = place_of(turn.content, turn.lang, workshop)
            lines.append(turn.text("workshops.item", number=str(number), title=title, when=when, place=place))
        else:
            lines.append(turn.text("workshops.item_waitlist", number=str(number), title=title, when=when))
    return outcome(turn, ("\n".join(lines),), "my_workshops", pending=MINE, choices=tuple(w.id for w, _ in mine))


def _mine_chosen(turn: Turn) -> Outcome | None:
    number = _number(turn)
    if number is None or number == 0:
        return None
    if not 1 <= number <= len(turn.state.choices):
        return my_workshops(turn)
    workshop_id = turn.state.choices[number - 1]
    workshop = _open(turn, workshop_id)
    if workshop is None or workshop_id not in (*turn.state.workshops, *turn.state.waitlisted):
        return my_workshops(turn)
    values = describe(turn.content, turn.lang, workshop)
    text = turn.text("workshops.free_confirm", title=values["title"], when=values["when"])
    return outcome(turn, (text,), "workshop_free_confirm", pending=FREE, choices=(workshop_id,))


def _free_answer(turn: Turn) -> Outcome | None:
    number = _number(turn)
    if number == 0:
        return _done(turn, "workshops.no_change", "workshop_no_change")
    if not turn.state.choices:
        return None
    workshop_id = turn.state.choices[0]
    if workshop_id not in (*turn.state.workshops, *turn.state.waitlisted):
        return my_workshops(turn)
    workshop = turn.content.workshop(workshop_id)
    if number != 1:  # any other answer asks again: the question is not dropped
        if workshop is None or _open(turn, workshop_id) is None:
            return my_workshops(turn)
        values = describe(turn.content, turn.lang, workshop)
        text = turn.text("workshops.free_confirm", title=values["title"], when=values["when"])
        return outcome(turn, (text,), "workshop_free_confirm", pending=FREE, choices=(workshop_id,))
    title = title_of(turn.content, turn.lang, workshop) if workshop else workshop_id
    return _done(turn, "workshops.cancelled_by_you", "workshop_freed", CancelRegistration(workshop_id),
                 values={"title": title},
                 workshops=tuple(i for i in turn.state.workshops if i != workshop_id),
                 waitlisted=tuple(i for i in turn.state.waitlisted if i != workshop_id))


# What an answer means while the family is in the middle of a question (None: not an answer).
PENDING: dict[str, Callable[[Turn], Outcome | None]] = {
    PICK: _picked,
    WAITLIST: _waitlist_answer,
    MINE: _mine_chosen,
    FREE: _free_answer,
}
