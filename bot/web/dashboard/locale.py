"""The dashboard's language: Flask-Babel over the gettext catalogs in bot/translations, and which language a
request is in (the staff member's choice, else the browser's Accept-Language, else the first offered)."""

from __future__ import annotations

from functools import cache

from babel import Locale
from flask import current_app, has_request_context, request, session
from flask_babel import Babel, get_locale

from bot import dashboard_languages
from bot.config import ConfigError, Settings
from bot.dashboard_languages import N_, translate  # noqa: F401  (the sign-in jobs' names for them)

SESSION_KEY = "lang"


def init_app(app, settings: Settings) -> None:
    """Serve the dashboard in the offered languages; an offered language without a compiled catalog stops startup."""
    problem = dashboard_languages.missing_catalog(settings.dashboard_languages)
    if problem:
        raise ConfigError(problem)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(dashboard_languages.TRANSLATIONS)
    app.config["BABEL_DEFAULT_LOCALE"] = settings.dashboard_languages[0]
    Babel(app, locale_selector=select_language)


def offered() -> tuple[str, ...]:
    """The languages staff may choose, as AVISO_DASHBOARD_LANGUAGES lists them."""
    return current_app.config["AVISO_SETTINGS"].dashboard_languages


def select_language() -> str:
    """The chosen language, else the browser's best match among the offered ones, else the first offered."""
    languages = offered()
    if not has_request_context():
        return languages[0]
    chosen = session.get(SESSION_KEY)
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(languages, default=languages[0])


def choose(code: str) -> bool:
    """Remember a staff member's choice in their session (False for a language not offered)."""
    if code not in offered():
        return False
    session[SESSION_KEY] = code
    return True


def current() -> str:
    """The request's language code as HTML's lang attribute wants it (es, pt-BR)."""
    return str(get_locale() or offered()[0]).replace("_", "-")


@cache  # CLDR's names do not change while the process runs
def own_name(code: str) -> str:
    """A language's name in itself, as a language switch shows it (Español, English, 한국어)."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def others() -> list[tuple[str, str]]:
    """The offered languages other than the request's, each with its own name."""
    here = str(get_locale())
    return [(code, own_name(code)) for code in offered() if code != here]


def current_code() -> str:
    """The request's language as its catalog's folder names it (es, pt_BR), for a job to write in it."""
    return str(get_locale() or offered()[0])
