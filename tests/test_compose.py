"""Composing a broadcast: templates in every language, custom texts, labels, codes, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.broadcasts.compose import (
    CODE_ALPHABET,
    BroadcastRequest,
    ComposeError,
    MissingTranslation,
    check_languages,
    new_code,
    render,
    templates,
    validate,
)
from bot.content import encoding

ON = datetime(2026, 12, 3, 7, 30, tzinfo=ZoneInfo("America/Los_Angeles"))  # a Thursday
ROUTE_TEXT = {"en": "exit by the 3rd St gate", "es": "salgan por la puerta de 3rd St", "ko": "3rd St 문으로 나가세요",
              "zh-Hant": "從 3rd St 大門離開", "hy": "դուրս եկեք 3rd St դարպասով", "tl": "lumabas sa gate ng 3rd St",
              "vi": "ra bằng cổng 3rd St", "fa": "از درِ خیابان 3rd St خارج شوید",
              "ru": "выходите через ворота на 3rd St", "ar": "اخرجوا من بوابة شارع 3rd St"}
ROUTE = BroadcastRequest(
    schools=("BELMONT",), kind="update", template="route_change",
    variables={"date": "2026-12-03", "route": ROUTE_TEXT},
)


def test_template_renders_in_every_content_language_with_status_school_and_code(shipped_content):
    texts = render(ROUTE, shipped_content, "K7P2Q", on=ON)
    assert set(texts) == set(shipped_content.languages)
    for language, text in texts.items():
        assert "Belmont High School" in text and "K7P2Q" in text and "3rd St" in text
        assert shipped_content.text(language, "status.update") in text


def test_verified_alert_names_who_verified_it(shipped_content):
    request = BroadcastRequest(("BELMONT", "VENICE"), "verified", "activity_verified",
                               {"location": "3rd & Loma", "time": "7:45 am"}, verified_by="LAUSD School Police")
    validate(request, shipped_content)
    text = render(request, shipped_content, "K7P2Q", on=ON)["es"]
    assert "LAUSD School Police" in text and "Belmont High School, Venice High School" in text


def test_rendered_alerts_fit_three_sms_segments_in_spanish_and_english(shipped_content):
    for language, text in render(ROUTE, shipped_content, "K7P2Q", on=ON).items():
        if language in ("en", "es"):
            assert encoding.sms_cost(text, language).segments <= 3


@pytest.mark.parametrize(("language", "day"), [("en", "Thu Dec 3"), ("es", "jue 3 dic"), ("ko", "12월 3일(목)"),
                                                ("zh-Hant", "12月3日(週四)"), ("ru", "чт, 3 дек")])
def test_every_alert_carries_the_day_it_goes_out_in_the_families_language(shipped_content, language, day):
    text = render(ROUTE, shipped_content, "K7P2Q", on=ON)[language]
    assert day in text.split("\n")[0]  # in the first line: a week-old forward shows its age at a glance


def test_a_correction_names_the_code_of_the_alert_it_corrects(shipped_content):
    request = BroadcastRequest(("BELMONT",), "correction", "correction",
                               {"correction": {"en": "the report near Belmont was not immigration enforcement.",
                                               "es": "lo reportado cerca de Belmont no era inmigración."}},
                               corrects="b-original")
    texts = render(request, shipped_content, "RXT4P", on=ON, corrects_code="H4MXT")
    assert texts["en"].startswith("AVISO CORRECTION of alert H4MXT - Belmont High School - Thu Dec 3")
    assert texts["es"].startswith("AVISO CORRECCIÓN de la alerta H4MXT - Belmont High School - jue 3 dic")
    assert all("H4MXT" in text and "RXT4P" in text for text in texts.values())


def test_no_alert_template_promises_students_are_safe(shipped_content):
    for language in shipped_content.languages:
        template = shipped_content.text(language, "template.activity_verified")
        assert "safe" not in template.lower() and "seguros" not in template


def test_codes_use_only_unambiguous_characters():
    codes = {new_code() for _ in range(200)}
    assert len(codes) > 190
    assert all(len(c) == 5 and set(c) <= set(CODE_ALPHABET) for c in codes)


def test_templates_list_their_variables(shipped_content):
    found = templates(shipped_content)
    assert found["route_change"] == ["date", "route"]
    assert found["emergency_card"] == []


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (BroadcastRequest(("BELMONT",), "rumour", "all_clear", {"time": "8"}), "kind must be one of"),
        (BroadcastRequest((), "update", "all_clear", {"time": "8"}), "at least one school"),
        (BroadcastRequest(("NOWHERE",), "update", "all_clear", {"time": "8"}), "unknown school code(s): NOWHERE"),
        (BroadcastRequest(("BELMONT",), "verified", "all_clear", {"time": "8"}), "who verified it"),
        (BroadcastRequest(("BELMONT",), "correction", "correction", {"correction": "x"}), "name the broadcast"),
        (BroadcastRequest(("BELMONT",), "update", "route_change", {"date": "Dec 3"}), "needs: route"),
        (BroadcastRequest(("BELMONT",), "update", "nope", {}), "unknown template"),
        (BroadcastRequest(("BELMONT",), "update"), "either a template"),
        (BroadcastRequest(("BELMONT",), "update", "all_clear", {"time": "8"}, {"en": "x"}), "either a template"),
        (BroadcastRequest(("BELMONT",), "update", custom_texts={"xx": "hola"}), "unknown language 'xx'"),
        (BroadcastRequest(("BELMONT",), "update", "all_clear", {"time": "8"},
                          send_at=datetime.now(UTC) - timedelta(hours=1)), "the send time has passed"),
        (BroadcastRequest(("BELMONT",), "update", "all_clear", {"time": "8"},
                          send_at=datetime.now(UTC) + timedelta(days=400)), "too far ahead: 300 days at most"),
    ],
)
def test_bad_requests_are_refused_with_what_to_fix(shipped_content, request_, message):
    with pytest.raises(ComposeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(request_, shipped_content)


def test_custom_text_missing_a_recipient_language_is_refused_unless_a_fallback_is_named(shipped_content):
    custom = BroadcastRequest(("BELMONT",), "update", custom_texts={"en": "Gate B closed today."})
    with pytest.raises(MissingTranslation) as error:
        check_languages(custom, shipped_content, {"en", "es"})
    assert error.value.languages == ["es"]
    check_languages(BroadcastRequest(("BELMONT",), "update", custom_texts={"en": "x"}, fallback_language="en"),
                    shipped_content, {"en", "es"})


def test_custom_text_is_framed_in_its_own_language(shipped_content):
    custom = BroadcastRequest(("VENICE",), "all_clear", custom_texts={"en": "All clear.", "es": "Todo bien."})
    texts = render(custom, shipped_content, "AC3D4", on=ON)
    assert set(texts) == {"en", "es"}
    assert "Todo bien." in texts["es"] and shipped_content.text("es", "status.all_clear") in texts["es"]
