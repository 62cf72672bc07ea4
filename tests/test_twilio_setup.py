"""`aviso twilio setup` points Twilio at Aviso through the REST API (against the fake Twilio server)."""

from __future__ import annotations

import pytest

from bot.cli.main import cli
from bot.twilio.fake import FakeTwilio

from .conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE_URL

SERVICE = "MG" + "d" * 32
NUMBER = "+12135550100"


@pytest.fixture
def fake():
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, phone_numbers=[NUMBER],
                    messaging_services=[SERVICE]) as server:
        yield server


def live(cli_env: dict[str, str], fake, **extra: str) -> dict[str, str]:
    """A production environment with a (fake) Twilio account."""
    return {**cli_env, "AVISO_ENV": "production", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE_URL": fake.url, **extra}


def test_setup_points_the_messaging_service_at_the_webhook_fallback_and_status_callback(runner, cli_env, fake):
    env = live(cli_env, fake, TWILIO_MESSAGING_SERVICE_SID=SERVICE)
    result = runner.invoke(cli, ["twilio", "setup"], env=env)
    assert result.exit_code == 0, result.output
    service = fake.services()[SERVICE]
    assert service["inbound_request_url"] == PUBLIC_BASE_URL + "/twilio/messages"
    assert service["fallback_url"] == PUBLIC_BASE_URL + "/twilio/fallback"  # answers from memory alone
    assert service["status_callback"] == PUBLIC_BASE_URL + "/twilio/status"


def test_setup_can_point_a_single_number_instead(runner, cli_env, fake):
    env = live(cli_env, fake, TWILIO_SMS_FROM=NUMBER)
    result = runner.invoke(cli, ["twilio", "setup", "--number", NUMBER], env=env)
    assert result.exit_code == 0, result.output
    number = next(n for n in fake.phone_numbers().values() if n["phone_number"] == NUMBER)
    assert number["sms_url"] == PUBLIC_BASE_URL + "/twilio/messages"
    assert number["sms_fallback_url"] == PUBLIC_BASE_URL + "/twilio/fallback"
    assert number["voice_url"] == number["voice_fallback_url"] == PUBLIC_BASE_URL + "/twilio/voice"


def test_setup_takes_a_second_deployment_as_the_fallback(runner, cli_env, fake):
    env = live(cli_env, fake, TWILIO_MESSAGING_SERVICE_SID=SERVICE)
    elsewhere = "https://aviso-fallback.example.net/twilio/fallback"
    result = runner.invoke(cli, ["twilio", "setup", "--fallback-url", elsewhere], env=env)
    assert result.exit_code == 0, result.output
    assert fake.services()[SERVICE]["fallback_url"] == elsewhere
    plain = runner.invoke(cli, ["twilio", "setup", "--fallback-url", "http://insecure.example.net/x"], env=env)
    assert plain.exit_code != 0 and "https" in plain.output


def test_setup_explains_an_unknown_number_and_missing_credentials(runner, cli_env, fake):
    env = live(cli_env, fake, TWILIO_SMS_FROM=NUMBER)
    unknown = runner.invoke(cli, ["twilio", "setup", "--number", "+12135550999"], env=env)
    assert unknown.exit_code != 0 and "is not a number of this Twilio account" in unknown.output
    bare = runner.invoke(cli, ["twilio", "setup"],
                         env=live(cli_env, fake, TWILIO_ACCOUNT_SID="", TWILIO_SMS_FROM=NUMBER))
    assert bare.exit_code != 0 and "TWILIO_ACCOUNT_SID" in bare.output


def test_setup_points_the_numbers_voice_url_at_the_voice_line(runner, cli_env, fake):
    env = live(cli_env, fake, TWILIO_MESSAGING_SERVICE_SID=SERVICE, TWILIO_SMS_FROM=NUMBER)
    elsewhere = "https://aviso-fallback.example.net/twilio/fallback"
    result = runner.invoke(cli, ["twilio", "setup", "--fallback-url", elsewhere], env=env)
    assert result.exit_code == 0, result.output
    number = next(n for n in fake.phone_numbers().values() if n["phone_number"] == NUMBER)
    assert number["voice_url"] == PUBLIC_BASE_URL + "/twilio/voice"
    assert number["voice_fallback_url"] == "https://aviso-fallback.example.net/twilio/voice"
    assert "calls -> " + PUBLIC_BASE_URL + "/twilio/voice" in result.output
