"""The compose flows of issue 15 in Debian's chromium at 360 px: a template's free text asked once per language
the school's families read (and only those), a date field, the WhatsApp window in the preview, and "Send to N
families?" before an update goes out. Screenshots: test-artifacts/dashboard-compose-*.png."""

from __future__ import annotations

import re

import pytest

from . import test_dashboard_browser as browser_test
from .test_dashboard_browser import LAUNCH_ARGS, PHONE, SENDER, fits_the_phone, shot, sign_in
from .test_running_app import ARTIFACTS, CHROMIUM

# the dashboard browser test's fixtures: the fake Twilio, the app served, `aviso worker`, Belmont's families
port, fake, settings, server, worker, belmont = (browser_test.port, browser_test.fake, browser_test.settings,
                                                 browser_test.server, browser_test.worker, browser_test.belmont)
LABELS = {"phone": "Your phone number", "send": "Text me a code", "code": "Code from the text message",
          "sign_in": "Sign in"}


@pytest.mark.browser
def test_free_text_in_each_families_language_and_send_to_n_families(server, worker, fake, belmont, aviso):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = chromium.new_context(viewport=PHONE, locale="en-US").new_page()
            sign_in(page, server, fake, SENDER, LABELS)
            page.get_by_role("navigation").get_by_role("link", name="New broadcast").click()
            page.get_by_label("Template", exact=True).select_option("route_change")
            page.get_by_label("Date", exact=True).fill("2026-12-03")
            route = page.get_by_role("group", name="Route")
            for code in ("es", "en", "ko"):  # Belmont's families read Spanish, English and Korean
                expect(route.locator(f'[data-lang="{code}"]')).to_be_visible()
            for code in ("fa", "ar", "zh-Hant"):
                expect(route.locator(f'[data-lang="{code}"]')).to_be_hidden()
            route.get_by_label("Español").fill("salgan por la puerta de 3rd St")
            route.get_by_label("English").fill("exit by the 3rd St gate")
            preview = page.locator("#preview-body")
            expect(preview).to_contain_text("No text for 한국어")  # Korean families would get nothing
            route.get_by_label("한국어").fill("3rd St 문으로 나가세요")
            expect(preview).to_contain_text("25 recipients")
            expect(preview).to_contain_text("1 WhatsApp family has not written in 24 hours.")
            expect(preview).to_contain_text("No approved template covers their language")
            expect(preview).to_contain_text("salgan por la puerta de 3rd St")
            expect(preview).to_contain_text("jue 3 dic")  # the date in Spanish
            assert fits_the_phone(page)
            shot(page, "compose-per-language")
            page.get_by_role("button", name="Send", exact=True).click()
            confirm = page.get_by_role("heading", name="Send to 24 families?")
            expect(confirm).to_be_visible()
            assert aviso.broadcasts.list_recent(5) == []  # nothing stored before the answer
            assert fits_the_phone(page)
            shot(page, "compose-confirm")
            page.get_by_role("button", name="Yes, send to 24 families").click()
            expect(page.locator("#broadcast")).to_be_visible()
            expect(page.get_by_text(re.compile("Sending now"))).to_be_visible()
        finally:
            chromium.close()
    sent = aviso.broadcasts.list_recent(5)
    assert len(sent) == 1 and set(sent[0].texts) == {"es", "en", "ko"}
