"""WhatsApp templates: which approved Content API template (a Content SID) a broadcast of each kind sends,
per language, to WhatsApp families outside the 24-hour window (AVISO_WHATSAPP_TEMPLATES, checked at startup).

"update.es=HX...,verified.*=HX..." : kind.language=Content SID; "*" as the language covers every language
without its own entry. List the approved ones with `aviso twilio templates`. The template's variables are
{{1}} the school, {{2}} the message, {{3}} the verification code (see `variables`)."""

from __future__ import annotations

import re

KINDS = ("update", "verified", "all_clear", "correction")  # broadcasts.store.KINDS (a layer above)
ANY_LANGUAGE = "*"
CONTENT_SID = re.compile(r"^HX[0-9a-f]{32}$")
_ENTRY = re.compile(r"^(?P<kind>[a-z_]+)\.(?P<language>\*|[a-z]{2,3}(?:-[A-Za-z]{2,4})?)=(?P<sid>\S+)$")
# Meta refuses a variable with a newline, a tab or more than four spaces in a row: they are folded to one space.
_BLANKS = re.compile(r"\s+")
MAX_VARIABLE = 1000


class InvalidTemplates(ValueError):
    """A malformed AVISO_WHATSAPP_TEMPLATES entry (the message names it and shows one that works)."""


def parse(text: str) -> tuple[tuple[str, str, str], ...]:
    """"update.es=HX…,verified.*=HX…" -> ((kind, language, sid), ...), or InvalidTemplates."""
    example = "update.es=HX" + "0" * 32
    found: dict[tuple[str, str], str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        match = _ENTRY.match(entry)
        if not match:
            raise InvalidTemplates(f"{entry!r} is not kind.language=ContentSid (e.g. {example})")
        if match["kind"] not in KINDS:
            raise InvalidTemplates(f"{entry!r}: the kind must be one of {', '.join(KINDS)}")
        if not CONTENT_SID.match(match["sid"]):
            raise InvalidTemplates(f"{entry!r}: a Content SID is HX and 32 hex digits (aviso twilio templates)")
        if (match["kind"], match["language"]) in found:
            raise InvalidTemplates(f"{match['kind']}.{match['language']} is given twice")
        found[(match["kind"], match["language"])] = match["sid"]
    return tuple((kind, language, sid) for (kind, language), sid in found.items())


def for_kind(configured: tuple[tuple[str, str, str], ...], kind: str, languages: list[str]) -> dict[str, str]:
    """{language: Content SID} a broadcast of this kind sends in these languages (the "*" entry where none)."""
    mine = {language: sid for k, language, sid in configured if k == kind}
    chosen = {language: mine.get(language) or mine.get(ANY_LANGUAGE) for language in languages}
    return {language: sid for language, sid in chosen.items() if sid}


def variables(school: str, body: str, code: str) -> dict[str, str]:
    """The template's ContentVariables: {{1}} school, {{2}} the message, {{3}} the verification code."""
    def fold(value: str) -> str:
        return _BLANKS.sub(" ", value).strip()[:MAX_VARIABLE]
    return {"1": fold(school), "2": fold(body), "3": fold(code)}

