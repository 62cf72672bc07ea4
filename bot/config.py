"""Settings: every environment variable Aviso reads, read once, checked at startup."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from bot import dashboard_languages, key_strength, validity, whatsapp_templates
from bot.development_key import config_dir as _config_dir
from bot.development_key import development_secret as _development_secret

ENVIRONMENTS = ("development", "production")
DEFAULT_ENV = "production"  # forgetting AVISO_ENV must never switch the development tools on
DEFAULT_REMINDER_OFFSETS = ("1d", "2h")
# "1d": the same local wall-clock time N calendar days before; "2h" / "30m": N real hours / minutes before.
REMINDER_OFFSET = re.compile(r"^([1-9][0-9]{0,2})([dhm])$")
# The dashboard's gettext catalogs: English is the source language, every other one is a compiled catalog here.


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


@dataclass(frozen=True)
class Settings:
    """Aviso's configuration; build it with load_settings()."""

    env: str = DEFAULT_ENV
    data_dir: Path = Path("var")
    content_dir: Path = Path("content")
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("America/Los_Angeles"))
    redis_url: str | None = None
    public_base_url: str = "http://127.0.0.1:5000"
    secret_key: str = ""  # names contacts and staff (keyed hashes); changing it re-keys everyone
    encryption_keys: tuple[str, ...] = ()  # encrypt numbers at rest, newest first; empty: secret_key's
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_sms_from: str | None = None
    twilio_whatsapp_from: str | None = None
    twilio_voice_from: str | None = None  # the number urgent-alert calls come from (TWILIO_SMS_FROM if unset)
    twilio_api_base_url: str | None = None
    advanced_opt_out: bool = True
    contact_ttl_days: int = 180
    reminder_offsets: tuple[str, ...] = DEFAULT_REMINDER_OFFSETS
    require_approval: bool = True
    approval_reminder_minutes: int = 10  # approvers are texted again this long after; 0: no reminder
    quiet_hours: tuple[time, time] | None = (time(21, 0), time(7, 0))
    rate_limit_segments_per_second: int = 0  # 0: no cap of Aviso's own; Twilio's queue paces sending
    send_concurrency: int = 128  # Twilio calls in flight per broadcast batch (each worker runs one batch)
    calls_per_second: int = 1  # voice alert calls placed per second: the account's CPS (Twilio's default: 1)
    dashboard_session_hours: int = 12  # a staff dashboard sign-in lasts this long, then a new code is needed
    signin_failure_budget: int = 30  # wrong sign-in codes per hour district-wide before admins hear of it
    trusted_proxies: int = 0  # reverse proxies in front of the web processes (X-Forwarded-For hops to trust)
    # Serve languages no fluent reviewer approved? Off in production unless asked: their families get the
    # manifest's fallback language (English) until a review is recorded.
    serve_draft_languages: bool = True
    dashboard_languages: tuple[str, ...] = ("en", "es")  # offered to staff; the first when the browser asks for none
    log_format: str = "console"  # "json" (one JSON object per line) or "console" (for a person to read)
    # Twilio's ValidityPeriod per broadcast kind ("urgent" for urgent ones), in seconds: (kind, seconds) pairs
    validity_periods: tuple[tuple[str, int], ...] = tuple(validity.parse("").items())
    whatsapp_templates: tuple[tuple[str, str, str], ...] = ()  # (kind, language, Content SID): whatsapp_templates
    sentry_dsn: str | None = None  # error reports go to this Sentry project (scrubbed: bot/errors.py)
    metrics_token: str | None = None  # a bearer token for /metrics from outside this machine's private network

    @property
    def is_development(self) -> bool:
        """True when running as a developer's machine, with its conveniences."""
        return self.env == "development"

    @property
    def twilio_account_configured(self) -> bool:
        """True when any Twilio credential is set: then nothing development-only may run."""
        return bool(self.twilio_account_sid or self.twilio_auth_token)

    @property
    def twilio_is_local(self) -> bool:
        """True when every Twilio REST call goes to this machine (a fake Twilio): no real account is reachable."""
        if not self.twilio_api_base_url:
            return False
        host = urlsplit(self.twilio_api_base_url).hostname or ""
        try:
            return host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def development_tools(self) -> bool:
        """The simulator's signing, the outbox page and unsigned webhooks: development without Twilio only."""
        return self.is_development and not self.twilio_account_configured

    @property
    def twilio_sending_configured(self) -> bool:
        """True when outbound messages go to Twilio rather than the outbox."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def validates_signatures(self) -> bool:
        """Webhook signatures are checked everywhere except development without a token."""
        return not self.development_tools

    def with_overrides(self, **changes) -> Settings:
        """Return a copy with some fields changed (tests use this)."""
        return replace(self, **changes)


def _text(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = _text(environ, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = _text(environ, name)
    if value is None:
        return default
    if not value.isdigit() or int(value) <= 0:
        raise ConfigError(f"{name} must be a positive whole number, not {value!r}")
    return int(value)


def _quiet_hours(environ: Mapping[str, str]) -> tuple[time, time] | None:
    value = _text(environ, "AVISO_QUIET_HOURS")
    if value is None:
        return (time(21, 0), time(7, 0))
    if value.lower() in ("off", "none"):
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError:
        raise ConfigError(f"AVISO_QUIET_HOURS must look like 21:00-07:00 (or off), not {value!r}") from None
    return start, end


def _non_negative_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = _text(environ, name)
    if value is None:
        return default
    if not value.isdigit():
        raise ConfigError(f"{name} must be a whole number (0 for none), not {value!r}")
    return int(value)


def _url(environ: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    value = _text(environ, name)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ConfigError(f"{name} must be a {' or '.join(schemes)} URL, not {value!r}")
    return value.rstrip("/")


GENERATE_KEY = "generate one: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _secret_key(environ: Mapping[str, str], env: str, data_dir: Path) -> str:
    value = _text(environ, "AVISO_SECRET_KEY")
    if value is None:
        if env == "production":
            raise ConfigError(f"AVISO_SECRET_KEY is required in production ({GENERATE_KEY})")
        return _development_secret(_config_dir(environ), data_dir)
    if "," in value:
        # The old form listed several keys, newest first, and named everyone with the first: a new key put
        # in front orphaned every contact. Refuse it rather than guess, saying how to split it.
        raise ConfigError(
            "AVISO_SECRET_KEY now holds one key, the one that names contacts and staff: set it to the first "
            "key of the list it holds, and AVISO_ENCRYPTION_KEYS to the whole list as it was (see the README)"
        )
    weak = key_strength.weakness(value)
    if weak:
        raise ConfigError(f"AVISO_SECRET_KEY is too weak ({weak}); {GENERATE_KEY}")
    return value


def _encryption_keys(environ: Mapping[str, str]) -> tuple[str, ...]:
    value = _text(environ, "AVISO_ENCRYPTION_KEYS")
    if value is None:
        return ()
    keys = tuple(part.strip() for part in value.split(","))
    if not all(keys) or len(set(keys)) != len(keys):
        raise ConfigError("AVISO_ENCRYPTION_KEYS must list different keys, newest first, separated by commas")
    for number, key in enumerate(keys, 1):
        weak = key_strength.weakness(key)
        if weak:
            raise ConfigError(f"AVISO_ENCRYPTION_KEYS is too weak (key {number} of {len(keys)}: {weak}); "
                              f"{GENERATE_KEY}")
    return keys


def _timezone(environ: Mapping[str, str]) -> ZoneInfo:
    name = _text(environ, "AVISO_TIMEZONE") or "America/Los_Angeles"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"AVISO_TIMEZONE is not a known time zone: {name!r}") from None


def _reminder_offsets(environ: Mapping[str, str]) -> tuple[str, ...]:
    value = _text(environ, "AVISO_REMINDER_OFFSETS")
    if value is None:
        return DEFAULT_REMINDER_OFFSETS
    offsets = tuple(part.strip().lower() for part in value.split(",") if part.strip())
    if not offsets or not all(REMINDER_OFFSET.match(o) for o in offsets) or len(set(offsets)) != len(offsets):
        raise ConfigError(
            f"AVISO_REMINDER_OFFSETS must list times before a workshop like 1d,2h (d days, h hours, "
            f"m minutes), not {value!r}"
        )
    return offsets


def _twilio_sender(environ: Mapping[str, str], name: str, prefix: str = "") -> str | None:
    value = _text(environ, name)
    if value is not None and not value.removeprefix(prefix).startswith("+"):
        raise ConfigError(f"{name} must be a number in +E.164 form, like {prefix}+12135550100")
    return value


def _dashboard_languages(environ: Mapping[str, str]) -> tuple[str, ...]:
    try:
        return dashboard_languages.parse(_text(environ, "AVISO_DASHBOARD_LANGUAGES"))
    except dashboard_languages.InvalidLanguages as exc:
        raise ConfigError(str(exc)) from None


def load_settings(
    environ: Mapping[str, str] | None = None, dotenv_path: str | None = ".env", default_env: str = DEFAULT_ENV,
) -> Settings:
    """Read the environment (and .env, which never overrides it) into Settings, or raise ConfigError.
    Without AVISO_ENV it is production; the development commands (aviso dev, aviso chat) pass development."""
    if environ is None:
        environ = _environment(dotenv_path)
    env = _text(environ, "AVISO_ENV") or default_env
    if env not in ENVIRONMENTS:
        raise ConfigError(f"AVISO_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    try:
        return _load(environ, env)
    except ConfigError as exc:
        if env == "production" and _text(environ, "AVISO_ENV") is None:
            raise ConfigError(f"{exc} (AVISO_ENV is unset, which means production; "
                              "on a developer's machine set AVISO_ENV=development)") from None
        raise


def content_dir_setting(environ: Mapping[str, str] | None = None, dotenv_path: str | None = ".env") -> Path:
    """AVISO_CONTENT_DIR alone: content authors check and bump content without a deployment's settings."""
    if environ is None:
        environ = _environment(dotenv_path)
    return Path(_text(environ, "AVISO_CONTENT_DIR") or "content").resolve()


def _environment(dotenv_path: str | None) -> dict[str, str]:
    merged = {k: v for k, v in (dotenv_values(dotenv_path) if dotenv_path else {}).items() if v}
    merged.update(os.environ)
    return merged


def _load(environ: Mapping[str, str], env: str) -> Settings:
    data_dir = Path(_text(environ, "AVISO_DATA_DIR") or "var").resolve()
    content_dir = content_dir_setting(environ)
    public_base_url = _url(environ, "PUBLIC_BASE_URL", ("http", "https"))
    if public_base_url is None:
        if env == "production":
            raise ConfigError("PUBLIC_BASE_URL is required in production (the https origin Twilio calls)")
        public_base_url = "http://127.0.0.1:5000"
    elif env == "production" and not public_base_url.startswith("https://"):
        raise ConfigError("PUBLIC_BASE_URL must be https in production")
    settings = Settings(
        env=env,
        data_dir=data_dir,
        content_dir=content_dir,
        timezone=_timezone(environ),
        redis_url=_url(environ, "REDIS_URL", ("redis", "rediss", "unix")),
        public_base_url=public_base_url,
        secret_key=_secret_key(environ, env, data_dir),
        encryption_keys=_encryption_keys(environ),
        twilio_account_sid=_text(environ, "TWILIO_ACCOUNT_SID"),
        twilio_auth_token=_text(environ, "TWILIO_AUTH_TOKEN"),
        twilio_messaging_service_sid=_text(environ, "TWILIO_MESSAGING_SERVICE_SID"),
        twilio_sms_from=_twilio_sender(environ, "TWILIO_SMS_FROM"),
        twilio_whatsapp_from=_twilio_sender(environ, "TWILIO_WHATSAPP_FROM", "whatsapp:"),
        twilio_voice_from=_twilio_sender(environ, "TWILIO_VOICE_FROM") or _twilio_sender(environ, "TWILIO_SMS_FROM"),
        twilio_api_base_url=_url(environ, "TWILIO_API_BASE_URL", ("http", "https")),
        advanced_opt_out=_bool(environ, "AVISO_ADVANCED_OPT_OUT", True),
        contact_ttl_days=_positive_int(environ, "AVISO_CONTACT_TTL_DAYS", 180),
        reminder_offsets=_reminder_offsets(environ),
        require_approval=_bool(environ, "AVISO_REQUIRE_APPROVAL", True),
        approval_reminder_minutes=_non_negative_int(environ, "AVISO_APPROVAL_REMINDER_MINUTES", 10),
        quiet_hours=_quiet_hours(environ),
        rate_limit_segments_per_second=_non_negative_int(environ, "AVISO_RATE_LIMIT_SEGMENTS_PER_SECOND", 0),
        send_concurrency=_positive_int(environ, "AVISO_SEND_CONCURRENCY", 128),
        calls_per_second=_positive_int(environ, "AVISO_CALLS_PER_SECOND", 1),
        dashboard_session_hours=_positive_int(environ, "AVISO_DASHBOARD_SESSION_HOURS", 12),
        signin_failure_budget=_positive_int(environ, "AVISO_SIGNIN_FAILURE_BUDGET", 30),
        trusted_proxies=_non_negative_int(environ, "AVISO_TRUSTED_PROXIES", 0),
        serve_draft_languages=_bool(environ, "AVISO_SERVE_DRAFT_LANGUAGES", env != "production"),
        dashboard_languages=_dashboard_languages(environ),
        metrics_token=_metrics_token(environ),
        log_format=_log_format(environ, env),
        sentry_dsn=_url(environ, "SENTRY_DSN", ("http", "https")),
        validity_periods=tuple(_parsed(environ, "AVISO_VALIDITY_PERIODS", validity.parse).items()),
        whatsapp_templates=_parsed(environ, "AVISO_WHATSAPP_TEMPLATES", whatsapp_templates.parse),
    )
    _check_twilio(settings)
    if env == "production" and settings.redis_url is None:
        raise ConfigError("REDIS_URL is required in production (one Redis shared by every web and worker "
                          "process; the embedded one is for development)")
    return settings


def _parsed(environ: Mapping[str, str], name: str, parse):
    """A setting read by its module's parser (bot.validity, bot.whatsapp_templates); its refusal names it."""
    try:
        return parse(_text(environ, name) or "")
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _log_format(environ: Mapping[str, str], env: str) -> str:
    value = (_text(environ, "AVISO_LOG_FORMAT") or ("console" if env == "development" else "json")).lower()
    if value not in ("json", "console"):
        raise ConfigError(f"AVISO_LOG_FORMAT must be json or console, not {value!r}")
    return value


def _metrics_token(environ: Mapping[str, str]) -> str | None:
    token = _text(environ, "AVISO_METRICS_TOKEN")
    if token is not None and len(token) < 32:
        raise ConfigError("AVISO_METRICS_TOKEN must be at least 32 random characters")
    return token


def _check_twilio(settings: Settings) -> None:
    if settings.twilio_account_sid and not settings.twilio_account_sid.startswith("AC"):
        raise ConfigError("TWILIO_ACCOUNT_SID must start with AC")
    if bool(settings.twilio_account_sid) != bool(settings.twilio_auth_token) and settings.twilio_account_sid:
        raise ConfigError("TWILIO_ACCOUNT_SID is set but TWILIO_AUTH_TOKEN is not")
    if settings.is_development and settings.twilio_account_configured and not settings.twilio_is_local:
        raise ConfigError(
            "AVISO_ENV=development refuses to run with a Twilio account (TWILIO_ACCOUNT_SID or "
            "TWILIO_AUTH_TOKEN is set, and TWILIO_API_BASE_URL is not a fake Twilio on this machine); "
            "use AVISO_ENV=production"
        )
    if settings.env == "production":
        if not settings.twilio_sending_configured:
            raise ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required in production")
        if not (settings.twilio_messaging_service_sid or settings.twilio_sms_from):
            raise ConfigError(
                "TWILIO_MESSAGING_SERVICE_SID or TWILIO_SMS_FROM is required in production"
            )
    sid = settings.twilio_messaging_service_sid
    if sid and not sid.startswith("MG"):
        raise ConfigError("TWILIO_MESSAGING_SERVICE_SID must start with MG")
