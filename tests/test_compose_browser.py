"""The compose flows of issue 15 in Debian's chromium at 360 px: a template's free text asked once per language
the school's families read (and only those), a date field, the WhatsApp window in the preview, and "Send to N
families?" before an update goes out. Screenshots: test-artifacts/dashboard-compose-*.png."""

from __future__ import annotations

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
        finally:
            chromium.close()
    sent = aviso.broadcasts.list_recent(5)
    assert len(sent) == 1 and set(sent[0].texts) == {"es", "en", "ko"}


@pytest.mark.browser
def test_write_it_again_after_a_send_back_keeps_everything(server, worker, fake, belmont, aviso):
    from playwright.sync_api import expect, sync_playwright

    from .test_dashboard_browser import APPROVER

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            sender = chromium.new_context(viewport=PHONE, locale="en-US").new_page()
            sign_in(sender, server, fake, SENDER, LABELS)
            sender.get_by_role("navigation").get_by_role("link", name="New broadcast").click()
            sender.get_by_label("Verified alert").check()
            sender.get_by_label("Verified by").fill("LAUSD School Police")
            sender.get_by_label("My own text in each language").check()
            sender.get_by_label("Español es", exact=True).fill("Eviten 3rd y Loma esta mañana.")
            sender.get_by_label("English en", exact=True).fill("Avoid 3rd & Loma this morning.")
            sender.get_by_label("Families whose language has no text receive").select_option("en")
            sender.get_by_label("Urgent").check()
            sender.get_by_role("button", name="Send", exact=True).click()  # to the approver: no second question
            expect(sender.locator("p.state")).to_have_text("Waiting for approval")
            waiting = sender.url

            approver = chromium.new_context(viewport=PHONE, locale="en-US").new_page()
            sign_in(approver, server, fake, APPROVER, LABELS)
            approver.goto(waiting)
            expect(approver.locator("#goes-out")).to_have_text("Approved now, it goes out at once.")
            approver.get_by_label("Why are you sending it back?").fill("Say which gate to use")
            approver.get_by_role("button", name="Send back").click()

            sender.reload()
            expect(sender.get_by_role("alert")).to_contain_text("Say which gate to use")
            sender.get_by_role("link", name="Write it again").click()
            expect(sender.get_by_label("Español es", exact=True)).to_have_value("Eviten 3rd y Loma esta mañana.")
            expect(sender.get_by_label("English en", exact=True)).to_have_value("Avoid 3rd & Loma this morning.")
            expect(sender.get_by_label("Urgent")).to_be_checked()
            expect(sender.get_by_label("Verified by")).to_have_value("LAUSD School Police")
            expect(sender.get_by_label("Families whose language has no text receive")).to_have_value("en")
            expect(sender.get_by_label("WhatsApp families who have not written in 24 hours receive")).to_have_value("1")
            assert fits_the_phone(sender)
            shot(sender, "compose-write-it-again")
        finally:
            chromium.close()
