"""The staff dashboard in Debian's chromium on a phone-sized screen, against the real app (werkzeug in a
thread), real Redis, a real `aviso worker` process and the fake Twilio: sign in with the texted code,
compose with the live preview, approve as a second staff member (in Spanish), watch it fan out to done.
Screenshots of each step: test-artifacts/dashboard-*.png."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from werkzeug.serving import make_server

from bot.twilio.fake import FakeTwilio

from .conftest import ACCOUNT_SID, AUTH_TOKEN, ROOT
from .test_broadcasts import subscribe
from .test_running_app import ARTIFACTS, CHROMIUM, free_port

SERVICE_SID = "MG" + "d" * 32
WHATSAPP_FROM = "whatsapp:+12135550198"
SENDER, APPROVER = "+13105550101", "+13105550102"
PHONE = {"width": 360, "height": 740}
SEGMENTS_PER_SECOND = 8  # slow enough to watch the progress move for a few seconds
INVALID = "+12135550160"  # the fake answers 21211 for it
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]


@pytest.fixture
def port():
    return free_port()


@pytest.fixture
def fake():
    """The fake Twilio, posting signed status callbacks back to the app."""
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, messaging_services=[SERVICE_SID],
                    status_callbacks=True, latency_ms=30, recipient_errors={INVALID: 21211}) as server:
        yield server


@pytest.fixture
def settings(settings, fake, port):
    """Sending through the fake Twilio; the app is reachable at PUBLIC_BASE_URL (plain http: development)."""
    return settings.with_overrides(
        twilio_account_sid=ACCOUNT_SID, twilio_messaging_service_sid=SERVICE_SID, twilio_whatsapp_from=WHATSAPP_FROM,
        twilio_api_base_url=fake.url, public_base_url=f"http://127.0.0.1:{port}", quiet_hours=None)


@pytest.fixture
def server(app, port):
    """The real app, served over HTTP from a thread."""
    http = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, name="dashboard-app", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    http.shutdown()
    thread.join(10)


@pytest.fixture
def worker(app, cli_env, tmp_path):
    """`aviso worker` (RQ worker with its scheduler) as its own process, on the same Redis and keys."""
    env = {**cli_env, "AVISO_QUIET_HOURS": "off", "TWILIO_WHATSAPP_FROM": WHATSAPP_FROM,
           "AVISO_RATE_LIMIT_SEGMENTS_PER_SECOND": str(SEGMENTS_PER_SECOND), "PATH": "/usr/bin:/bin"}
    log = open(tmp_path / "worker.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


@pytest.fixture
def belmont(aviso):
    """Belmont's families: Spanish and English by SMS, Korean, WhatsApp in and out of its 24 h window, one
    number the carrier refuses. Staff: a sender and an approver."""
    known = set(aviso.active_content().schools.by_code)
    aviso.roster.add(SENDER, "Ms. Rivera", "sender", ["BELMONT"], known)
    aviso.roster.add(APPROVER, "Principal Kim", "approver", ["BELMONT"], known)
    numbers = {}
    for n in range(14):
        numbers[f"+1213555{2000 + n}"] = subscribe(aviso, f"+1213555{2000 + n}", school="BELMONT", lang="es")
    for n in range(6):
        numbers[f"+1213555{2100 + n}"] = subscribe(aviso, f"+1213555{2100 + n}", school="BELMONT", lang="en")
    for n in range(2):
        numbers[f"+1213555{2200 + n}"] = subscribe(aviso, f"+1213555{2200 + n}", school="BELMONT", lang="ko")
    subscribe(aviso, "+12135552300", school="BELMONT", lang="es", channel="whatsapp", wa_seen=int(time.time()))
    subscribe(aviso, "+12135552301", school="BELMONT", lang="es", channel="whatsapp")  # window closed
    subscribe(aviso, INVALID, school="BELMONT", lang="en")
    return numbers


def code_for(fake, number: str, seconds: float = 15) -> str:
    """The newest sign-in code the fake Twilio accepted for a staff number."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [re.search(r": (\d{6})\.", m["body"]) for m in fake.messages() if m["to"] == number]
        found = [match for match in found if match]  # staff get other texts too (approval notices)
        if found:
            return found[-1].group(1)
        time.sleep(0.1)
    raise AssertionError(f"no sign-in code reached {number}")


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def fits_the_phone(page) -> bool:
    """Nothing wider than the screen (no sideways scrolling on a 360 px phone)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def sign_in(page, base: str, fake, number: str, labels: dict[str, str], name: str | None = None) -> None:
    page.goto(base + "/dashboard/")
    page.get_by_label(labels["phone"]).fill(number.removeprefix("+1"))  # typed without the country code
    if name:
        shot(page, f"{name}-number")
    page.get_by_role("button", name=labels["send"]).click()
    page.get_by_label(labels["code"]).fill(code_for(fake, number))
    if name:
        shot(page, f"{name}-code")
    page.get_by_role("button", name=labels["sign_in"]).click()


@pytest.mark.browser
def test_sign_in_compose_approve_and_watch_it_go_out(server, worker, fake, belmont, aviso):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            # Ms. Rivera, in English, on her phone.
            sender = browser.new_context(viewport=PHONE, locale="en-US").new_page()
            sign_in(sender, server, fake, SENDER, {"phone": "Your phone number", "send": "Text me a code",
                                                   "code": "Code from the text message", "sign_in": "Sign in"},
                    name="1-sign-in")
            expect(sender.get_by_role("heading", name="Home", exact=True)).to_be_visible()
            expect(sender.get_by_text("25 subscribers")).to_be_visible()
            assert fits_the_phone(sender)
            shot(sender, "2-home")

            sender.get_by_role("navigation").get_by_role("link", name="New broadcast").click()
            sender.get_by_label("Verified alert").check()
            sender.get_by_label("Verified by").fill("LAUSD School Police")
            sender.get_by_label("Template", exact=True).select_option("activity_verified")
            sender.get_by_label("Location").fill("3rd & Loma")
            sender.get_by_label("Time", exact=True).fill("07:45")
            preview = sender.locator("#preview-body")
            expect(preview).to_contain_text("25 recipients")
            expect(preview).to_contain_text("Español")
            expect(preview).to_contain_text("UCS-2, 3 SMS segments each")  # Korean
            expect(preview).to_contain_text("1 on WhatsApp cannot be reached")
            expect(preview).to_contain_text("LAUSD School Police")
            assert fits_the_phone(sender)
            shot(sender, "3-compose-preview")
            sender.get_by_role("button", name="Send", exact=True).click()
            expect(sender.locator("p.state")).to_have_text("Waiting for approval")
            shot(sender, "4-waiting-for-approval")

            # Principal Kim approves, on another phone, in Spanish.
            approver = browser.new_context(viewport=PHONE, locale="es-MX").new_page()
            sign_in(approver, server, fake, APPROVER, {"phone": "Su número de teléfono", "send": "Enviarme un código",
                                                       "code": "Código del mensaje de texto", "sign_in": "Entrar"})
            expect(approver.get_by_role("heading", name="Esperan su aprobación (1)")).to_be_visible()
            approver.get_by_role("navigation").get_by_role("link", name="Aprobaciones").click()
            approver.get_by_role("link", name=re.compile("Alerta verificada")).click()
            expect(approver.get_by_role("heading", name="Revise antes de que salga")).to_be_visible()
            expect(approver.locator(".plan")).to_contain_text("25 destinatarios")
            assert fits_the_phone(approver)
            shot(approver, "5-approve-in-spanish")
            approver.get_by_role("button", name="Aprobar y enviar").click()

            # It fans out: the counts move while it sends, then it is done.
            expect(approver.locator("#progress p.state")).to_have_text("Enviando", timeout=30_000)
            expect(approver.get_by_role("img", name=re.compile("Enviados"))).to_be_visible(timeout=10_000)
            expect(approver.locator("dl.counts .sent dd")).not_to_have_text("0", timeout=30_000)  # moving
            shot(approver, "6-sending")
            expect(approver.locator("#progress p.state")).to_have_text("Terminado", timeout=60_000)
            counts = approver.locator("dl.counts")
            expect(counts.locator(".sent dd")).to_have_text("23")
            expect(counts.locator(".failed dd")).to_have_text("1")
            expect(counts.locator(".skipped dd")).to_have_text("1")
            expect(approver.locator("ul.reasons")).to_contain_text("número no válido (21211)")
            expect(approver.locator("ul.reasons")).to_contain_text("ventana de 24 horas de WhatsApp cerrada")
            expect(counts.locator(".delivered dd")).to_have_text("23", timeout=20_000)  # status callbacks
            assert approver.locator(".chart polyline").count() == 4
            assert fits_the_phone(approver)
            shot(approver, "7-done")

            # The sender's page followed along without a reload by hand.
            expect(sender.locator("#progress p.state")).to_have_text("Done", timeout=20_000)
            expect(sender.get_by_role("link", name="Send a correction")).to_be_visible()
            shot(sender, "8-sender-sees-done")
            sender.set_viewport_size({"width": 1280, "height": 800})  # the same page on a desktop
            assert fits_the_phone(sender)
            shot(sender, "9-desktop")
        finally:
            browser.close()
    # Staff were told by SMS: the approver that it waited for her, the sender that it was approved.
    assert any("waits for your approval" in m["body"] for m in fake.messages() if m["to"] == APPROVER)
    assert any("Principal Kim approved your broadcast" in m["body"] for m in fake.messages() if m["to"] == SENDER)
    sent_to = [m["to"] for m in fake.messages() if m["to"] not in (SENDER, APPROVER)]
    assert sorted(n for n in sent_to if n in belmont) == sorted(belmont)
    assert len(sent_to) == len(set(sent_to)) == 23  # 22 by SMS and the WhatsApp family inside its window
