"""Configuration: every bad setting fails at startup with one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.broadcasts.fanout import Policy, default_policy
from bot.config import ConfigError, load_settings

from .conftest import ROOT

PRODUCTION = {
    "AVISO_ENV": "production",
    "AVISO_SECRET_KEY": "k" * 40,
    "PUBLIC_BASE_URL": "https://aviso.example.org",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "token",
    "TWILIO_MESSAGING_SERVICE_SID": "MG" + "1" * 32,
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def test_complete_production_settings_load():
    settings = load_settings(PRODUCTION)
    assert settings.env == "production" and settings.validates_signatures
    assert settings.twilio_sending_configured


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"AVISO_ENV": "staging"}, "AVISO_ENV"),
        ({"AVISO_SECRET_KEY": ""}, "AVISO_SECRET_KEY"),
        ({"AVISO_SECRET_KEY": "short"}, "AVISO_SECRET_KEY"),
        ({"PUBLIC_BASE_URL": ""}, "PUBLIC_BASE_URL"),
        ({"PUBLIC_BASE_URL": "http://aviso.example.org"}, "PUBLIC_BASE_URL"),
        ({"PUBLIC_BASE_URL": "aviso.example.org"}, "PUBLIC_BASE_URL"),
        ({"TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": "XY123"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_MESSAGING_SERVICE_SID": "", "TWILIO_SMS_FROM": ""}, "TWILIO_MESSAGING_SERVICE_SID"),
        ({"TWILIO_MESSAGING_SERVICE_SID": "XX1"}, "TWILIO_MESSAGING_SERVICE_SID"),
        ({"TWILIO_SMS_FROM": "2135550100"}, "TWILIO_SMS_FROM"),
        ({"TWILIO_WHATSAPP_FROM": "whatsapp:2135550100"}, "TWILIO_WHATSAPP_FROM"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"TWILIO_API_BASE_URL": "ftp://x"}, "TWILIO_API_BASE_URL"),
        ({"AVISO_TIMEZONE": "Mars/Olympus"}, "AVISO_TIMEZONE"),
        ({"AVISO_ADVANCED_OPT_OUT": "maybe"}, "AVISO_ADVANCED_OPT_OUT"),
        ({"AVISO_CONTACT_TTL_DAYS": "-3"}, "AVISO_CONTACT_TTL_DAYS"),
        ({"AVISO_QUIET_HOURS": "9pm to 7am"}, "AVISO_QUIET_HOURS"),
        ({"AVISO_REQUIRE_APPROVAL": "sometimes"}, "AVISO_REQUIRE_APPROVAL"),
        ({"AVISO_RATE_LIMIT_SEGMENTS_PER_SECOND": "fast"}, "AVISO_RATE_LIMIT_SEGMENTS_PER_SECOND"),
    ],
)
def test_bad_setting_fails_with_one_line_naming_it(change, named):
    with pytest.raises(ConfigError) as error:
        load_settings({**PRODUCTION, **change})
    message = str(error.value)
    assert named in message and "\n" not in message


def test_development_needs_nothing_and_keeps_one_generated_secret(tmp_path):
    first = load_settings({"AVISO_DATA_DIR": str(tmp_path)})
    second = load_settings({"AVISO_DATA_DIR": str(tmp_path)})
    assert first.is_development and not first.validates_signatures
    assert first.secret_keys == second.secret_keys and len(first.secret_keys[0]) >= 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0  # readable by its owner only


def test_cli_reports_a_bad_setting_in_one_line_without_a_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "AVISO_ENV": "production", "AVISO_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "bot.cli", "content", "status"], capture_output=True, text=True,
                            env=env, cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "Error: configuration error: PUBLIC_BASE_URL is required in production (the https origin Twilio calls)"
    ]


def test_gunicorn_refuses_to_start_with_a_bad_setting_in_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "AVISO_ENV": "production", "AVISO_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "python:bot.gunicorn_conf", "--bind", "127.0.0.1:0",
         "bot:create_app()"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=30,
    )
    assert result.returncode != 0
    assert "aviso: configuration error: PUBLIC_BASE_URL is required in production" in result.stderr
    assert "Traceback" not in result.stderr


def test_quiet_hours_approval_and_rate_cap_have_safe_defaults_and_can_be_set():
    from datetime import time

    defaults = load_settings(PRODUCTION)
    assert defaults.quiet_hours == (time(21), time(7)) and defaults.require_approval
    assert defaults.rate_limit_segments_per_second == 0
    assert default_policy(defaults).concurrency == 128 and default_policy(defaults).segments_per_second is None
    custom = load_settings({**PRODUCTION, "AVISO_QUIET_HOURS": "off", "AVISO_REQUIRE_APPROVAL": "false",
                            "AVISO_RATE_LIMIT_SEGMENTS_PER_SECOND": "100", "AVISO_SEND_CONCURRENCY": "32"})
    assert custom.quiet_hours is None and not custom.require_approval
    assert custom.rate_limit_segments_per_second == 100
    assert default_policy(custom) == Policy(segments_per_second=100, concurrency=32)


@pytest.mark.parametrize("value", ["0", "-4", "many"])
def test_send_concurrency_must_be_a_positive_number(value):
    with pytest.raises(ConfigError, match="AVISO_SEND_CONCURRENCY"):
        load_settings({**PRODUCTION, "AVISO_SEND_CONCURRENCY": value})
