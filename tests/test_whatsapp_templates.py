"""WhatsApp families outside the 24-hour window: the approved template per broadcast kind and language
(AVISO_WHATSAPP_TEMPLATES), chosen per broadcast in the API, CLI and form, listed from the Content API, said in
the preview, and sent with ContentSid and ContentVariables through the fake Twilio."""

from __future__ import annotations

import json
import time

import pytest

from bot.cli.main import cli
from bot.whatsapp_templates import InvalidTemplates, for_kind, parse
from tests.conftest import ACCOUNT_SID
from tests.test_broadcasts import subscribe
from tests.test_fanout import SERVICE_SID, WHATSAPP_FROM, work
from tests.test_fanout import fake as fake  # noqa: F401, PLC0414  (the fake Twilio fixture)

SID_ES, SID_ANY, SID_EN = ("HX" + c * 32 for c in "abc")
ROUTE = {"schools": ["BELMONT"], "kind": "update", "template": "route_change",
         "variables": {"date": "2026-12-03", "route": {"es": "salgan por la puerta de 3rd St",
                                                          "en": "exit by the 3rd St gate"}}}


@pytest.fixture
def settings(settings, fake):
    """Sending through the fake Twilio, no quiet hours, a Spanish template for updates."""
    return settings.with_overrides(
        twilio_account_sid=ACCOUNT_SID, twilio_messaging_service_sid=SERVICE_SID, twilio_whatsapp_from=WHATSAPP_FROM,
        twilio_api_base_url=fake.url, quiet_hours=None, whatsapp_templates=(("update", "es", SID_ES),))


@pytest.fixture
def token(aviso):
    known = set(aviso.active_content().schools.by_code)
    return aviso.roster.issue_token(aviso.roster.add("+13105550101", "Ms. Rivera", "sender", ["BELMONT"], known).id)


@pytest.fixture
def families(aviso):
    """At Belmont: Spanish and English WhatsApp families silent for 30 hours, a Spanish one who wrote an hour
    ago, and a Spanish SMS family."""
    now = int(time.time())
    subscribe(aviso, "+12135550201", school="BELMONT", channel="whatsapp", wa_seen=now - 30 * 3600)
    subscribe(aviso, "+12135550202", school="BELMONT", channel="whatsapp", lang="en", wa_seen=now - 30 * 3600)
    subscribe(aviso, "+12135550203", school="BELMONT", channel="whatsapp", wa_seen=now - 3600)
    subscribe(aviso, "+12135550204", school="BELMONT")


def _post(client, token, path, body):
    return client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


def _sent(fake) -> dict[str, dict]:
    return {r["params"]["To"]: r["params"] for r in fake.requests() if r["params"].get("To")}


def test_the_setting_maps_each_kind_and_language_to_one_content_sid():
    configured = parse(f"update.es={SID_ES}, update.*={SID_ANY},verified.en={SID_EN}")
    assert for_kind(configured, "update", ["es", "ko"]) == {"es": SID_ES, "ko": SID_ANY}
    assert for_kind(configured, "verified", ["es", "en"]) == {"en": SID_EN}
    assert parse("") == ()
    with pytest.raises(InvalidTemplates, match="e.g. update.es=HX"):
        parse("update:es=" + SID_ES)


def test_the_preview_says_who_is_outside_the_window_and_whether_a_template_covers_them(client, token, families):
    answer = _post(client, token, "/api/broadcasts/preview", ROUTE)
    assert answer.status_code == 200, answer.json
    plan = answer.json["plan"]
    assert (plan["whatsapp_outside_window"], plan["whatsapp_without_template"]) == (2, 1)
    rows = {row["language"]: row for row in plan["languages"]}
    assert (rows["es"]["whatsapp_template"], rows["en"]["whatsapp_unreachable"]) == (1, 1)
    assert plan["total_segments"] == rows["es"]["sms_segments_per_message"]  # the one SMS: WhatsApp costs none
    covered = _post(client, token, "/api/broadcasts/preview", {**ROUTE, "whatsapp_templates": {"en": SID_EN}})
    assert covered.json["plan"]["whatsapp_without_template"] == 0


def test_outside_the_window_the_template_goes_with_its_variables_and_without_it_nothing(app, aviso, client, token,
                                                                                         families, fake):
    created = _post(client, token, "/api/broadcasts", ROUTE)
    assert created.status_code == 201, created.json
    assert created.json["whatsapp_templates"] == {"es": SID_ES}
    work(app, aviso)
    sent = _sent(fake)
    template = sent["whatsapp:+12135550201"]
    assert template["ContentSid"] == SID_ES and "Body" not in template
    variables = json.loads(template["ContentVariables"])
    assert variables["1"] == "Belmont High School" and variables["3"] == created.json["code"]
    assert "3rd St" in variables["2"] and "\n" not in variables["2"]
    assert "ContentSid" not in sent["whatsapp:+12135550203"]  # wrote an hour ago: the text itself
    assert "whatsapp:+12135550202" not in sent  # English: no template
    outcomes = aviso.broadcasts.outcomes(created.json["id"])
    assert outcomes.skipped == {"whatsapp_window_closed": 1}


def test_a_broadcast_chooses_its_templates_or_none(app, aviso, client, token, families, fake):
    chosen = _post(client, token, "/api/broadcasts", {**ROUTE, "whatsapp_templates": {"en": SID_EN}})
    assert chosen.json["whatsapp_templates"] == {"es": SID_ES, "en": SID_EN}
    work(app, aviso)
    assert _sent(fake)["whatsapp:+12135550202"]["ContentSid"] == SID_EN
    fake.reset()
    none = _post(client, token, "/api/broadcasts", {**ROUTE, "whatsapp_templates": False})
    assert none.json["whatsapp_templates"] == {}
    work(app, aviso)
    assert not any("ContentSid" in params for params in _sent(fake).values())
    wrong = _post(client, token, "/api/broadcasts/preview", {**ROUTE, "whatsapp_templates": {"es": "HX12"}})
    assert wrong.status_code == 400 and "Content SID" in wrong.json["error"]


def test_aviso_twilio_templates_lists_the_approved_ones_and_what_they_serve(runner, cli_env, fake):
    approved = fake.add_content("aviso_update_es", "es", "{{1}}: {{2}} (VERIFY {{3}})")
    fake.add_content("aviso_update_ko", "ko", "{{1}}: {{2}}", status="pending")
    env = {**cli_env, "AVISO_WHATSAPP_TEMPLATES": f"update.es={approved['sid']},verified.en={SID_EN}"}
    result = runner.invoke(cli, ["twilio", "templates"], env=env)
    assert result.exit_code == 0, result.output
    assert approved["sid"] in result.output and "aviso_update_es" in result.output and "update.es" in result.output
    assert "aviso_update_ko" not in result.output
    assert f"verified.en in AVISO_WHATSAPP_TEMPLATES is {SID_EN}" in result.output  # not approved here
    every = runner.invoke(cli, ["twilio", "templates", "--all"], env=env)
    assert "aviso_update_ko" in every.output and "pending" in every.output


def test_the_cli_chooses_templates_and_keeps_the_old_fallback_option_with_a_warning(runner, cli_env, aviso, token,
                                                                                    families):
    base = ["broadcast", "create", "--as", aviso.roster.by_token(token).id, "--schools", "BELMONT", "--kind",
            "update", "--text", "es=Salida por la puerta de 3rd St", "--preview"]
    old = runner.invoke(cli, [*base, "--fallback", "es"], env=cli_env)
    assert old.exit_code == 0, old.output
    assert "--fallback is deprecated; use --fallback-language" in old.output
    new = runner.invoke(cli, [*base, "--fallback-language", "es", "--whatsapp-template", f"es={SID_EN}"],
                        env=cli_env)
    assert new.exit_code == 0 and "deprecated" not in new.output
    assert json.loads(new.output)["plan"]["whatsapp_without_template"] == 0
    bare = runner.invoke(cli, [*base, "--fallback-language", "es", "--no-whatsapp-template"], env=cli_env)
    assert json.loads(bare.output)["plan"]["whatsapp_without_template"] == 2
    late = runner.invoke(cli, [*base[:-1], "--at", "tomorrow 7am"], env=cli_env)
    assert late.exit_code != 0 and "--at must be an ISO date and time" in late.output
    assert "like 2026-12-03T07:00:00-08:00" in late.output
