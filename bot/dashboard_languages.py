"""Dashboard languages: the staff languages a deployment offers (AVISO_DASHBOARD_LANGUAGES) and whether
each has a compiled gettext catalog, and a message in one of them outside a request (translate: RQ jobs and
notices texting staff). Read by config at startup, so it sits beside config, under the web."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError, support

TRANSLATIONS = Path(__file__).resolve().parent / "translations"


class InvalidLanguages(ValueError):
    """AVISO_DASHBOARD_LANGUAGES names something that is no language, or one without a compiled catalog."""


def missing_catalog(languages: tuple[str, ...]) -> str | None:
    """One line naming the first offered dashboard language without a compiled catalog, or None."""
    for code in languages:
        compiled = TRANSLATIONS / code / "LC_MESSAGES" / "messages.mo"
        if code != "en" and not compiled.is_file():
            source = "its .po is there" if compiled.with_suffix(".po").is_file() else "there is no messages.po for it"
            return (f"AVISO_DASHBOARD_LANGUAGES offers {code!r} but its catalog is not compiled ({source}): "
                    "run scripts/bootstrap, or pybabel compile -d bot/translations")
    return None


def parse(value: str | None) -> tuple[str, ...]:
    """The offered codes, English and Spanish when unset; InvalidLanguages says what is wrong."""
    codes = tuple(dict.fromkeys(c.strip() for c in value.split(",") if c.strip())) if value else ("en", "es")
    try:
        for code in codes or ("",):
            Locale.parse(code)  # a language Babel (CLDR) knows, so plurals and its own name work
    except (ValueError, UnknownLocaleError):
        problem = f"AVISO_DASHBOARD_LANGUAGES must be language codes like en,es,ko, not {value!r}"
        raise InvalidLanguages(problem) from None
    problem = missing_catalog(codes)
    if problem:
        raise InvalidLanguages(problem)
    return codes


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "find this message, translate it later"
    """Mark a message for the catalogs where it is translated later, outside a request (see translate)."""
    return message


@cache
def _catalog(code: str) -> support.Translations:
    return support.Translations.load(str(TRANSLATIONS), [code], "messages")


def translate(language: str, message: str, /, **values) -> str:
    """A message in a language outside a request: RQ jobs texting staff write in their dashboard language."""
    text = _catalog(language).ugettext(message)
    return text % values if values else text
