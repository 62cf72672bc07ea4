"""Every language, end to end through the webhook: the welcome, each menu entry, a keyword, and each
pre-translated alert template rendered in that language."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.broadcasts import compose
from bot.content import encoding
from bot.content.model import Content
from bot.conversation import engine

from .conftest import CONTENT_DIR, Phone

LANGUAGES = Content.from_dir(CONTENT_DIR).languages
VARIABLES = {"date": "2026-12-03", "route": "3rd St gate", "corners": "3rd & Loma", "hours": "2:30-3:45 pm",
             "location": "3rd & Loma", "time": "7:45 am", "correction": "It was not ICE.",
             "title": "Know your rights", "when": "2026-12-03T18:00", "place": "Belmont High"}
# free text is given per language (content/manifest.toml [variables]): here the same words in each, to render all
TEXT_VARIABLES = ("route", "hours", "correction", "title")


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_family_reaches_every_menu_entry_in_its_language(client, shipped_content, language):
    phone = Phone(client, "+12135550160")

    def sms(text: str) -> str:  # what an SMS carries: folded to GSM-7 where that saves a segment
        return encoding.for_sms(text, language)

    assert phone.text("hello there") == [encoding.for_sms(engine.welcome_text(shipped_content), None)]
    chosen = phone.text(str(LANGUAGES.index(language) + 1))[0]
    written = "\n".join([shipped_content.text(language, "language.set"),
                         engine.main_menu_text(shipped_content, language)])
    assert chosen == sms(written)
    now = datetime.now(shipped_content.workshops[0].starts.tzinfo)
    expected = {
        "rights": lambda: engine.submenu_text(shipped_content, language, "rights"),
        "resources": lambda: engine.submenu_text(shipped_content, language, "resources"),
        "workshops": lambda: engine.workshops_text(shipped_content, language, now),
        "alerts": lambda: shipped_content.text(language, "alerts.info"),
        "language": lambda: "\n".join([shipped_content.text(language, "language.prompt"),
                                       engine.language_lines(shipped_content)]),
        "help": lambda: shipped_content.text(language, "help"),
    }
    for number, entry in enumerate(shipped_content.main_menu, 1):
        phone.text("0")
        more = [sms(shipped_content.text(language, "help.more"))] if entry == "help" else []  # hotline, a person
        assert phone.text(str(number)) == [sms(expected[entry]()), *more], entry
    for menu_id, menu in shipped_content.menus.items():
        for number, item in enumerate(menu["items"], 1):
            phone.text("0")
            phone.text(str(shipped_content.main_menu.index(menu_id) + 1))
            assert phone.text(str(number)) == [sms(shipped_content.text(language, item))], item
    keyword = shipped_content.language(language)["keywords"]["rights"][0]
    assert phone.text(keyword) == [sms(engine.submenu_text(shipped_content, language, "rights"))]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_alert_template_renders_in_every_language(shipped_content, language):
    for template, needed in compose.templates(shipped_content).items():
        request = compose.BroadcastRequest(("BELMONT",), "verified", template,
                                           {name: {code: VARIABLES[name] for code in LANGUAGES}
                                            if name in TEXT_VARIABLES else VARIABLES[name] for name in needed},
                                           verified_by="LAUSD")
        text = compose.render(request, shipped_content, "K7P2Q", on=datetime(2026, 12, 3, 8, 0, tzinfo=UTC))[language]
        assert "K7P2Q" in text and "Belmont High School" in text and "LAUSD" in text
        assert shipped_content.text(language, f"template.{template}").split("{")[0].strip()[:10] in text
        cost = encoding.sms_cost(text, language)
        assert cost.segments <= (5 if cost.encoding == "UCS-2" else 3)


def test_right_to_left_languages_read_right_to_left():
    rtl = [code for code in LANGUAGES if Content.from_dir(CONTENT_DIR).language(code)["language"]["direction"] == "rtl"]
    assert set(rtl) == {"fa", "ar"}
