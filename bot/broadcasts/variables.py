"""Template variables, as content/manifest.toml's [variables] declares them: free text is given in every
language the families read (one English string dropped into the Spanish, Korean and Farsi texts is refused),
dates and times once and written with each language's calendar, names (a street corner, a place) once for all.
In right-to-left languages each value is set between Unicode isolates (FSI ... PDI), so a Latin street name
inside a Farsi or Arabic line keeps the line's order readable. Pure functions over the content."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time

from bot.content.model import Content
from bot.conversation.workshops import format_when

TEXT, NAME, DATE, TIME, DATETIME = "text", "name", "date", "time", "datetime"
KINDS = (TEXT, NAME, DATE, TIME, DATETIME)
FSI, PDI = "\u2068", "\u2069"  # first-strong isolate ... pop directional isolate
_TIME = re.compile(r"^(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<half>[ap])?\.?\s*(?:m\.?)?$", re.IGNORECASE)

Value = str | Mapping[str, str]


class VariableError(ValueError):
    """A variable's value that cannot be used; the message says what to give instead."""


def declared(content: Content) -> dict[str, str]:
    """{variable: kind} from the manifest (a variable not declared is free text)."""
    return dict(content.tree["manifest"].get("variables", {}))


def kind_of(content: Content, name: str) -> str:
    """How a variable is given and written: text, name, date, time or datetime."""
    return declared(content).get(name, TEXT)


def given(value: Value | None) -> bool:
    """Whether a value was given at all (a text in at least one language)."""
    if isinstance(value, Mapping):
        return any(str(v).strip() for v in value.values())
    return bool(str(value or "").strip())


def check(content: Content, name: str, value: Value) -> None:
    """Raise VariableError unless the value fits the variable's kind."""
    kind = kind_of(content, name)
    if kind == TEXT:
        if not isinstance(value, Mapping):
            raise VariableError(f"{name} is free text: give it in each language the families read, like "
                                f'{name}: {{"es": "...", "en": "..."}} (CLI: --var {name}.es=...)')
        unknown = sorted(code for code in value if code not in content.languages)
        if unknown:
            raise VariableError(f"{name}: unknown language(s) {', '.join(unknown)}")
        return
    if isinstance(value, Mapping):
        raise VariableError(f"{name} is the same in every language: give it once")
    parse(kind, name, str(value))


def parse(kind: str, name: str, value: str) -> date | time | datetime | str:
    """A date, time or datetime variable read from what staff typed (VariableError names the form it takes)."""
    value = value.strip()
    try:
        if kind == DATE:
            return date.fromisoformat(value)
        if kind == DATETIME:
            return datetime.fromisoformat(value)
    except ValueError:
        example = "2026-12-03" if kind == DATE else "2026-12-03T18:00"
        raise VariableError(f"{name} is a {'date' if kind == DATE else 'date and time'}: give it like {example} "
                            "(each language writes it its own way)") from None
    if kind == TIME:
        found = _TIME.match(value)
        hour = int(found["hour"]) if found else 99
        minute = int(found["minute"] or 0) if found else 0
        if found and found["half"]:
            hour = hour % 12 + (12 if found["half"].lower() == "p" else 0) if 1 <= hour <= 12 else 99
        if hour > 23 or minute > 59:
            raise VariableError(f"{name} is a time: give it like 7:45 am or 19:45")
        return time(hour, minute)
    return value


def languages(content: Content, variables: Mapping[str, Value], needed: list[str]) -> list[str]:
    """The content languages the template can be written in: those with every free-text variable's value."""
    texts = [variables.get(name) for name in needed if kind_of(content, name) == TEXT]
    return [code for code in content.languages
            if all(isinstance(v, Mapping) and str(v.get(code, "")).strip() for v in texts)]


def written(content: Content, language: str, variables: Mapping[str, Value]) -> dict[str, str]:
    """Each variable as the language writes it (isolated in a right-to-left language)."""
    rtl = content.language(language).get("language", {}).get("direction") == "rtl"
    out = {}
    for name, value in variables.items():
        kind = kind_of(content, name)
        if isinstance(value, Mapping):
            text = str(value.get(language, "")).strip()
        elif kind in (DATE, TIME, DATETIME):
            text = _write(content, language, kind, parse(kind, name, str(value)))
        else:
            text = str(value).strip()
        out[name] = f"{FSI}{text}{PDI}" if rtl and text else text
    return out


def _write(content: Content, language: str, kind: str, value) -> str:
    calendar = content.language(language).get("calendar") or content.language(content.default_language)["calendar"]
    if kind == DATETIME:
        return format_when(content, language, value)
    if kind == DATE:
        return content.text(language, "alert.date", weekday=calendar["weekdays"][value.weekday()],
                            day=str(value.day), month=calendar["months"][value.month - 1])
    if calendar.get("clock", "12h") == "12h":
        return f"{value.hour % 12 or 12}:{value.minute:02d} {'pm' if value.hour >= 12 else 'am'}"
    return f"{value.hour}:{value.minute:02d}"
