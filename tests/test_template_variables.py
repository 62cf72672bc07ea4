"""Template variables per language (content/manifest.toml [variables]): free text in every language the families
read or refused, dates and times in each language's calendar and clock, right-to-left lines kept readable."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.broadcasts.compose import BroadcastRequest, ComposeError, MissingTranslation, render, validate
from bot.broadcasts.variables import FSI, PDI
from bot.cli.main import cli
from bot.publishing import check as content_check

from .test_broadcasts import subscribe
from .test_compose import ROUTE_TEXT
from .test_content import content_copy, edit, messages  # noqa: F401  (content_copy: a fixture)

ON = datetime(2026, 12, 3, 7, 30, tzinfo=ZoneInfo("America/Los_Angeles"))


def _route(route, date="2026-12-03"):
    return BroadcastRequest(("BELMONT",), "update", "route_change", {"date": date, "route": route})


def test_one_string_of_free_text_for_every_language_is_refused(shipped_content):
    with pytest.raises(ComposeError, match=r'route is free text: give it in each language.*--var route.es='):
        validate(_route("exit by the 3rd St gate"), shipped_content)
    with pytest.raises(ComposeError, match="route: unknown language"):
        validate(_route({"xx": "gate"}), shipped_content)


def test_each_language_gets_its_own_text_and_its_own_date(shipped_content):
    texts = render(_route({"en": "exit by the 3rd St gate", "es": "salgan por la puerta de 3rd St"}),
                   shipped_content, "K7P2Q", on=ON)
    assert set(texts) == {"en", "es"}  # the template is written only where its free text was given
    assert "exit by the 3rd St gate" in texts["en"] and "Thu Dec 3" in texts["en"]
    assert "salgan por la puerta de 3rd St" in texts["es"] and "jue 3 dic" in texts["es"]
    assert "exit by" not in texts["es"] and "Thu" not in texts["es"]


@pytest.mark.parametrize(("date", "problem"), [("Thu Dec 3", "date is a date: give it like 2026-12-03"),
                                               ("2026-13-03", "date is a date")])
def test_a_date_is_given_once_in_a_form_every_language_can_write(shipped_content, date, problem):
    with pytest.raises(ComposeError, match=problem):
        validate(_route(ROUTE_TEXT, date), shipped_content)


@pytest.mark.parametrize(("typed", "en", "ru"), [("7:45 pm", "7:45 pm", "19:45"), ("19:45", "7:45 pm", "19:45"),
                                                 ("8 am", "8:00 am", "8:00"), ("12:05 am", "12:05 am", "0:05")])
def test_a_time_is_written_with_each_languages_clock(shipped_content, typed, en, ru):
    request = BroadcastRequest(("BELMONT",), "all_clear", "all_clear", {"time": typed})
    validate(request, shipped_content)
    texts = render(request, shipped_content, "K7P2Q", on=ON)
    assert en in texts["en"] and ru in texts["ru"] and set(texts) == set(shipped_content.languages)


def test_a_time_staff_cannot_mean_is_refused(shipped_content):
    for typed in ("25:00", "13 pm", "soon"):
        with pytest.raises(ComposeError, match="time is a time: give it like 7:45 am or 19:45"):
            validate(BroadcastRequest(("BELMONT",), "all_clear", "all_clear", {"time": typed}), shipped_content)


def test_right_to_left_lines_isolate_each_value(shipped_content):
    texts = render(_route(ROUTE_TEXT), shipped_content, "K7P2Q", on=ON)
    for language in ("fa", "ar"):
        assert f"{FSI}{ROUTE_TEXT[language]}{PDI}" in texts[language]
        assert texts[language].count(FSI) == texts[language].count(PDI) >= 2  # the route and the date
    assert FSI not in texts["es"] and FSI not in texts["en"]


def test_families_whose_language_has_no_value_are_named_before_it_goes_out(aviso, shipped_content):
    known = set(shipped_content.schools.by_code)
    sender = aviso.roster.add("+13105550101", "Ms. Rivera", "sender", ["BELMONT"], known)
    for number, language in (("+12135550111", "en"), ("+12135550112", "es"), ("+12135550114", "ko")):
        subscribe(aviso, number, school="BELMONT", lang=language)
    only_two = _route({"en": "exit by the 3rd St gate", "es": "salgan por la puerta de 3rd St"})
    with pytest.raises(MissingTranslation) as refused:
        aviso.desk().preview(sender, only_two)
    assert refused.value.languages == ["ko"]
    draft, plan = aviso.desk().preview(sender, _route({**only_two.variables["route"], "ko": "3rd St 문으로 나가세요"}))
    assert plan.missing == () and "3rd St 문으로 나가세요" in draft.texts["ko"]


def test_the_api_and_cli_take_free_text_per_language(client, aviso, runner, cli_env):
    known = set(aviso.active_content().schools.by_code)
    sender = aviso.roster.add("+13105550101", "Ms. Rivera", "sender", ["BELMONT"], known)
    subscribe(aviso, "+12135550112", school="BELMONT", lang="es")
    headers = {"Authorization": f"Bearer {aviso.roster.issue_token(sender.id)}"}
    body = {"schools": ["BELMONT"], "kind": "update", "template": "route_change",
            "variables": {"date": "2026-12-03", "route": "exit by the 3rd St gate"}}
    listed = client.get("/api/templates", headers=headers).json
    assert listed["templates"]["route_change"] == ["date", "route"]
    assert (listed["variables"]["route"], listed["variables"]["date"]) == ("text", "date")
    assert "route (text)" in runner.invoke(cli, ["broadcast", "templates"], env=cli_env).output
    refused = client.post("/api/broadcasts/preview", json=body, headers=headers)
    assert refused.status_code == 400 and "route is free text" in refused.json["error"]
    body["variables"]["route"] = {"es": "salgan por la puerta de 3rd St"}
    answer = client.post("/api/broadcasts/preview", json=body, headers=headers)
    assert answer.status_code == 200 and list(answer.json["texts"]) == ["es"]
    base = ["broadcast", "create", "--as", sender.id, "--schools", "BELMONT", "--kind", "update",
            "--template", "route_change", "--var", "date=2026-12-03", "--preview"]
    cli_refused = runner.invoke(cli, [*base, "--var", "route=exit by the gate"], env=cli_env)
    assert cli_refused.exit_code != 0 and "--var route.es=" in cli_refused.output
    written = runner.invoke(cli, [*base, "--var", "route.es=salgan por la puerta de 3rd St"], env=cli_env)
    assert written.exit_code == 0, written.output
    assert "salgan por la puerta de 3rd St" in json.loads(written.output)["texts"]["es"]


def test_the_checker_refuses_a_template_variable_the_manifest_does_not_declare(content_copy):  # noqa: F811
    edit(content_copy / "manifest.toml", 'route = "text"\n', "")
    assert any("template.route_change uses {route}" in e for e in messages(content_check.check(content_copy)))
    edit(content_copy / "manifest.toml", 'date = "date"', 'date = "calendar"')
    assert any("[variables] date = 'calendar'" in e for e in messages(content_check.check(content_copy)))
