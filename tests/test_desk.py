"""Staff broadcasts end to end: roster, compose, two-person approval, quiet hours, corrections, VERIFY,
the JSON API and the CLI — real Redis, real RQ worker, the outbox sender."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.broadcasts.compose import BroadcastRequest, ComposeError, MissingTranslation
from bot.broadcasts.desk import quiet_until
from bot.broadcasts.store import APPROVED, CANCELLED, DONE, DRAFT, FAILED, PENDING_APPROVAL, SCHEDULED
from bot.cli.main import cli
from bot.content.encoding import for_sms
from bot.people.identity import parse_address
from bot.people.staff import NotAllowed
from bot.store import keys, queues

from .conftest import ForkingJobRunner, Phone
from .workshops_support import publish, workshop

LA = ZoneInfo("America/Los_Angeles")
NOON = datetime(2026, 12, 3, 12, 0, tzinfo=LA)
ROUTE = BroadcastRequest(("BELMONT",), "update", "route_change",
                         {"date": "2026-12-03", "route": {"en": "3rd St gate", "es": "puerta de 3rd St"}})
FIX = {"en": "The gate is on 4th St.", "es": "La puerta está en 4th St."}
ACTIVITY = BroadcastRequest(("BELMONT",), "verified", "activity_verified",
                            {"location": "3rd & Loma", "time": "7:45 am"}, verified_by="LAUSD School Police")


@pytest.fixture
def settings(settings):
    """No quiet hours unless a test asks (tests pass their own clock to the desk)."""
    return settings.with_overrides(quiet_hours=None)


@pytest.fixture
def staff(aviso):
    """A sender and an approver at Belmont, and a sender at Venice."""
    known = set(aviso.active_content().schools.by_code)
    roster = aviso.roster
    return {
        "sender": roster.add("+13105550101", "Ms. Rivera", "sender", ["BELMONT"], known),
        "approver": roster.add("+13105550102", "Principal Kim", "approver", ["BELMONT"], known),
        "venice": roster.add("+13105550103", "Mr. Novak", "sender", ["VENICE"], known),
    }


FAMILIES = {"+12135550111": "ALERTS", "+12135550112": "ALERTAS", "whatsapp:+12135550113": "ALERTAS"}


@pytest.fixture
def families(client):
    """Three families following Belmont (English SMS, Spanish SMS, Spanish WhatsApp) and one at Venice."""
    for number, word in FAMILIES.items():
        phone = Phone(client, number)
        for body in (word, "Belmont", "1"):
            phone.text(body)
    for body in ("ALERTS", "Venice", "1"):
        Phone(client, "+12135550114").text(body)
    return FAMILIES


def work(app, aviso):
    """Run every queued job, like `aviso worker` would."""
    with app.app_context():
        ForkingJobRunner(list(queues.ALL), connection=aviso.connection).work(burst=True)


def outbox_for(aviso, number):
    return [m["body"] for m in aviso.sender.messages_for(parse_address(number))]


def test_update_goes_to_every_subscriber_in_their_language(app, aviso, staff, families, shipped_content):
    broadcast = aviso.desk().create(staff["sender"], ROUTE, now=NOON)
    work(app, aviso)
    assert aviso.broadcasts.get(broadcast.id).status == DONE
    assert outbox_for(aviso, "+12135550111") == [broadcast.texts["en"]]
    assert outbox_for(aviso, "+12135550112") == [for_sms(broadcast.texts["es"], "es")]
    assert outbox_for(aviso, "whatsapp:+12135550113") == [broadcast.texts["es"]]
    assert outbox_for(aviso, "+12135550114") == []  # Venice only
    assert shipped_content.text("es", "status.update") in broadcast.texts["es"]
    assert aviso.broadcasts.outcomes(broadcast.id).sent == 3


def test_verified_alert_waits_for_a_second_staff_member(app, aviso, staff, families):
    broadcast = aviso.desk().create(staff["sender"], ACTIVITY, now=NOON)
    assert broadcast.status == PENDING_APPROVAL
    with pytest.raises(NotAllowed, match="second staff member"):
        aviso.desk().approve(staff["sender"], broadcast.id, now=NOON)
    with pytest.raises(NotAllowed):
        aviso.desk().approve(staff["venice"], broadcast.id, now=NOON)
    work(app, aviso)
    assert outbox_for(aviso, "+12135550111") == []  # nothing before approval
    approved = aviso.desk().approve(staff["approver"], broadcast.id, now=NOON)
    assert approved.approved_by == staff["approver"].id
    work(app, aviso)
    assert outbox_for(aviso, "+12135550111") == [broadcast.texts["en"]]
    assert "LAUSD School Police" in broadcast.texts["en"]


def test_rejection_sends_it_back_with_the_reason_in_the_audit_log(aviso, staff, families):
    broadcast = aviso.desk().create(staff["sender"], ACTIVITY, now=NOON)
    rejected = aviso.desk().reject(staff["approver"], broadcast.id, "Not confirmed by school police yet")
    assert rejected.status == DRAFT
    entry = aviso.audit.recent(1)[0]
    assert (entry.action, entry.detail) == ("rejected", "Not confirmed by school police yet")


def test_approval_rule_can_be_turned_off(app, settings, staff, families):
    from bot import create_app, services

    relaxed = services.current_from(create_app(settings.with_overrides(require_approval=False)))
    broadcast = relaxed.desk().create(staff["sender"], ACTIVITY, now=NOON)
    assert broadcast.status != PENDING_APPROVAL


def test_staff_can_send_only_to_their_schools(aviso, staff, families):
    with pytest.raises(NotAllowed, match="BELMONT"):
        aviso.desk().create(staff["venice"], ROUTE, now=NOON)


def test_custom_text_missing_a_subscriber_language_is_refused_unless_a_fallback_is_named(aviso, staff, families):
    english_only = BroadcastRequest(("BELMONT",), "update", custom_texts={"en": "Gate B is closed today."})
    with pytest.raises(MissingTranslation) as error:
        aviso.desk().create(staff["sender"], english_only, now=NOON)
    assert error.value.languages == ["es"]
    with_fallback = BroadcastRequest(("BELMONT",), "update", custom_texts={"en": "Gate B is closed today."},
                                     fallback_language="en")
    assert aviso.desk().create(staff["sender"], with_fallback, now=NOON).status != DRAFT


def test_preview_shows_texts_recipients_and_segments_and_stores_nothing(aviso, staff, families):
    draft, plan = aviso.desk().preview(staff["sender"], ROUTE)
    assert plan.recipients == 3
    by_language = {p.language: p for p in plan.languages}
    assert (by_language["en"].sms, by_language["es"].sms, by_language["es"].whatsapp) == (1, 1, 1)
    assert by_language["es"].sms_segments.encoding == "GSM-7"
    assert plan.total_segments >= 3
    assert aviso.broadcasts.list_recent(10) == []


@pytest.mark.parametrize(
    ("local", "until"),
    [(datetime(2026, 12, 3, 22, 30), datetime(2026, 12, 4, 7, 0)),
     (datetime(2026, 12, 4, 6, 0), datetime(2026, 12, 4, 7, 0)),
     (datetime(2026, 12, 3, 12, 0), None),
     (datetime(2027, 3, 13, 23, 0), datetime(2027, 3, 14, 7, 0))],  # across the spring-forward night
)
def test_quiet_hours_end_at_seven_local_time(settings, local, until):
    quiet = settings.with_overrides(quiet_hours=(datetime(1, 1, 1, 21).time(), datetime(1, 1, 1, 7).time()))
    result = quiet_until(quiet, local.replace(tzinfo=LA))
    assert result == (until.replace(tzinfo=LA) if until else None)


def test_non_urgent_broadcast_waits_for_quiet_hours_to_end_but_urgent_does_not(app, settings, staff, families):
    from bot import create_app, services

    night = datetime(2026, 12, 3, 22, 30, tzinfo=LA)
    quiet = services.current_from(create_app(settings.with_overrides(
        quiet_hours=(datetime(1, 1, 1, 21).time(), datetime(1, 1, 1, 7).time()))))
    waiting = quiet.desk().create(staff["sender"], ROUTE, now=night)
    assert waiting.status == SCHEDULED

    urgent = quiet.desk().create(staff["sender"], replace(ROUTE, urgent=True), now=night)
    assert urgent.status in (APPROVED, "sending", DONE)


def test_correction_reaches_exactly_the_original_recipients(app, aviso, client, staff, families):
    original = aviso.desk().create(staff["sender"], ROUTE, now=NOON)
    work(app, aviso)
    for body in ("ALERTS", "Belmont", "1"):
        Phone(client, "+12135550199").text(body)  # subscribed after the original went out
    correction = BroadcastRequest(("BELMONT",), "correction", "correction", {"correction": FIX},
                                  corrects=original.id)
    sent = aviso.desk().create(staff["sender"], correction, now=NOON)
    aviso.desk().approve(staff["approver"], sent.id, now=NOON)
    work(app, aviso)
    assert outbox_for(aviso, "+12135550199") == []
    assert outbox_for(aviso, "+12135550111")[-1] == sent.texts["en"]


def test_families_can_verify_a_sent_alert_but_not_an_unsent_one(app, aviso, client, staff, families):
    sent = aviso.desk().create(staff["sender"], ROUTE, now=NOON)
    work(app, aviso)
    waiting = aviso.desk().create(staff["sender"], ACTIVITY, now=NOON)
    phone = Phone(client, "+13235550177")
    genuine = phone.text(f"VERIFY {sent.code}")[0]
    assert sent.code in genuine and "Belmont High School" in genuine and "GENUINE" in genuine
    assert "NOT FOUND" in phone.text(f"VERIFY {waiting.code}")[0]


def test_audit_log_names_who_did_what_without_phone_numbers(app, aviso, staff, families):
    broadcast = aviso.desk().create(staff["sender"], ACTIVITY, now=NOON)
    aviso.desk().approve(staff["approver"], broadcast.id, now=NOON)
    actions = [(e.action, e.actor) for e in aviso.audit.recent(10)]
    assert ("created", f"Ms. Rivera ({staff['sender'].id})") in actions
    assert ("approved", f"Principal Kim ({staff['approver'].id})") in actions
    assert "310555" not in json.dumps([e.detail + e.actor + e.subject for e in aviso.audit.recent(10)])


@pytest.mark.parametrize("ended", [CANCELLED, FAILED])
def test_broadcast_stopped_while_sending_can_still_be_corrected(app, aviso, staff, families, ended):
    original = aviso.desk().create(staff["sender"], ROUTE, now=NOON)
    work(app, aviso)
    # as if it was stopped after reaching these families: their records kept, its status what the stop left
    aviso.connection.hset(keys.BROADCAST.format(id=original.id), "status", ended)
    correction = BroadcastRequest((), "correction", "correction", {"correction": FIX},
                                  corrects=original.id)
    sent = aviso.desk().create(staff["sender"], correction, now=NOON)
    aviso.desk().approve(staff["approver"], sent.id, now=NOON)
    work(app, aviso)
    assert outbox_for(aviso, "+12135550111")[-1] == sent.texts["en"]


def test_broadcast_cancelled_before_it_went_out_cannot_be_corrected(aviso, staff, families):
    original = aviso.desk().create(staff["sender"], ACTIVITY, now=NOON)
    aviso.desk().cancel(staff["sender"], original.id)
    correction = BroadcastRequest((), "correction", "correction", {"correction": {"en": "x", "es": "x"}},
                                  corrects=original.id)
    with pytest.raises(ComposeError, match="only a broadcast that was sent can be corrected"):
        aviso.desk().create(staff["sender"], correction, now=NOON)


def test_acting_on_an_unknown_broadcast_says_there_is_no_broadcast_with_that_id(runner, cli_env, aviso, staff):
    result = runner.invoke(cli, ["broadcast", "cancel", "0123456789abcdef", "--as", staff["sender"].id], env=cli_env)
    assert result.exit_code != 0 and "no broadcast with id 0123456789abcdef" in result.output


@pytest.mark.parametrize(
    ("options", "message"),
    [(["--kind", "update", "--corrects", "0123456789abcdef"], "corrects is only for a correction"),
     (["--kind", "update", "--languages", "en,klingon"], "unknown language(s) klingon; supported: "),
     (["--kind", "verified", "--verified-by", "K" * 81], "verified_by is too long")],
)
def test_create_preview_refuses_bad_options_with_a_clear_message(runner, cli_env, staff, options, message):
    result = runner.invoke(cli, ["broadcast", "create", "--as", staff["sender"].id, "--schools", "BELMONT",
                                 "--template", "all_clear", "--var", "time=8 am", "--preview", *options],
                           env=cli_env)
    assert result.exit_code != 0 and message in result.output


# --- a workshop's broadcasts belong to the workshop's school ---

@pytest.fixture
def workshop_family(aviso, client, shipped_content):
    """A Belmont workshop with one family signed up by text."""
    publish(aviso, shipped_content, dict(workshop("kyr-test", "2030-03-05T18:00", title="KYR"),
                                         school="Belmont High School"))
    phone = Phone(client, "+12135550171")
    phone.text("TALLERES")
    phone.text("1")
    return phone.number


ROOM = {"kind": "update", "workshop": "kyr-test", "texts": {"en": "Room 101"}, "fallback_language": "en"}


def test_other_schools_staff_cannot_see_cancel_or_correct_a_workshop_broadcast(app, aviso, client, staff,
                                                                               workshop_family):
    belmont, venice = (aviso.roster.issue_token(staff[k].id) for k in ("sender", "venice"))
    created = api(client, belmont, "POST", "/api/broadcasts", ROOM)
    assert created.status_code == 201 and created.get_json()["schools"] == ["BELMONT"]
    broadcast_id = created.get_json()["id"]
    work(app, aviso)
    assert api(client, venice, "GET", f"/api/broadcasts/{broadcast_id}").status_code == 403
    assert api(client, venice, "GET", "/api/broadcasts").get_json()["broadcasts"] == []
    assert api(client, venice, "POST", f"/api/broadcasts/{broadcast_id}/cancel").status_code == 403
    correction = {"kind": "correction", "template": "correction", "corrects": broadcast_id,
                  "variables": {"correction": {"en": "Room 102", "es": "Salón 102"}}}
    assert api(client, venice, "POST", "/api/broadcasts", {**correction, "schools": ["VENICE"]}).status_code == 403
    assert [b["id"] for b in api(client, belmont, "GET", "/api/broadcasts").get_json()["broadcasts"]] == [broadcast_id]


def test_workshop_broadcast_stored_without_schools_is_still_only_its_schools(aviso, staff, workshop_family):
    legacy = aviso.desk().create(staff["sender"], BroadcastRequest((), "update", custom_texts={"en": "Room 101"},
                                                                   fallback_language="en", workshop="kyr-test"))
    aviso.broadcasts.save(replace(aviso.broadcasts.get(legacy.id), schools=()))  # as stored before this fix
    with pytest.raises(NotAllowed):
        aviso.desk().show(staff["venice"], legacy.id)
    assert aviso.desk().show(staff["sender"], legacy.id).id == legacy.id


def test_correcting_a_workshop_broadcast_without_schools_reaches_its_registrants(app, aviso, client, staff,
                                                                                 workshop_family):
    sender, approver = (aviso.roster.issue_token(staff[k].id) for k in ("sender", "approver"))
    original = api(client, sender, "POST", "/api/broadcasts", ROOM).get_json()
    work(app, aviso)
    correction = api(client, sender, "POST", "/api/broadcasts", {
        "kind": "correction", "template": "correction", "corrects": original["id"],
        "variables": {"correction": {"en": "Room 102", "es": "Salón 102"}}})
    assert correction.status_code == 201, correction.get_json()
    assert api(client, approver, "POST", f"/api/broadcasts/{correction.get_json()['id']}/approve").status_code == 200
    work(app, aviso)
    assert outbox_for(aviso, workshop_family)[-1] == for_sms(correction.get_json()["texts"]["es"], "es")


# --- the JSON API ---

def api(client, token, method, path, payload=None):
    return client.open(path, method=method, json=payload, headers={"Authorization": f"Bearer {token}"})


def test_api_refuses_requests_without_a_valid_token(client, staff):
    assert client.post("/api/broadcasts", json={}).status_code == 401
    assert api(client, "not-a-token", "POST", "/api/broadcasts", {}).status_code == 401


def test_api_creates_previews_approves_and_reports(app, aviso, client, staff, families):
    sender, approver = (aviso.roster.issue_token(staff[k].id) for k in ("sender", "approver"))
    payload = {"schools": ["BELMONT"], "kind": "verified", "template": "activity_verified",
               "variables": {"location": "3rd & Loma", "time": "7:45 am"}, "verified_by": "LAUSD School Police"}
    preview = api(client, sender, "POST", "/api/broadcasts/preview", payload)
    assert preview.status_code == 200 and preview.get_json()["plan"]["recipients"] == 3
    created = api(client, sender, "POST", "/api/broadcasts", payload)
    assert created.status_code == 201 and created.get_json()["status"] == PENDING_APPROVAL
    broadcast_id = created.get_json()["id"]
    assert api(client, sender, "POST", f"/api/broadcasts/{broadcast_id}/approve").status_code == 403
    assert api(client, approver, "POST", f"/api/broadcasts/{broadcast_id}/approve").status_code == 200
    work(app, aviso)
    shown = api(client, sender, "GET", f"/api/broadcasts/{broadcast_id}").get_json()
    assert shown["status"] == DONE and shown["outcomes"]["sent"] == 3


@pytest.mark.parametrize(
    ("payload", "status"),
    [({"schools": ["VENICE"], "kind": "update", "template": "all_clear", "variables": {"time": "8 am"}}, 403),
     ({"schools": ["BELMONT"], "kind": "update", "texts": {"en": "Gate B closed."}}, 422),
     ({"schools": ["BELMONT"], "kind": "update", "template": "route_change"}, 400),
     ({"schools": "BELMONT", "kind": "shout"}, 400),
     ({"schools": ["BELMONT"], "kind": "update", "template": "all_clear", "variables": {"time": "8"},
       "send_at": "tomorrow"}, 400)],
)
def test_api_answers_bad_requests_with_a_clear_4xx(client, aviso, staff, families, payload, status):
    token = aviso.roster.issue_token(staff["sender"].id)
    response = api(client, token, "POST", "/api/broadcasts", payload)
    assert response.status_code == status and response.get_json()["error"]


# --- the command line ---

def test_staff_commands_add_list_and_remove_without_showing_numbers(runner, cli_env, aviso):
    def aviso_command(*args):
        return runner.invoke(cli, list(args), env=cli_env)

    result = aviso_command("staff", "add", "--phone", "+13105550150", "--name", "Ms. Lee", "--role", "approver",
                           "--schools", "belmont,venice")
    assert result.exit_code == 0, result.output
    member = aviso.roster.by_phone("+13105550150")
    assert member.schools == ("BELMONT", "VENICE")
    listing = aviso_command("staff", "list").output
    assert "Ms. Lee" in listing and "3105550150" not in listing
    duplicate = aviso_command("staff", "add", "--phone", "+13105550150", "--name", "X", "--role", "sender",
                              "--schools", "BELMONT")
    assert duplicate.exit_code != 0 and "already on the roster" in duplicate.output
    unknown = aviso_command("staff", "add", "--phone", "+13105550151", "--name", "Y", "--role", "sender",
                            "--schools", "HOGWARTS")
    assert unknown.exit_code != 0 and "unknown school code(s): HOGWARTS" in unknown.output
    assert aviso_command("staff", "remove", member.id).exit_code == 0
    assert aviso.roster.by_phone("+13105550150") is None


def test_broadcast_commands_create_approve_and_report(runner, cli_env, app, aviso, staff, families):
    def aviso_command(*args):
        result = runner.invoke(cli, list(args), env=cli_env)
        assert result.exit_code == 0, result.output
        return result.output

    preview = json.loads(aviso_command("broadcast", "create", "--as", staff["sender"].id, "--schools", "BELMONT",
                                       "--kind", "all_clear", "--template", "all_clear", "--var", "time=8:10 am",
                                       "--urgent", "--preview"))
    assert preview["plan"]["recipients"] == 3 and set(preview["texts"]) >= {"en", "es"}
    created = json.loads(aviso_command("broadcast", "create", "--as", staff["sender"].id, "--schools", "BELMONT",
                                       "--kind", "verified", "--template", "activity_verified", "--var",
                                       "location=3rd & Loma", "--var", "time=7:45 am", "--verified-by",
                                       "LAUSD School Police", "--urgent"))
    assert created["status"] == PENDING_APPROVAL
    assert f"{created['id']}: " in aviso_command("broadcast", "approve", created["id"], "--as", staff["approver"].id)
    work(app, aviso)
    status = aviso_command("broadcast", "status", created["id"], "--no-watch")
    assert status.startswith("done") and "3/3" in status and "sent 3" in status


def test_spanish_sms_families_get_the_alert_folded_to_gsm7_and_whatsapp_families_with_every_accent(
        app, aviso, staff, families):
    broadcast = aviso.desk().create(staff["sender"], ROUTE, now=NOON)
    work(app, aviso)
    written = broadcast.texts["es"]
    assert "ACTUALIZACIÓN" in written and "guiará" in written  # the content is spelled correctly
    sms = outbox_for(aviso, "+12135550112")[0]
    assert "ACTUALIZACION" in sms and "guiara" in sms and sms != written  # it saved a segment
    assert outbox_for(aviso, "whatsapp:+12135550113") == [written]  # WhatsApp never folds


def test_an_alert_carries_the_day_it_goes_out_even_when_quiet_hours_hold_it_overnight(app, settings, staff):
    from bot import create_app, services

    night = datetime(2026, 12, 3, 22, 30, tzinfo=LA)  # a Thursday night: it goes out Friday at 7:00
    quiet = services.current_from(create_app(settings.with_overrides(
        quiet_hours=(datetime(1, 1, 1, 21).time(), datetime(1, 1, 1, 7).time()))))
    held = quiet.desk().create(staff["sender"], ROUTE, now=night)
    urgent = quiet.desk().create(staff["sender"], replace(ROUTE, urgent=True), now=night)
    assert held.texts["en"].split("\n")[0].endswith("- Fri Dec 4")
    assert urgent.texts["en"].split("\n")[0].endswith("- Thu Dec 3")
    assert held.texts["es"].split("\n")[0].endswith("- vie 4 dic")


def test_verify_answers_with_what_the_genuine_alert_said_and_when(app, aviso, client, staff, families,
                                                                  shipped_content):
    alert = aviso.desk().create(staff["sender"], ACTIVITY, now=NOON)
    aviso.desk().approve(staff["approver"], alert.id, now=NOON)
    work(app, aviso)
    # A forward that pastes this real code under another place: the family reads what the alert really said.
    answer = Phone(client, "whatsapp:+12135550188").text(f"VERIFICAR {alert.code}")[0]
    assert shipped_content.text("es", "verify.said", text=aviso.broadcasts.get(alert.id).bodies["es"]) in answer
    assert "3rd & Loma" in answer and "AUTÉNTICA" in answer
    sent = aviso.broadcasts.get(alert.id).started_at.astimezone(LA)
    month = shipped_content.language("es")["calendar"]["months"][sent.month - 1]
    assert f"{sent.day} {month}" in answer  # the day it went out, not only a time


def test_verify_of_a_correction_names_the_alert_it_corrects(app, aviso, client, staff, families):
    original = aviso.desk().create(staff["sender"], ROUTE, now=NOON)
    work(app, aviso)
    fix = aviso.desk().create(staff["sender"], BroadcastRequest(
        ("BELMONT",), "correction", "correction", {"correction": FIX}, corrects=original.id),
        now=NOON)
    aviso.desk().approve(staff["approver"], fix.id, now=NOON)
    work(app, aviso)
    phone = Phone(client, "+13235550178")
    assert f"CORRECTION of alert {original.code}" in phone.text(f"VERIFY {fix.code}")[0]
    assert f"VERIFY {fix.code}" in phone.text(f"VERIFY {original.code}")[0]
