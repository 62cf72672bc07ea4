"""History and Approvals in Debian's chromium on a 360 px phone: a school's broadcasts a page at a time
("Older"), searched by kind and status, the pending alert listed while another school is busy.
Screenshots: test-artifacts/dashboard-history-*.png."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.broadcasts.store import DONE, PENDING_APPROVAL, Broadcast, BroadcastStore, new_id

from . import test_dashboard_browser as browser_tests
from .test_dashboard_browser import APPROVER, LAUNCH_ARGS, PHONE, SENDER, fits_the_phone, shot, sign_in
from .test_running_app import ARTIFACTS, CHROMIUM

# The dashboard browser tests' app: served from a thread, sending through the fake Twilio.
port, fake, settings, server = browser_tests.port, browser_tests.fake, browser_tests.settings, browser_tests.server
worker = browser_tests.worker  # sign-in codes are texted by a job (the worker sends them)
ENGLISH = {"phone": "Your phone number", "send": "Text me a code", "code": "Code from the text message",
           "sign_in": "Sign in"}


@pytest.fixture
def busy_district(aviso):
    """Belmont: 25 updates sent and one verified alert waiting; Venice: 60 updates since."""
    known = set(aviso.active_content().schools.by_code)
    sender = aviso.roster.add(SENDER, "Ms. Rivera", "sender", ["BELMONT"], known)
    aviso.roster.add(APPROVER, "Principal Kim", "approver", ["BELMONT"], known)
    store, start = BroadcastStore(aviso.connection), datetime.now(UTC) - timedelta(days=2)
    for n in range(25):
        store.create(Broadcast(id=new_id(), schools=("BELMONT",), kind="update", texts={"en": f"Belmont {n}"},
                               code=f"B{n:04d}", created_by=sender.id, status=DONE,
                               created_at=start + timedelta(minutes=n)))
    waiting = store.create(Broadcast(id=new_id(), schools=("BELMONT",), kind="verified", texts={"en": "Agents"},
                                     code="WAIT1", created_by=sender.id, status=PENDING_APPROVAL,
                                     created_at=start + timedelta(hours=1)))
    for n in range(60):
        store.create(Broadcast(id=new_id(), schools=("VENICE",), kind="update", texts={"en": f"Venice {n}"},
                               code=f"V{n:04d}", created_by="venice", status=DONE,
                               created_at=start + timedelta(hours=2, minutes=n)))
    return waiting


@pytest.mark.browser
def test_history_pages_and_searches_and_approvals_lists_the_waiting_alert_on_a_phone(server, worker, fake,
                                                                                     busy_district):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_context(viewport=PHONE, locale="en-US").new_page()
            sign_in(page, server, fake, APPROVER, ENGLISH)
            page.get_by_role("navigation").get_by_role("link", name="Approvals").click()
            expect(page.get_by_text("WAIT1")).to_be_visible()

            page.get_by_role("navigation").get_by_role("link", name="History").click()
            expect(page.locator("ul.items li")).to_have_count(20)
            expect(page.get_by_text("WAIT1")).to_be_visible()  # the newest of Belmont's
            expect(page.get_by_text("V0001")).to_have_count(0)  # never Venice's
            assert fits_the_phone(page)
            shot(page, "history-1-first-page")
            page.get_by_role("link", name="Older").click()
            expect(page.locator("ul.items li")).to_have_count(6)
            expect(page.get_by_text("B0000")).to_be_visible()
            expect(page.get_by_role("link", name="Older")).to_have_count(0)

            page.get_by_label("Kind").select_option("verified")
            page.get_by_label("Status").select_option("pending_approval")
            page.get_by_role("button", name="Search").click()
            expect(page.locator("ul.items li")).to_have_count(1)
            expect(page.get_by_text("WAIT1")).to_be_visible()
            assert fits_the_phone(page)
            shot(page, "history-2-search")
        finally:
            browser.close()
