"""Dashboard languages: the staff languages a deployment offers (AVISO_DASHBOARD_LANGUAGES) and whether
each has a compiled gettext catalog. Read by config at startup, so it sits beside config, under the web."""

from __future__ import annotations

from pathlib import Path

from babel import Locale, UnknownLocaleError

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
