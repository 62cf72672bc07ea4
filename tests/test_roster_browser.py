"""The Staff pages in Debian's chromium on a 360 px phone, against the real app, a real `aviso worker` and the
fake Twilio: an admin adds someone, moves them to another school (same id), issues an API token (shown once)
and revokes it, imports a CSV with a wrong line (nobody added, the line named) then a right one, and takes
someone off the roster. Screenshots: test-artifacts/roster-*.png."""

from __future__ import annotations

import re

import pytest

from .test_dashboard_browser import LAUNCH_ARGS, PHONE, fits_the_phone, sign_in
from .test_dashboard_browser import fake as fake  # noqa: F401, PLC0414  (the same app, worker and fake Twilio)
from .test_dashboard_browser import port as port  # noqa: F401, PLC0414
from .test_dashboard_browser import server as server  # noqa: F401, PLC0414
from .test_dashboard_browser import settings as settings  # noqa: F401, PLC0414
from .test_dashboard_browser import worker as worker  # noqa: F401, PLC0414
from .test_running_app import ARTIFACTS, CHROMIUM

ADMIN = "+13105550104"
ENGLISH = {"phone": "Your phone number", "send": "Text me a code", "code": "Code from the text message",
           "sign_in": "Sign in"}


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"roster-{name}.png"), full_page=True)


@pytest.mark.browser
def test_admin_runs_the_roster_on_a_phone(server, worker, fake, aviso, tmp_path):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    known = set(aviso.active_content().schools.by_code)
    aviso.roster.add(ADMIN, "District Admin", "admin", [], known)
    ARTIFACTS.mkdir(exist_ok=True)
    good = tmp_path / "roster.csv"
    good.write_text("name,phone,role,schools\nMs. Ortiz,+13105550140,sender,BELMONT\n"
                    "Mr. Park,+13105550141,approver,BELMONT;VENICE\n", encoding="utf-8")
    bad = tmp_path / "roster-bad.csv"
    bad.write_text("name,phone,role,schools\nMs. Ortiz,+13105550140,sender,BELMONT\n"
                   "Dr. Who,+13105550142,wizard,HOGWARTS\n", encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_context(viewport=PHONE, locale="en-US").new_page()
            sign_in(page, server, fake, ADMIN, ENGLISH)
            page.get_by_role("navigation").get_by_role("link", name="Staff").click()
            expect(page.get_by_role("heading", name="Staff", exact=True)).to_be_visible()

            page.get_by_label("Name", exact=True).fill("Ms. Rivera")
            page.get_by_label("Mobile number").fill("+13105550110")
            page.get_by_label("Role", exact=True).select_option("sender")
            page.get_by_label("Schools", exact=True).fill("belmont")
            page.get_by_role("button", name="Add to the roster").click()
            expect(page.get_by_role("status")).to_have_text("Ms. Rivera is on the roster.")
            assert "3105550110" not in page.content() and fits_the_phone(page)
            shot(page, "1-added")

            member = aviso.roster.by_phone("+13105550110")
            page.get_by_role("link", name="Ms. Rivera").click()
            page.get_by_role("textbox", name="Schools").fill("VENICE")
            page.get_by_role("button", name="Save", exact=True).click()
            expect(page.get_by_role("status")).to_have_text("Saved.")
            assert page.url.endswith(f"/dashboard/staff/{member.id}")
            assert aviso.roster.get(member.id).schools == ("VENICE",)  # the same id

            page.get_by_label("Valid for (days)").fill("30")
            page.get_by_role("button", name="Issue a token").click()
            token = page.locator("#new-token").input_value()
            assert aviso.roster.by_token(token).id == member.id
            assert fits_the_phone(page)
            shot(page, "2-token-shown-once")
            page.goto(f"{server}/dashboard/staff/{member.id}")
            assert token not in page.content()
            page.get_by_role("button", name=re.compile("Revoke token")).click()
            expect(page.get_by_role("status")).to_contain_text("revoked")
            assert aviso.roster.by_token(token) is None

            page.get_by_role("navigation").get_by_role("link", name="Staff").click()
            page.get_by_label("CSV file", exact=True).set_input_files(str(bad))
            page.get_by_role("button", name="Import", exact=True).click()
            expect(page.get_by_role("alert")).to_contain_text("Nobody was added")
            expect(page.locator(".problems")).to_contain_text("Line 3:")
            assert aviso.roster.by_phone("+13105550140") is None and fits_the_phone(page)
            shot(page, "3-import-refused")
            page.get_by_label("CSV file", exact=True).set_input_files(str(good))
            page.get_by_role("button", name="Import", exact=True).click()
            expect(page.get_by_role("status")).to_have_text("2 people added to the roster.")
            expect(page.get_by_role("link", name="Mr. Park")).to_be_visible()

            page.get_by_role("link", name="Ms. Ortiz").click()
            page.get_by_role("button", name="Remove Ms. Ortiz").click()
            expect(page.get_by_role("status")).to_have_text("Ms. Ortiz is off the roster.")
            assert aviso.roster.by_phone("+13105550140") is None and fits_the_phone(page)
            shot(page, "4-removed")
        finally:
            browser.close()
