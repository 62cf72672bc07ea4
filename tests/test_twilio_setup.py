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


def test_number_mode_sets_no_call_status_callback(runner, cli_env, fake):
    """A number's StatusCallback is for calls: Aviso's message statuses travel with each message instead."""
    env = live(cli_env, fake, TWILIO_SMS_FROM=NUMBER)
    result = runner.invoke(cli, ["twilio", "setup", "--number", NUMBER], env=env)
    assert result.exit_code == 0, result.output
    number = next(n for n in fake.phone_numbers().values() if n["phone_number"] == NUMBER)
    assert number["status_callback"] == ""
    assert number["sms_method"] == number["sms_fallback_method"] == number["voice_method"] == "POST"
    assert "sent with each message" in result.output


def twilio_number(fake, **update):
    """The number as the real twilio library sees it on the fake server (updated first with any fields given)."""
    from bot.twilio.client import make_client

    client = make_client(ACCOUNT_SID, AUTH_TOKEN, api_base_url=fake.url)
    try:
        number = client.incoming_phone_numbers.list(phone_number=NUMBER, limit=1)[0]
        return number.update(**update) if update else number
    finally:
        client.http_client.session.close()


@pytest.mark.parametrize("mode", [["--number", NUMBER], []])
def test_setup_clears_the_call_status_callback_an_earlier_setup_set(runner, cli_env, fake, mode):
    twilio_number(fake, status_callback=PUBLIC_BASE_URL + "/twilio/status")  # what setup used to do
    env = live(cli_env, fake, TWILIO_SMS_FROM=NUMBER, TWILIO_MESSAGING_SERVICE_SID=SERVICE)
    result = runner.invoke(cli, ["twilio", "setup", *mode], env=env)
    assert result.exit_code == 0, result.output
    assert twilio_number(fake).status_callback == ""


def test_setup_leaves_a_call_status_callback_of_the_districts_own(runner, cli_env, fake):
    theirs = "https://calls.district.example.org/status"
    twilio_number(fake, status_callback=theirs)
    env = live(cli_env, fake, TWILIO_SMS_FROM=NUMBER)
    result = runner.invoke(cli, ["twilio", "setup", "--number", NUMBER], env=env)
    assert result.exit_code == 0, result.output
    assert twilio_number(fake).status_callback == theirs


def test_service_mode_answers_for_its_numbers_and_leaves_their_sms_urls(runner, cli_env, fake):
    env = live(cli_env, fake, TWILIO_MESSAGING_SERVICE_SID=SERVICE, TWILIO_SMS_FROM=NUMBER)
    result = runner.invoke(cli, ["twilio", "setup"], env=env)
    assert result.exit_code == 0, result.output
    service = fake.services()[SERVICE]
    assert service["inbound_method"] == service["fallback_method"] == "POST"
    assert service["use_inbound_webhook_on_number"] in (False, "False", "false")  # the service's URLs win
    number = twilio_number(fake)
    assert number.sms_url == "" and number.status_callback == ""  # messaging belongs to the service
    assert number.voice_url == PUBLIC_BASE_URL + "/twilio/voice"
    assert f"Messaging Service {SERVICE}: inbound -> {PUBLIC_BASE_URL}/twilio/messages" in result.output


def test_webhook_urls_follow_the_public_origin_and_the_fallback_deployment():
    from bot.twilio.webhooks import WebhookUrls

    here = WebhookUrls.for_origin("https://aviso.example.org/")
    assert here.inbound == "https://aviso.example.org/twilio/messages"
    assert here.status == "https://aviso.example.org/twilio/status"
    assert here.fallback == "https://aviso.example.org/twilio/fallback"
    assert here.voice == here.voice_fallback == "https://aviso.example.org/twilio/voice"
    there = WebhookUrls.for_origin("https://aviso.example.org", "https://backup.example.net/twilio/fallback")
    assert there.fallback == "https://backup.example.net/twilio/fallback"
    assert there.voice_fallback == "https://backup.example.net/twilio/voice"
