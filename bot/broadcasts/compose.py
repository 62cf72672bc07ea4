"""Composing a broadcast: the final text per language from a template or custom text, framed with
its status label and verification code. Pure functions; the desk (bot/broadcasts/desk.py) stores and sends."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.broadcasts.store import KINDS  # one list of kinds: the store validates the same ones
from bot.broadcasts.variables import VariableError
from bot.broadcasts.variables import check as check_variable
from bot.broadcasts.variables import given as template_variables_given
from bot.broadcasts.variables import languages as variable_languages
from bot.broadcasts.variables import written as written_variables
from bot.content.model import Content
from bot.whatsapp_templates import CONTENT_SID
from bot.whatsapp_templates import for_kind as whatsapp_template_sids
from bot.whatsapp_templates import variables as template_variables

# Kinds that may frighten or reassure thousands of families: a second staff member approves them.
SENSITIVE_KINDS = ("verified", "correction")
CODE_ALPHABET = "ACDEFHJKMNPRTUVWXY3479"  # no 0/O, 1/I/L, 2/Z, 5/S, 6/G, 8/B: read aloud and typed back
CODE_LENGTH = 5
MAX_VARIABLE_LENGTH = 200
# A time a few minutes gone is "now" (typed at the current minute); an older one is a mistake. Records
# expire after keys.BROADCAST_TTL_SECONDS (a year): a broadcast must go out well before.
SEND_AT_GRACE = timedelta(minutes=5)
SEND_AT_HORIZON = timedelta(days=300)
MAX_VERIFIED_BY_LENGTH = 80  # it goes into every language's status line: a long one costs segments per family


class ComposeError(ValueError):
    """A broadcast request that cannot be composed; the message says what to fix."""


class MissingTranslation(ComposeError):
    """Some recipients' languages have no text and no fallback language was named."""

    def __init__(self, languages: list[str]):
        self.languages = languages
        super().__init__(
            f"no text for {', '.join(languages)}: add a translation or name a fallback language for them"
        )


@dataclass(frozen=True)
class BroadcastRequest:
    """What a staff member asks to send."""

    schools: tuple[str, ...]
    kind: str
    template: str | None = None
    # a template's variables: free text as {language: text}, a date, time or name once (broadcasts.variables)
    variables: dict[str, str | dict[str, str]] = field(default_factory=dict)
    custom_texts: dict[str, str] = field(default_factory=dict)
    languages: tuple[str, ...] | None = None
    fallback_language: str | None = None
    verified_by: str = ""
    corrects: str | None = None
    urgent: bool = False
    send_at: datetime | None = None
    workshop: str | None = None  # send to this workshop's registrants (schools may then be empty)
    # WhatsApp families outside the 24-hour window get the approved template: the configured one for the kind
    # and language (AVISO_WHATSAPP_TEMPLATES), these {language: Content SID} over it, or none at all.
    whatsapp_templates: dict[str, str] = field(default_factory=dict)
    use_whatsapp_templates: bool = True


def new_code() -> str:
    """A short verification code families can type back (uniqueness is checked where it is stored)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def templates(content: Content) -> dict[str, list[str]]:
    """Template names and the variables each needs."""
    texts = content.language(content.default_language).get("texts", {})
    return {
        key.removeprefix("template."): sorted(
            name for _, name, _, _ in string.Formatter().parse(text) if name
        )
        for key, text in texts.items()
        if key.startswith("template.")
    }


def validate(request: BroadcastRequest, content: Content, now: datetime | None = None) -> None:
    """Raise ComposeError for anything wrong with the request itself (its send time judged at `now`)."""
    if request.kind not in KINDS:
        raise ComposeError(f"kind must be one of {', '.join(KINDS)}")
    if request.workshop:
        if content.workshop(request.workshop) is None:
            raise ComposeError(f"no workshop {request.workshop!r} in content version {content.version}")
        if request.kind != "update":
            raise ComposeError("a message to a workshop's registrants is an update")
    elif not request.schools and not request.corrects:  # a correction takes its original's audience
        raise ComposeError("name at least one school")
    unknown = [code for code in request.schools if code not in content.schools.by_code]
    if unknown:
        raise ComposeError(f"unknown school code(s): {', '.join(unknown)}")
    if request.kind == "verified" and not request.verified_by.strip():
        raise ComposeError("a verified alert must say who verified it (verified_by)")
    if len(request.verified_by.strip()) > MAX_VERIFIED_BY_LENGTH:
        raise ComposeError(f"verified_by is too long: {MAX_VERIFIED_BY_LENGTH} characters at most")
    if request.kind == "correction" and not request.corrects:
        raise ComposeError("a correction must name the broadcast it corrects")
    if request.send_at is not None:
        now = now or datetime.now(UTC)
        if request.send_at < now - SEND_AT_GRACE:
            raise ComposeError("the send time has passed: give a later one, or none to send now")
        if request.send_at > now + SEND_AT_HORIZON:
            raise ComposeError(f"the send time is too far ahead: {SEND_AT_HORIZON.days} days at most")
    if request.corrects and request.kind != "correction":
        raise ComposeError(f"corrects is only for a correction, not for kind {request.kind}")
    if bool(request.template) == bool(request.custom_texts):
        raise ComposeError("give either a template with its variables or custom text per language")
    if request.template:
        needed = templates(content).get(request.template)
        if needed is None:
            raise ComposeError(f"unknown template {request.template!r}; known: {', '.join(templates(content))}")
        missing = [name for name in needed if not template_variables_given(request.variables.get(name))]
        if missing:
            raise ComposeError(f"template {request.template} needs: {', '.join(missing)}")
        for name in needed:
            try:
                check_variable(content, name, request.variables[name])
            except VariableError as exc:
                raise ComposeError(str(exc)) from None
    values = [*request.custom_texts.values()]
    for value in request.variables.values():
        values.extend(value.values() if isinstance(value, dict) else [value])
    if any(len(str(v)) > MAX_VARIABLE_LENGTH * 8 for v in values):
        raise ComposeError("a text is too long for a safety alert")
    supported = ", ".join(content.languages)
    for language in request.custom_texts:
        if language not in content.languages:
            raise ComposeError(f"unknown language {language!r}; supported: {supported}")
    unknown_languages = [code for code in request.languages or () if code not in content.languages]
    if unknown_languages:
        raise ComposeError(f"unknown language(s) {', '.join(unknown_languages)}; supported: {supported}")
    if request.fallback_language and request.fallback_language not in content.languages:
        raise ComposeError(f"unknown fallback language {request.fallback_language!r}")
    for language, sid in request.whatsapp_templates.items():
        if language not in content.languages:
            raise ComposeError(f"unknown language {language!r} for a WhatsApp template; supported: {supported}")
        if not CONTENT_SID.match(sid):
            raise ComposeError(f"WhatsApp template {sid!r} is not a Content SID (HX and 32 hex digits; "
                               "aviso twilio templates lists them)")


def available_languages(request: BroadcastRequest, content: Content) -> list[str]:
    """Languages the broadcast has a text in."""
    if request.template:  # pre-translated: every language its free-text variables are given in
        return variable_languages(content, request.variables, templates(content).get(request.template, []))
    return [code for code in content.languages if request.custom_texts.get(code, "").strip()]


def check_languages(request: BroadcastRequest, content: Content, audience_languages: set[str]) -> None:
    """Refuse when some recipients' language has no text, unless a fallback is named."""
    missing = sorted(audience_languages - set(available_languages(request, content)))
    if missing and not request.fallback_language:
        raise MissingTranslation(missing)
    if request.fallback_language and request.fallback_language not in available_languages(request, content):
        raise ComposeError(f"the fallback language {request.fallback_language} has no text either")


def alert_date(content: Content, language: str, moment: datetime) -> str:
    """The day an alert goes out, written the way the language writes dates (a forward shows its age)."""
    calendar = content.language(language).get("calendar") or content.language(content.default_language)["calendar"]
    return content.text(language, "alert.date", weekday=calendar["weekdays"][moment.weekday()],
                        day=str(moment.day), month=calendar["months"][moment.month - 1])


def bodies(request: BroadcastRequest, content: Content) -> dict[str, str]:
    """What the alert says per language, without its frame (VERIFY quotes it back)."""
    texts = {}
    for language in available_languages(request, content):
        if request.template:
            texts[language] = content.text(language, f"template.{request.template}",
                                           **written_variables(content, language, request.variables))
        else:
            texts[language] = request.custom_texts[language].strip()
    return texts


def render(request: BroadcastRequest, content: Content, code: str, *, on: datetime,
           corrects_code: str = "") -> dict[str, str]:
    """The final message per language: status label, school, the day it goes out (`on`, local), body, VERIFY
    code; a correction's status names the code of the alert it corrects."""
    workshop = content.workshop(request.workshop) if request.workshop else None
    texts = {}
    for language, body in bodies(request, content).items():
        school = content.school_names(request.schools)
        if workshop is not None:  # the frame names what the message is about: here, the workshop
            school = workshop.title.get(language) or workshop.title[content.default_language]
        status = content.text(language, f"status.{request.kind}", verified_by=request.verified_by,
                              corrects=corrects_code)
        texts[language] = content.text(language, "alert.frame", status=status, school=school, body=body, code=code,
                                       sent_on=alert_date(content, language, on))
    return texts


def whatsapp_templates(request: BroadcastRequest, content: Content, configured: tuple[tuple[str, str, str], ...],
                       texts: dict[str, str], code: str) -> dict[str, dict]:
    """{language: {content_sid, variables}}: the template WhatsApp families outside the 24-hour window get in
    each language the broadcast has a text in (none when the request asks for none)."""
    if not request.use_whatsapp_templates:
        return {}
    sids = {**whatsapp_template_sids(configured, request.kind, list(texts)), **request.whatsapp_templates}
    said = bodies(request, content)
    school = content.school_names(request.schools)
    return {language: {"content_sid": sid, "variables": template_variables(school, said.get(language, ""), code)}
            for language, sid in sids.items() if language in texts}
