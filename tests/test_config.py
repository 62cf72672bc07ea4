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
    "AVISO_SECRET_KEY": "1zwdK-YSxJFvrv45kMTcOfW2e4q8AvHvK_8Du88F3YE",
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
        ({"AVISO_DASHBOARD_LANGUAGES": "en, Español"}, "AVISO_DASHBOARD_LANGUAGES"),
        ({"AVISO_DASHBOARD_LANGUAGES": "en,xx"}, "AVISO_DASHBOARD_LANGUAGES"),
        ({"AVISO_DASHBOARD_LANGUAGES": " , "}, "AVISO_DASHBOARD_LANGUAGES"),
        ({"AVISO_DASHBOARD_LANGUAGES": "en,es,ko"}, "AVISO_DASHBOARD_LANGUAGES"),  # no Korean catalog
        ({"AVISO_METRICS_TOKEN": "too-short"}, "AVISO_METRICS_TOKEN"),
        ({"AVISO_LOG_FORMAT": "xml"}, "AVISO_LOG_FORMAT"),
        ({"AVISO_WHATSAPP_TEMPLATES": "update=HX" + "0" * 32}, "AVISO_WHATSAPP_TEMPLATES"),
        ({"AVISO_WHATSAPP_TEMPLATES": "urgent.es=HX" + "0" * 32}, "AVISO_WHATSAPP_TEMPLATES"),
        ({"AVISO_WHATSAPP_TEMPLATES": "update.es=SM" + "0" * 32}, "AVISO_WHATSAPP_TEMPLATES"),
        ({"AVISO_WHATSAPP_TEMPLATES": "update.es=HX" + "0" * 32 + ",update.es=HX" + "1" * 32},
         "AVISO_WHATSAPP_TEMPLATES"),
    ],
)
def test_bad_setting_fails_with_one_line_naming_it(change, named):
    with pytest.raises(ConfigError) as error:
        load_settings({**PRODUCTION, **change})
    message = str(error.value)
    assert named in message and "\n" not in message


def test_development_needs_nothing_and_keeps_one_generated_secret_outside_the_data_folder(tmp_path):
    environ = {"AVISO_ENV": "development", "AVISO_DATA_DIR": str(tmp_path / "var"),
               "XDG_CONFIG_HOME": str(tmp_path / "config")}
    first = load_settings(environ)
    second = load_settings(environ)
    assert first.is_development and first.development_tools and not first.validates_signatures
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    key_file = tmp_path / "config" / "aviso" / "development.key"
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    assert not (tmp_path / "var").exists() or first.secret_key not in _all_text(tmp_path / "var")


def _all_text(folder) -> str:
    return "".join(path.read_text(errors="replace") for path in folder.rglob("*") if path.is_file())


def test_an_old_development_key_in_the_data_folder_moves_out_and_keeps_working(tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret.key").write_text("old-" + "HytYACjayuf8h3Bp5or35gLUZMkfxP30wo7wJJ23OWk")
    settings = load_settings({"AVISO_ENV": "development", "AVISO_DATA_DIR": str(tmp_path / "var"),
                              "HOME": str(tmp_path / "home")})
    assert settings.secret_key == "old-HytYACjayuf8h3Bp5or35gLUZMkfxP30wo7wJJ23OWk"
    assert not (tmp_path / "var" / "secret.key").exists()
    assert (tmp_path / "home" / ".config" / "aviso" / "development.key").exists()


def test_without_aviso_env_it_is_production_and_says_how_to_develop(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_settings({"AVISO_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)})
    message = str(error.value)
    assert "production" in message and "AVISO_ENV=development" in message and "\n" not in message
    assert load_settings({k: v for k, v in PRODUCTION.items() if k != "AVISO_ENV"}).env == "production"


@pytest.mark.parametrize("credential", ["TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID"])
def test_development_refuses_to_start_with_a_twilio_credential(tmp_path, credential):
    environ = {"AVISO_ENV": "development", "AVISO_DATA_DIR": str(tmp_path), "HOME": str(tmp_path),
               "TWILIO_ACCOUNT_SID": PRODUCTION["TWILIO_ACCOUNT_SID"], "TWILIO_AUTH_TOKEN": "token"}
    if credential == "TWILIO_ACCOUNT_SID":
        del environ["TWILIO_AUTH_TOKEN"]
        with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):  # half an account is refused too
            load_settings(environ)
        return
    with pytest.raises(ConfigError) as error:
        load_settings(environ)
    assert "AVISO_ENV=development refuses to run with a Twilio account" in str(error.value)
    with pytest.raises(ConfigError, match="refuses"):  # a proxy or another host may lead to the real Twilio
        load_settings({**environ, "TWILIO_API_BASE_URL": "https://twilio-proxy.example.org"})


@pytest.mark.parametrize("base", ["http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"])
def test_development_may_use_a_fake_twilio_on_this_machine_but_then_has_no_development_tools(tmp_path, base):
    settings = load_settings({"AVISO_ENV": "development", "AVISO_DATA_DIR": str(tmp_path), "HOME": str(tmp_path),
                              "TWILIO_ACCOUNT_SID": PRODUCTION["TWILIO_ACCOUNT_SID"], "TWILIO_AUTH_TOKEN": "token",
                              "TWILIO_API_BASE_URL": base})
    assert settings.is_development and settings.twilio_is_local
    assert not settings.development_tools and settings.validates_signatures


def test_production_requires_a_shared_redis():
    with pytest.raises(ConfigError, match="REDIS_URL is required in production"):
        load_settings({**PRODUCTION, "REDIS_URL": ""})


@pytest.mark.parametrize("key", [
    "a" * 32, "k" * 40, "password" * 4, "0123456789" * 4, "abcdefghijklmnopqrstuvwxyz012345",
    "abababababababababababababababab", "short-but-random-Hyt7",
])
def test_production_refuses_a_weak_secret_key(key):
    with pytest.raises(ConfigError) as error:
        load_settings({**PRODUCTION, "AVISO_SECRET_KEY": key})
    assert "AVISO_SECRET_KEY" in str(error.value) and "\n" not in str(error.value)


def test_each_of_several_encryption_keys_must_be_strong():
    strong = PRODUCTION["AVISO_SECRET_KEY"]
    with pytest.raises(ConfigError, match="AVISO_ENCRYPTION_KEYS is too weak \\(key 2 of 2"):
        load_settings({**PRODUCTION, "AVISO_ENCRYPTION_KEYS": f"{strong},{'b' * 40}"})


def test_random_keys_of_32_hex_or_more_are_accepted():
    import secrets

    for _ in range(200):
        for key in (secrets.token_hex(16), secrets.token_urlsafe(32), secrets.token_hex(32)):
            assert load_settings({**PRODUCTION, "AVISO_SECRET_KEY": key}).secret_key == key


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


def test_the_development_runner_refuses_a_real_twilio_token_in_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AVISO_DATA_DIR": str(tmp_path / "var"),
           "TWILIO_ACCOUNT_SID": PRODUCTION["TWILIO_ACCOUNT_SID"], "TWILIO_AUTH_TOKEN": "a-real-looking-token"}
    result = subprocess.run([sys.executable, "-m", "bot.cli", "dev", "--port", "1"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "AVISO_ENV=development refuses to run with a Twilio account" in lines[0]
    assert not (tmp_path / "var").exists()  # nothing started, nothing written


def test_a_web_server_started_without_aviso_env_is_production_and_refuses_in_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "AVISO_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "python:bot.gunicorn_conf", "--bind", "127.0.0.1:0",
         "bot:create_app()"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=30,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "AVISO_ENV is unset, which means production" in result.stderr
