"""The roster without a shell on production: edit with the same id, expiring and revocable API tokens, an
all-or-nothing CSV import, the first admin by one command; and the dashboard's Staff pages (admins), its
audit log's details and the workshops' "Message the registrants" offer. Real Redis, the outbox sender."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from bot.cli.main import cli
from bot.people import roster_csv
from bot.people.audit import Entry
from bot.people.staff import StaffError
from bot.people.tokens import TokenError, token_hash
from bot.store import keys
from bot.web.dashboard.data import mask_numbers

from .test_dashboard import ADMIN, APPROVER, SENDER, VENICE, post, sign_in
from .test_dashboard import staff as staff  # noqa: F401, PLC0414  (the same four staff members)
from .test_privacy import dump

NOW = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
GOOD_CSV = ("name,phone,role,schools\n"
            "Ms. Ortiz,+13105550140,sender,BELMONT\n"
            "Mr. Park,+13105550141,approver,BELMONT;VENICE\n")


@pytest.fixture
def known(aviso):
    return set(aviso.active_content().schools.by_code)


# ---- the store ---------------------------------------------------------------------------------------------

def test_editing_schools_keeps_the_id_number_and_tokens(aviso, staff, known):
    member = staff["sender"]
    token = aviso.roster.issue_token(member.id)
    edited = aviso.roster.edit(member.id, "Ms. Rivera-Lopez", "approver", ["BELMONT", "VENICE"], known)
    assert edited.id == member.id and edited.schools == ("BELMONT", "VENICE") and edited.role == "approver"
    assert aviso.roster.by_phone(SENDER).id == member.id and aviso.roster.by_token(token).name == "Ms. Rivera-Lopez"
    with pytest.raises(StaffError, match="unknown school"):
        aviso.roster.edit(member.id, "X", "sender", ["HOGWARTS"], known)
    with pytest.raises(StaffError, match="at least one school"):
        aviso.roster.edit(member.id, "X", "sender", [], known)


def test_tokens_expire_are_listed_with_their_last_use_and_are_revoked_one_at_a_time(aviso, staff):
    member = staff["approver"]
    short = aviso.roster.issue_token(member.id, days=1, now=NOW)
    kept = aviso.roster.issue_token(member.id, now=NOW)
    assert aviso.roster.by_token(short, now=NOW + timedelta(hours=23)).id == member.id
    assert aviso.roster.by_token(short, now=NOW + timedelta(days=1)) is None  # expired
    listed = {info.id: info for info in aviso.roster.tokens.of(member.id)}
    assert set(listed) == {token_hash(short)[:12], token_hash(kept)[:12]}
    assert listed[token_hash(kept)[:12]].expires == NOW + timedelta(days=90)  # the default
    assert listed[token_hash(short)[:12]].last_used == NOW + timedelta(hours=23)
    assert aviso.roster.tokens.revoke(member.id, token_hash(short)[:12])
    assert aviso.roster.by_token(kept, now=NOW).id == member.id
    assert not aviso.roster.tokens.revoke(staff["sender"].id, token_hash(kept)[:12])  # not theirs
    for days in (0, 366):
        with pytest.raises(TokenError):
            aviso.roster.issue_token(member.id, days=days)
    stored = dump(aviso.connection)
    assert short.encode() not in stored and kept.encode() not in stored  # only their SHA-256


def test_a_token_from_before_expiry_keeps_working_until_revoked_and_removal_revokes_all(aviso, staff):
    member = staff["sender"]
    legacy = "legacy-token-issued-before-expiry"
    aviso.connection.hset(keys.STAFF_TOKENS, token_hash(legacy), member.id)  # as the previous release stored it
    assert aviso.roster.by_token(legacy).id == member.id
    [info] = aviso.roster.tokens.of(member.id)
    assert info.expires is None
    fresh = aviso.roster.issue_token(member.id)
    aviso.roster.remove(member.id)
    assert aviso.roster.by_token(legacy) is None and aviso.roster.by_token(fresh) is None
    assert aviso.connection.hlen(keys.STAFF_TOKENS) == 0


def test_csv_import_is_all_or_nothing_with_each_wrong_line_named(aviso, staff, known):
    bad = GOOD_CSV + ("No Phone,555,sender,BELMONT\n"
                      "Ms. Ortiz again,+13105550140,sender,BELMONT\n"
                      "Dr. Who,+13105550142,wizard,HOGWARTS\n"
                      f"Already,{SENDER},sender,BELMONT\n")
    with pytest.raises(roster_csv.ImportRefused) as refused:
        roster_csv.parse(bad, aviso.roster, known)
    lines = dict(refused.value.problems)
    assert sorted(lines) == [4, 5, 6, 7]
    assert "phone" in lines[4] and "line 2" in lines[5] and "role" in lines[6] and "HOGWARTS" in lines[6]
    assert "already on the roster" in lines[7]
    assert aviso.roster.by_phone("+13105550140") is None  # nobody from the file
    added = roster_csv.import_rows(aviso.roster, roster_csv.parse(GOOD_CSV, aviso.roster, known), known)
    assert [(m.name, m.schools) for m in added] == [("Ms. Ortiz", ("BELMONT",)), ("Mr. Park", ("BELMONT", "VENICE"))]
    with pytest.raises(roster_csv.ImportRefused, match="line 1"):
        roster_csv.parse("nombre,telefono\nA,+13105550150\n", aviso.roster, known)


# ---- the command line --------------------------------------------------------------------------------------

def test_the_first_admin_by_one_command_then_edit_tokens_and_revoke(runner, cli_env, aviso, tmp_path):
    def aviso_command(*args):
        return runner.invoke(cli, list(args), env=cli_env)

    first = aviso_command("staff", "bootstrap", "--phone", "+13105550160", "--name", "Dr. Alvarez")
    assert first.exit_code == 0, first.output
    admin = aviso.roster.by_phone("+13105550160")
    assert admin.role == "admin" and "/dashboard/login" in first.output
    again = aviso_command("staff", "bootstrap", "--phone", "+13105550161", "--name", "Someone Else")
    assert again.exit_code != 0 and "not empty" in again.output
    edited = aviso_command("staff", "edit", admin.id, "--schools", "belmont")
    assert edited.exit_code == 0 and aviso.roster.get(admin.id).schools == ("BELMONT",)
    token = aviso_command("staff", "token", admin.id, "--days", "30").output.strip()
    assert aviso.roster.by_token(token).id == admin.id
    assert aviso_command("staff", "token", admin.id, "--days", "400").exit_code != 0
    listing = aviso_command("staff", "tokens", admin.id).output
    token_id = token_hash(token)[:12]
    assert token_id in listing and token not in listing and "last used" in listing
    assert aviso_command("staff", "revoke", admin.id, token_id).exit_code == 0
    assert aviso.roster.by_token(token) is None
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text(GOOD_CSV + "Bad,+1,sender,BELMONT\n", encoding="utf-8")
    refused = aviso_command("staff", "import", str(roster_file))
    assert refused.exit_code != 0 and "line 4" in refused.output and "nobody was added" in refused.output
    roster_file.write_text(GOOD_CSV, encoding="utf-8")
    assert "added 2 staff member(s)" in aviso_command("staff", "import", str(roster_file)).output


# ---- the dashboard -----------------------------------------------------------------------------------------

def test_only_admins_see_and_use_the_staff_pages(client, aviso, staff):
    sign_in(client, aviso, APPROVER)
    assert client.get("/dashboard/staff").status_code == 403
    assert "/dashboard/staff" not in client.get("/dashboard/").text


def test_admin_adds_edits_with_the_same_id_and_removes_staff(client, aviso, staff):
    sign_in(client, aviso, ADMIN)
    listing = client.get("/dashboard/staff")
    assert listing.status_code == 200 and "Ms. Rivera" in listing.text
    assert not any(number.removeprefix("+1") in listing.text for number in (APPROVER, VENICE, ADMIN))
    refused = post(client, "/dashboard/staff", {"name": "Ms. Ortiz", "phone": "+13105550140", "role": "sender",
                                                "schools": "HOGWARTS"}, "/dashboard/staff")
    assert refused.status_code == 400 and "There is no school with the code HOGWARTS" in refused.text
    added = post(client, "/dashboard/staff", {"name": "Ms. Ortiz", "phone": "+13105550140", "role": "sender",
                                              "schools": "belmont"}, "/dashboard/staff")
    assert added.status_code == 302
    member = aviso.roster.by_phone("+13105550140")
    page = f"/dashboard/staff/{member.id}"
    moved = post(client, page, {"name": "Ms. Ortiz", "role": "approver", "schools": "BELMONT, VENICE"}, page)
    assert moved.status_code == 302 and moved.location.endswith(page)
    assert aviso.roster.get(member.id).schools == ("BELMONT", "VENICE")  # the same id, new schools
    admin_id = staff["admin"].id
    last = post(client, f"/dashboard/staff/{admin_id}", {"name": "District Admin", "role": "sender",
                                                         "schools": "BELMONT"}, page)
    assert last.status_code == 409 and aviso.roster.get(admin_id).role == "admin"
    assert post(client, f"/dashboard/staff/{admin_id}/remove", {}, page).status_code == 409
    assert post(client, f"{page}/remove", {}, page).status_code == 302 and aviso.roster.get(member.id) is None
    actions = [(e.action, e.subject) for e in aviso.audit.recent(10)]
    assert ("staff removed", member.id) in actions and ("staff edited", member.id) in actions
    sender = staff["sender"].id
    post(client, f"/dashboard/staff/{sender}/tokens", {"days": "7"}, f"/dashboard/staff/{sender}")
    audit = client.get("/dashboard/audit").text
    assert f'href="/dashboard/staff/{sender}">Ms. Rivera</a>' in audit and "valid for 7 days" in audit


def test_csv_upload_names_each_wrong_line_and_adds_nobody(client, aviso, staff):
    sign_in(client, aviso, ADMIN)

    def upload(text: str):
        from .test_dashboard import token
        return client.post("/dashboard/staff/import", content_type="multipart/form-data",
                           data={"csrf_token": token(client, "/dashboard/staff"),
                                 "file": (io.BytesIO(text.encode()), "roster.csv")})

    refused = upload(GOOD_CSV + "Dr. Who,+13105550142,wizard,BELMONT\n")
    assert refused.status_code == 400 and "Line 4: Choose a role: sender, approver or admin." in refused.text
    assert aviso.roster.by_phone("+13105550140") is None
    post(client, "/dashboard/language", {"lang": "es", "next": "/dashboard/staff"})
    spanish = upload(GOOD_CSV + "Dr. Who,+1310,sender,HOGWARTS\n").text
    assert "Línea 4: No hay ninguna escuela con el código HOGWARTS. Ese no es un número de celular." in spanish
    assert upload(GOOD_CSV).status_code == 302
    assert aviso.roster.by_phone("+13105550141").schools == ("BELMONT", "VENICE")


def test_a_token_is_shown_once_and_revoked_from_the_dashboard(client, aviso, staff):
    sign_in(client, aviso, ADMIN)
    page = f"/dashboard/staff/{staff['sender'].id}"
    assert post(client, f"{page}/tokens", {"days": "400"}, page).status_code == 400
    issued = post(client, f"{page}/tokens", {"days": "30"}, page)
    assert issued.status_code == 200 and issued.headers["Cache-Control"] == "no-store"
    token = issued.text.split('id="new-token" class="code" readonly value="', 1)[1].split('"', 1)[0]
    assert aviso.roster.by_token(token).id == staff["sender"].id
    shown = client.get(page).text
    assert token not in shown and token_hash(token)[:12] in shown and "last used" in shown  # by_token just now
    revoked = post(client, f"{page}/tokens/{token_hash(token)[:12]}/revoke", {}, page)
    assert revoked.status_code == 302 and aviso.roster.by_token(token) is None


def test_signing_in_and_switching_language_set_the_language_of_their_notices(client, aviso, staff):
    sign_in(client, aviso, SENDER)
    assert aviso.roster.get(staff["sender"].id).language == "en"
    post(client, "/dashboard/language", {"lang": "es", "next": "/dashboard/"})
    assert aviso.roster.get(staff["sender"].id).language == "es"


# ---- the audit log and the workshops' offer ------------------------------------------------------------------

@pytest.mark.parametrize(("text", "shown"), [
    ("2026-12-04T07:00-08:00", "2026-12-04T07:00-08:00"),
    ("call 310-555-0102 at 2026-12-04", "call ••• at 2026-12-04"),
    ("+1 (213) 555-0123", "•••"),
    ("2026-12-04 16:00:00+00:00 or 2135550123", "2026-12-04 16:00:00+00:00 or •••"),
])
def test_dates_are_not_masked_as_phone_numbers(text, shown):
    assert mask_numbers(text) == shown


def test_the_audit_log_shows_times_and_details_in_spanish(client, aviso, staff):
    from .test_dashboard import ACTIVITY, create
    sign_in(client, aviso, SENDER)
    create(client, ACTIVITY)
    aviso.audit.record("aviso", "scheduled", "0123456789abcdef", "2026-12-04T07:00-08:00", ("BELMONT",))
    post(client, "/dashboard/language", {"lang": "es", "next": "/dashboard/audit"})
    audit = client.get("/dashboard/audit").text
    assert "Alerta verificada para BELMONT" in audit
    assert "•••T07:00" not in audit


def test_scheduled_detail_reads_as_a_local_time(app, aviso):
    from bot.web.dashboard.audit import detail
    with app.test_request_context("/dashboard/audit"):
        from flask import g
        g.aviso = aviso
        entry = Entry(NOW, "aviso", "scheduled", "0123456789abcdef", "2026-12-04T07:00-08:00")
        assert detail(entry) == "goes out at 2026-12-04 07:00 PST"  # with its zone (finding 9)


@pytest.fixture
def make_client(app):
    return app.test_client


def test_message_the_registrants_is_offered_only_where_it_may_be_sent(make_client, aviso, staff):
    sender = sign_in(make_client(), aviso, VENICE)
    page = sender.get("/dashboard/workshops").text
    online = page.split("Online", 1)[1].split("</article>", 1)[0] if "Online" in page else ""
    assert online and "Message the registrants" not in online and "Only an admin can message" in online
    assert sender.get("/dashboard/broadcasts/new?workshop=kyr-online").status_code == 403
    admin = sign_in(make_client(), aviso, ADMIN)
    assert admin.get("/dashboard/broadcasts/new?workshop=kyr-online").status_code == 200
    assert "Only an admin can message" not in admin.get("/dashboard/workshops").text


def test_the_roster_is_searched_by_name_school_and_role_a_page_at_a_time(client, aviso, staff, known):
    for n in range(60):
        aviso.roster.add(f"+1310555{3000 + n}", f"Teacher {n:02d}", "sender", ["VENICE"], known)
    sign_in(client, aviso, ADMIN)
    first = client.get("/dashboard/staff").text
    assert "64 people" in first and 'rel="next"' in first and first.count('href="/dashboard/staff/') == 50
    second = client.get("/dashboard/staff?page=1").text
    assert second.count('href="/dashboard/staff/') == 14 and 'rel="prev"' in second
    belmont = client.get("/dashboard/staff?school=BELMONT&role=approver").text
    assert "Principal Kim" in belmont and "Ms. Rivera" not in belmont and "1 person" in belmont
    named = client.get("/dashboard/staff?q=teacher%2007").text
    assert "Teacher 07" in named and "Teacher 08" not in named
