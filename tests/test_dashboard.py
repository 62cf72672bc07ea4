"""The staff dashboard through Flask's test client: sign-in with a code by SMS, sessions, CSRF, the
two-person rule, schools, roles, privacy, both languages — real Redis, real RQ worker, the outbox."""

from __future__ import annotations

import re
import time
from datetime import date, datetime, timedelta

import pytest

from bot.broadcasts.outcomes import OutcomeStore
from bot.broadcasts.store import CANCELLED, DONE, DRAFT, PENDING_APPROVAL, SCHEDULED
from bot.people import signin
from bot.people.identity import parse_address
from bot.store import keys, queues
from bot.web.dashboard import auth as dashboard_auth
from bot.web.dashboard.views import receipts_open

from .conftest import ForkingJobRunner, JobRunner
from .test_broadcasts import subscribe
from .test_privacy import dump, number_forms

SENDER, APPROVER, VENICE, ADMIN, STRANGER = "+13105550101", "+13105550102", "+13105550103", "+13105550104", \
    "+13105550199"
FAMILIES = {"+12135550111": "en", "+12135550112": "es", "+12135550113": "es", "+12135550114": "ko"}
ACTIVITY = {"schools": "BELMONT", "kind": "verified", "verified_by": "LAUSD School Police", "source": "template",
            "template": "activity_verified", "var.location": "3rd & Loma", "var.time": "7:45 am", "when": "now"}
ROUTE = {"schools": "BELMONT", "kind": "update", "source": "template", "template": "route_change",
         "var.date": "2026-12-03", "var.route.en": "exit by the 3rd St gate",
         "var.route.es": "salgan por la puerta de 3rd St", "var.route.ko": "3rd St 문으로 나가세요", "when": "now"}


FIX = {"var.correction.en": "The gate is on 4th St.", "var.correction.es": "La puerta está en 4th St.",
       "var.correction.ko": "문은 4th St에 있습니다."}


@pytest.fixture
def settings(settings):
    """No quiet hours: broadcasts go out when approved."""
    return settings.with_overrides(quiet_hours=None)


@pytest.fixture
def staff(aviso):
    """A sender and an approver at Belmont, a sender at Venice, an admin."""
    known = set(aviso.active_content().schools.by_code)
    add = aviso.roster.add
    return {"sender": add(SENDER, "Ms. Rivera", "sender", ["BELMONT"], known),
            "approver": add(APPROVER, "Principal Kim", "approver", ["BELMONT"], known),
            "venice": add(VENICE, "Mr. Novak", "sender", ["VENICE"], known),
            "admin": add(ADMIN, "District Admin", "admin", ["BELMONT"], known)}


@pytest.fixture
def families(aviso):
    """Four families following Belmont (English, Spanish twice, Korean), one at Venice."""
    for number, lang in FAMILIES.items():
        subscribe(aviso, number, school="BELMONT", lang=lang)
    subscribe(aviso, "+12135550115", school="VENICE", lang="es")
    return FAMILIES


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


def token(client, path: str = "/dashboard/login") -> str:
    """The CSRF token from a dashboard page's form."""
    return csrf_of(client.get(path).data)


def codes(aviso, number: str) -> list[str]:
    """Sign-in codes texted to a number (the outbox), oldest first."""
    found = [re.search(r"\b(\d{6})\b", m["body"]) for m in aviso.sender.messages_for(parse_address(number))]
    return [m.group(1) for m in found if m]


def run_jobs(client, aviso) -> None:
    """Run the queued jobs (the sign-in code is texted by one, after the answer) in this process."""
    with client.application.app_context():
        JobRunner(list(queues.ALL), connection=aviso.connection).work(burst=True, logging_level="WARNING")


def ask_code(client, aviso, number: str, wait: bool = True, typed: str | None = None):
    """Post a number (as typed); run the job that texts its code and return the code."""
    before = len(codes(aviso, number))
    response = client.post("/dashboard/login", data={"phone": typed or number, "csrf_token": token(client)})
    if not wait:
        return response, None
    run_jobs(client, aviso)
    assert len(codes(aviso, number)) > before, "no code arrived"
    return response, codes(aviso, number)[-1]


def enter_code(client, code: str):
    return client.post("/dashboard/login/code",
                       data={"code": code, "csrf_token": token(client, "/dashboard/login/code")})


def sign_in(client, aviso, number: str):
    _, code = ask_code(client, aviso, number)
    response = enter_code(client, code)
    assert response.status_code == 302 and response.location.endswith("/dashboard/"), response.data
    return client


@pytest.fixture
def make_client(app):
    return app.test_client


def work(app, aviso):
    with app.app_context():
        ForkingJobRunner(list(queues.ALL), connection=aviso.connection).work(burst=True)


def post(client, path: str, data: dict | None = None, page: str = "/dashboard/"):
    return client.post(path, data={**(data or {}), "csrf_token": token(client, page)})


def create(client, form: dict):
    """Send the compose form, and confirm when it asks ("Send to N families?") before an update goes out."""
    response = post(client, "/dashboard/broadcasts/new", {**form, "action": "send"}, "/dashboard/broadcasts/new")
    if response.status_code == 200 and 'id="confirm"' in response.text:
        response = post(client, "/dashboard/broadcasts/new", {**form, "action": "send", "confirmed": "1"},
                        "/dashboard/broadcasts/new")
    assert response.status_code == 302, response.data
    return response.location.rsplit("/", 1)[-1]


# ---- sign-in -----------------------------------------------------------------------------------------------

def test_signed_out_pages_send_you_to_sign_in(client):
    for path in ("/dashboard/", "/dashboard/broadcasts/new", "/dashboard/audit", "/dashboard/queues"):
        response = client.get(path)
        assert response.status_code == 302 and response.location.endswith("/dashboard/login")
    assert client.get("/dashboard/broadcasts/0123456789abcdef/progress.json").status_code == 401


def test_a_rostered_number_gets_a_code_and_signs_in(client, aviso, staff):
    response, code = ask_code(client, aviso, SENDER, typed="(310) 555-0101")  # typed the way people type it
    assert response.status_code == 302 and response.location.endswith("/dashboard/login/code")
    assert "If this number is on the staff roster" in client.get("/dashboard/login/code").text
    assert enter_code(client, code).status_code == 302
    home = client.get("/dashboard/")
    assert home.status_code == 200 and "Ms. Rivera" in home.text
    entries = [(e.actor, e.action) for e in aviso.audit.recent(5)]
    assert ("Ms. Rivera (" + staff["sender"].id + ")", "signed in") in entries


def test_the_login_page_says_nothing_about_who_is_on_the_roster(make_client, aviso, staff):
    pages = []
    for number in (SENDER, STRANGER):
        client = make_client()
        response = client.post("/dashboard/login", data={"phone": number, "csrf_token": token(client)})
        follow = client.get(response.location)
        pages.append((response.status_code, response.location, re.sub(r'(value|content)="[^"]+"', "", follow.text)))
        run_jobs(client, aviso)
    assert pages[0] == pages[1]
    assert codes(aviso, STRANGER) == []


def test_a_wrong_code_is_refused(client, aviso, staff):
    _, code = ask_code(client, aviso, SENDER)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = enter_code(client, wrong)
    assert response.status_code == 400 and "wrong or has expired" in response.text
    assert client.get("/dashboard/").status_code == 302


def test_an_expired_code_is_refused(client, aviso, staff, monkeypatch):
    _, code = ask_code(client, aviso, SENDER)
    later = time.time() + signin.CODE_TTL_SECONDS + 1
    monkeypatch.setattr(dashboard_auth, "clock", lambda: later)
    assert enter_code(client, code).status_code == 400
    assert client.get("/dashboard/").status_code == 302


def test_a_code_works_once(make_client, aviso, staff):
    first = make_client()
    _, code = ask_code(first, aviso, SENDER)
    assert enter_code(first, code).status_code == 302
    second = make_client()  # someone who saw the code tries it too, after it was used
    second.post("/dashboard/login", data={"phone": SENDER, "csrf_token": token(second)})
    assert enter_code(second, code).status_code == 400
    assert second.get("/dashboard/").status_code == 302


def test_a_new_code_replaces_the_old_one(client, aviso, staff):
    _, old = ask_code(client, aviso, SENDER)
    _, new = ask_code(client, aviso, SENDER)
    if old != new:
        assert enter_code(client, old).status_code == 400
    assert enter_code(client, new).status_code == 302


def test_a_code_dies_after_three_wrong_tries(make_client, aviso, staff):
    client = make_client()
    _, code = ask_code(client, aviso, SENDER)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(signin.TRIES_PER_CODE - 1):
        assert "wrong or has expired" in enter_code(client, wrong).text
    assert "too many wrong tries" in enter_code(client, wrong).text
    response = enter_code(client, code)  # the right code, too late
    assert response.status_code == 400
    assert client.get("/dashboard/").status_code == 302
    _, fresh = ask_code(client, aviso, SENDER)  # a new code is not held back by the dead one
    assert enter_code(client, fresh).status_code == 302


def test_code_requests_back_off_per_number_and_are_limited_per_address(make_client, aviso, staff):
    client = make_client()
    for _ in range(signin.FREE_CODES):
        assert ask_code(client, aviso, STRANGER, wait=False)[0].status_code == 302
    spaced = ask_code(client, aviso, STRANGER, wait=False)[0]
    assert spaced.status_code == 429 and "next one can go in 1 min" in spaced.text
    other = make_client()  # other numbers from the same address, until the address's limit
    remaining = dashboard_auth.LIMITS["codes-address"] - signin.FREE_CODES - 1
    for n in range(remaining):
        assert ask_code(other, aviso, f"+1310555{1000 + n}", wait=False)[0].status_code == 302
    assert ask_code(other, aviso, "+13105552000", wait=False)[0].status_code == 429


def test_redis_holds_no_staff_number_code_or_address(client, aviso, staff):
    _, code = ask_code(client, aviso, SENDER)
    enter_code(client, "000000")
    data = dump(aviso.connection)
    for form in number_forms(SENDER):
        assert form.encode() not in data
    # RQ records each worker's own connection (rq:worker:*, ip_address: 127.0.0.1:port on a TCP Redis such as
    # Debian's): the worker machine's address, not the browser's.
    for worker in aviso.connection.scan_iter("rq:worker:*"):
        data = data.replace(aviso.connection.hget(worker, "ip_address") or b"\0", b"")
    assert b"127.0.0.1" not in data
    assert f":{code}".encode() not in data and f'"{code}"'.encode() not in data
    for key in aviso.connection.scan_iter(keys.PREFIX + ":dash:*"):
        assert code.encode() not in key


def test_the_client_address_comes_from_trusted_proxies_only(app):
    forwarded = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
    with app.test_request_context("/", headers=forwarded, environ_base={"REMOTE_ADDR": "10.0.0.1"}):
        assert dashboard_auth.client_address(0) == "10.0.0.1"  # a spoofed header changes nothing
        assert dashboard_auth.client_address(1) == "198.51.100.7"
        assert dashboard_auth.client_address(2) == "203.0.113.9"
        assert dashboard_auth.client_address(3) == "10.0.0.1"


# ---- sessions and CSRF -------------------------------------------------------------------------------------

def test_the_session_cookie_is_secure_httponly_lax_and_expires(client, aviso, staff):
    _, code = ask_code(client, aviso, SENDER)
    response = enter_code(client, code)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("__Host-aviso="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert "Path=/" in cookie and "Domain" not in cookie


def test_signing_out_or_leaving_the_roster_ends_the_session(make_client, aviso, staff):
    client = sign_in(make_client(), aviso, SENDER)
    assert post(client, "/dashboard/logout").status_code == 302
    assert client.get("/dashboard/").status_code == 302
    other = sign_in(make_client(), aviso, APPROVER)
    assert other.get("/dashboard/").status_code == 200
    aviso.roster.remove(staff["approver"].id)
    assert other.get("/dashboard/").status_code == 302
    assert not list(aviso.connection.scan_iter(keys.PREFIX + ":dash:session:*"))


def test_every_post_needs_the_csrf_token(make_client, aviso, staff, families):
    anonymous = make_client()
    anonymous.get("/dashboard/login")
    assert anonymous.post("/dashboard/login", data={"phone": SENDER}).status_code == 400
    time.sleep(0.2)
    assert codes(aviso, SENDER) == []
    client = sign_in(make_client(), aviso, SENDER)
    assert client.post("/dashboard/broadcasts/new", data={**ROUTE, "action": "send"}).status_code == 400
    assert client.post("/dashboard/broadcasts/new", data={**ROUTE, "action": "send", "csrf_token": "forged"}
                       ).status_code == 400
    assert client.post("/dashboard/broadcasts/preview.json", data=ROUTE).status_code == 400
    assert client.post("/dashboard/logout").status_code == 400
    assert aviso.broadcasts.list_recent(5) == []
    good = client.post("/dashboard/broadcasts/preview.json", data=ROUTE,
                       headers={"X-CSRF-Token": token(client, "/dashboard/")})
    assert good.status_code == 200


def test_a_token_from_before_sign_in_does_not_work_after(client, aviso, staff):
    before = token(client)
    sign_in(client, aviso, SENDER)
    assert client.post("/dashboard/logout", data={"csrf_token": before}).status_code == 400


# ---- broadcasts: preview, two-person rule, schools ---------------------------------------------------------

def test_live_preview_shows_texts_segments_and_recipients_per_language(client, aviso, staff, families):
    sign_in(client, aviso, SENDER)
    response = client.post("/dashboard/broadcasts/preview.json", data=ACTIVITY,
                           headers={"X-CSRF-Token": token(client, "/dashboard/")})
    data = response.get_json()
    assert response.status_code == 200 and data["plan"]["recipients"] == 4
    by_language = {row["language"]: row for row in data["plan"]["languages"]}
    assert by_language["es"]["sms"] == 2 and by_language["es"]["sms_encoding"] == "GSM-7"
    assert by_language["ko"]["sms_encoding"] == "UCS-2"
    assert "LAUSD School Police" in data["texts"]["en"] and "4 recipients" in data["html"]
    without_javascript = post(client, "/dashboard/broadcasts/new", {**ACTIVITY, "action": "preview"})
    assert without_javascript.status_code == 200 and "4 recipients" in without_javascript.text
    assert aviso.broadcasts.list_recent(5) == []


def test_missing_translation_needs_an_explicit_fallback(client, aviso, staff, families):
    sign_in(client, aviso, SENDER)
    custom = {"schools": "BELMONT", "kind": "update", "source": "custom", "text.en": "Gate B is closed today.",
              "text.es": "La puerta B está cerrada hoy.", "when": "now"}
    refused = post(client, "/dashboard/broadcasts/new", {**custom, "action": "send"})
    assert refused.status_code == 422 and "No text for 한국어" in refused.text
    assert aviso.broadcasts.list_recent(5) == []
    create(client, {**custom, "fallback_language": "en"})
    assert aviso.broadcasts.list_recent(5)[0].fallback_language == "en"


def test_a_sender_cannot_approve_their_own_broadcast(make_client, app, aviso, staff, families):
    sender = sign_in(make_client(), aviso, SENDER)
    broadcast_id = create(sender, ACTIVITY)
    assert aviso.broadcasts.get(broadcast_id).status == PENDING_APPROVAL
    page = sender.get(f"/dashboard/broadcasts/{broadcast_id}").text
    assert "Approve and send" not in page and "waits for a second staff member" in page
    response = post(sender, f"/dashboard/broadcasts/{broadcast_id}/approve")
    assert response.status_code == 403 and "not the person who wrote it" in response.text
    assert aviso.broadcasts.get(broadcast_id).status == PENDING_APPROVAL


def test_a_second_staff_member_approves_and_it_goes_out(make_client, app, aviso, staff, families):
    sender = sign_in(make_client(), aviso, SENDER)
    broadcast_id = create(sender, ACTIVITY)
    approver = sign_in(make_client(), aviso, APPROVER)
    assert "Waiting for your approval (1)" in approver.get("/dashboard/").text
    review = approver.get(f"/dashboard/broadcasts/{broadcast_id}").text
    assert "Approve and send" in review and "4 recipients" in review and "LAUSD School Police" in review
    assert post(approver, f"/dashboard/broadcasts/{broadcast_id}/approve").status_code == 302
    work(app, aviso)
    progress = sender.get(f"/dashboard/broadcasts/{broadcast_id}/progress.json").get_json()
    assert progress["status"] == DONE and progress["outcomes"]["sent"] == 4 and progress["terminal"]
    assert progress["snapshots"][-1][1] == 4
    page = sender.get(f"/dashboard/broadcasts/{broadcast_id}").text
    assert "Send a correction" in page and "Cancel this broadcast" not in page
    assert f"corrects={broadcast_id}" in page


def test_a_finished_broadcast_keeps_counting_delivery_receipts_for_half_an_hour(
        make_client, app, aviso, staff, families):
    sender = sign_in(make_client(), aviso, SENDER)
    broadcast_id = create(sender, ACTIVITY)
    approver = sign_in(make_client(), aviso, APPROVER)
    assert post(approver, f"/dashboard/broadcasts/{broadcast_id}/approve").status_code == 302
    work(app, aviso)
    assert 'data-receipts="true"' in sender.get(f"/dashboard/broadcasts/{broadcast_id}").text
    sid = aviso.connection.hkeys(keys.BROADCAST_SIDS.format(id=broadcast_id))[0]
    OutcomeStore(aviso.connection).record_status(broadcast_id, sid.decode(), "delivered")
    progress = sender.get(f"/dashboard/broadcasts/{broadcast_id}/progress.json").get_json()
    assert progress["receipts_open"] and progress["outcomes"]["delivered"] == 1
    finished = aviso.broadcasts.get(broadcast_id)
    assert receipts_open(finished, now=finished.finished_at + timedelta(minutes=29))
    assert not receipts_open(finished, now=finished.finished_at + timedelta(minutes=31))


def test_a_rejection_reaches_the_sender_with_its_reason(make_client, aviso, staff, families):
    sender = sign_in(make_client(), aviso, SENDER)
    broadcast_id = create(sender, ACTIVITY)
    approver = sign_in(make_client(), aviso, APPROVER)
    assert post(approver, f"/dashboard/broadcasts/{broadcast_id}/reject", {"reason": ""}).status_code == 400
    assert post(approver, f"/dashboard/broadcasts/{broadcast_id}/reject",
                {"reason": "Not confirmed by school police yet"}).status_code == 302
    assert aviso.broadcasts.get(broadcast_id).status == DRAFT
    home = sender.get("/dashboard/").text
    assert "Sent back to you" in home and "Sent back by Principal Kim" in home
    page = sender.get(f"/dashboard/broadcasts/{broadcast_id}").text
    assert "Not confirmed by school police yet" in page and "Write it again" in page
    again = sender.get("/dashboard/broadcasts/new?kind=verified&schools=BELMONT&verified_by=LAUSD+School+Police").text
    assert 'value="LAUSD School Police"' in again


def test_staff_cannot_send_to_a_school_not_theirs(client, aviso, staff, families):
    sign_in(client, aviso, VENICE)
    form = client.get("/dashboard/broadcasts/new").text
    assert 'value="VENICE"' in form and 'value="BELMONT"' not in form
    response = post(client, "/dashboard/broadcasts/new", {**ROUTE, "action": "send"})
    assert response.status_code == 403 and "You may not send to BELMONT" in response.text
    assert aviso.broadcasts.list_recent(5) == []
    preview = client.post("/dashboard/broadcasts/preview.json", data=ROUTE,
                          headers={"X-CSRF-Token": token(client, "/dashboard/")})
    assert preview.status_code == 403


def test_staff_cannot_see_or_act_on_another_schools_broadcast(make_client, aviso, staff, families):
    sender = sign_in(make_client(), aviso, SENDER)
    broadcast_id = create(sender, ACTIVITY)
    venice = sign_in(make_client(), aviso, VENICE)
    assert venice.get(f"/dashboard/broadcasts/{broadcast_id}").status_code == 403
    assert venice.get(f"/dashboard/broadcasts/{broadcast_id}/progress.json").status_code == 403
    assert post(venice, f"/dashboard/broadcasts/{broadcast_id}/cancel").status_code == 403
    assert broadcast_id not in venice.get("/dashboard/approvals").text
    assert aviso.broadcasts.get(broadcast_id).status == PENDING_APPROVAL


@pytest.mark.parametrize("workshop", ["kyr-belmont", "kyr-online"])
def test_a_workshop_broadcast_stored_without_schools_is_not_shown_to_another_schools_staff(
        make_client, aviso, staff, families, workshop):
    from .test_broadcasts import make_broadcast

    broadcast = aviso.broadcasts.create(make_broadcast(schools=(), workshop=workshop))  # as stored before
    venice = sign_in(make_client(), aviso, VENICE)
    assert venice.get(f"/dashboard/broadcasts/{broadcast.id}").status_code == 403
    assert broadcast.id not in venice.get("/dashboard/").text
    admin = sign_in(make_client(), aviso, ADMIN)
    assert admin.get(f"/dashboard/broadcasts/{broadcast.id}").status_code == 200
    assert broadcast.id in admin.get("/dashboard/").text  # the list does show it, to whom it belongs


def test_schedule_for_later_in_local_time(client, aviso, staff, families, settings):
    sign_in(client, aviso, SENDER)
    later = (datetime.now(settings.timezone) + timedelta(days=3)).replace(hour=7, minute=30, second=0, microsecond=0)
    form = {**ROUTE, "when": "later", "send_at": later.strftime("%Y-%m-%dT%H:%M"), "urgent": "1"}
    broadcast_id = create(client, form)
    broadcast = aviso.broadcasts.get(broadcast_id)
    assert broadcast.status == SCHEDULED and broadcast.scheduled_for == later and broadcast.urgent
    assert "Scheduled" in client.get(f"/dashboard/broadcasts/{broadcast_id}").text


def test_a_send_time_that_has_passed_is_refused_in_the_staff_members_words(client, aviso, staff, families, settings):
    sign_in(client, aviso, SENDER)
    earlier = datetime.now(settings.timezone) - timedelta(hours=2)
    form = {**ROUTE, "when": "later", "send_at": earlier.strftime("%Y-%m-%dT%H:%M"), "urgent": "1"}
    page = post(client, "/dashboard/broadcasts/new", {**form, "action": "send"}, "/dashboard/broadcasts/new")
    assert page.status_code == 400 and "That time has passed. Choose a later one, or send it now." in page.text
    assert aviso.broadcasts.list_recent(5) == []


def test_cancel_and_correction(make_client, app, aviso, staff, families):
    sender = sign_in(make_client(), aviso, SENDER)
    first = create(sender, ROUTE)
    work(app, aviso)
    form = sender.get(f"/dashboard/broadcasts/new?kind=correction&corrects={first}").text
    assert 'name="corrects" value="' + first in form
    correction = create(sender, {"kind": "correction", "corrects": first, "schools": "BELMONT", "source": "template",
                                 "template": "correction", **FIX})
    assert aviso.broadcasts.get(correction).corrects == first
    assert post(sender, f"/dashboard/broadcasts/{correction}/cancel").status_code == 302
    assert aviso.broadcasts.get(correction).status == CANCELLED


# ---- pages, roles, privacy, languages -----------------------------------------------------------------------

def test_home_counts_subscribers_per_language_and_never_shows_a_number(client, aviso, staff, families):
    sign_in(client, aviso, SENDER)
    home = client.get("/dashboard/").text
    assert "4 subscribers" in home and "Español" in home
    for number in [*FAMILIES, SENDER]:
        for form in number_forms(number):
            assert form not in home


def test_admin_pages_are_for_admins(make_client, aviso, staff):
    sender = sign_in(make_client(), aviso, SENDER)
    assert sender.get("/dashboard/queues").status_code == 403
    assert post(sender, "/dashboard/content/rollback").status_code == 403
    assert post(sender, "/dashboard/content/publish").status_code == 403
    assert "Publish the content folder" not in sender.get("/dashboard/content").text
    admin = sign_in(make_client(), aviso, ADMIN)
    queues_page = admin.get("/dashboard/queues")
    assert queues_page.status_code == 200 and "urgent" in queues_page.text


def test_admin_publishes_and_rolls_back_and_the_audit_log_says_so(client, aviso, staff):
    sign_in(client, aviso, ADMIN)
    page = client.get("/dashboard/content").text
    assert "Live version" in page and "Draft: no fluent reviewer" in page
    assert post(client, "/dashboard/content/publish", page="/dashboard/content").status_code == 302
    assert post(client, "/dashboard/content/rollback", page="/dashboard/content").status_code == 409  # one version
    audit = client.get("/dashboard/audit").text
    assert "District Admin" in audit and "published" in audit and "content version" in audit
    assert "signed in to the" in audit and "dashboard" in audit


def test_audit_log_shows_who_did_what_without_phone_numbers(make_client, aviso, staff, families):
    sender = sign_in(make_client(), aviso, SENDER)
    broadcast_id = create(sender, ACTIVITY)
    approver = sign_in(make_client(), aviso, APPROVER)
    post(approver, f"/dashboard/broadcasts/{broadcast_id}/reject", {"reason": "Call me first at 310-555-0102"})
    audit = approver.get("/dashboard/audit").text
    assert "Ms. Rivera" in audit and "created" in audit and "sent back" in audit
    assert "555-0102" not in audit and "Call me first at •••" in audit


def test_workshops_show_registration_counts(client, aviso, staff):
    sign_in(client, aviso, ADMIN)
    page = client.get("/dashboard/workshops")
    assert page.status_code == 200 and "Know Your Rights" in page.text and "0 of 60" in page.text


def test_every_page_in_spanish(client, aviso, staff, families):
    sign_in(client, aviso, ADMIN)
    assert post(client, "/dashboard/language", {"lang": "es", "next": "/dashboard/audit"}).location.endswith(
        "/dashboard/audit")
    for path, words in (("/dashboard/", "Mis escuelas"), ("/dashboard/broadcasts/new", "Vista previa"),
                        ("/dashboard/approvals", "Aprobaciones"), ("/dashboard/workshops", "Talleres"),
                        ("/dashboard/content", "Versión activa"), ("/dashboard/audit", "Registro"),
                        ("/dashboard/queues", "Colas"), ("/dashboard/broadcasts", "Historial")):
        page = client.get(path)
        assert page.status_code == 200 and words in page.text and '<html lang="es">' in page.text, path


def test_language_follows_the_browser_until_chosen(make_client):
    client = make_client()
    assert "Acceso del personal" in client.get("/dashboard/login", headers={"Accept-Language": "es-MX,es"}).text
    assert "Staff sign-in" in client.get("/dashboard/login", headers={"Accept-Language": "en-US"}).text


def test_open_redirects_are_refused(client, aviso, staff):
    sign_in(client, aviso, SENDER)
    response = post(client, "/dashboard/language", {"lang": "es", "next": "https://evil.example/"})
    assert response.location.endswith("/dashboard/")


def test_pages_forbid_framing_and_foreign_scripts(client):
    response = client.get("/dashboard/login")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"


def test_the_original_alerts_page_links_to_its_correction(make_client, app, aviso, staff, families):
    sender = sign_in(make_client(), aviso, SENDER)
    first = create(sender, ROUTE)
    work(app, aviso)
    correction = create(sender, {"kind": "correction", "corrects": first, "schools": "BELMONT", "source": "template",
                                 "template": "correction", **FIX})
    approver = sign_in(make_client(), aviso, APPROVER)
    assert post(approver, f"/dashboard/broadcasts/{correction}/approve").status_code == 302
    work(app, aviso)
    original, fixed = aviso.broadcasts.get(first), aviso.broadcasts.get(correction)
    assert original.code in fixed.texts["en"].split("\n")[0]  # the correction names the code it corrects
    page = sender.get(f"/dashboard/broadcasts/{first}").text
    assert "Corrected by" in page
    assert f'href="/dashboard/broadcasts/{correction}">{fixed.code}</a>' in page


def test_the_content_page_shows_which_languages_are_reviewed_and_whether_drafts_are_served(client, aviso, staff,
                                                                                            tmp_path):
    import shutil

    from bot.content.model import Content
    from bot.publishing import check as content_check
    from bot.publishing import reviews

    copy = tmp_path / "content"
    shutil.copytree(aviso.settings.content_dir, copy)
    reviews.record(copy, Content.from_dir(copy), "es", "María Pérez", date(2026, 12, 4))
    content_check.bump(copy, date(2026, 12, 4))
    aviso.content.publish(Content.from_dir(copy), by="test")
    sign_in(client, aviso, ADMIN)
    page = client.get("/dashboard/content").text
    assert "reviewed by María Pérez on 2026-12-04" in page
    assert page.count("Draft: no fluent reviewer") == 9
    assert "Draft languages are served to families as they are" in page
