"""Broadcast lists at district scale: every list reads the viewer's schools' indexes, so another school's
busy morning never pushes a pending alert or a sent-back notice out of view; pages, history search, the
API's filters, the index backfill and the CSV report (counts, never a number)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from bot.broadcasts import index as broadcast_index
from bot.broadcasts.outcomes import OutcomeStore
from bot.broadcasts.store import DONE, DRAFT, PENDING_APPROVAL, SENDING, Broadcast, BroadcastStore, new_id
from bot.cli.main import cli
from bot.store import keys

from . import test_dashboard as dashboard_tests
from .test_broadcasts import subscribe
from .test_dashboard import APPROVER, SENDER, VENICE, create, post, sign_in

# The dashboard tests' fixtures: no quiet hours, a sender and an approver at Belmont, a sender at Venice.
settings, staff, make_client = dashboard_tests.settings, dashboard_tests.staff, dashboard_tests.make_client

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def other_school_posts(aviso, author: str, count: int, start: datetime = T0) -> list[str]:
    """Another school (Venice) posts this many updates, a minute apart, after `start`."""
    store, ids = BroadcastStore(aviso.connection), []
    for n in range(count):
        broadcast = Broadcast(id=new_id(), schools=("VENICE",), kind="update", texts={"en": f"Venice update {n}"},
                              code=f"V{n:04d}", created_by=author, status=DONE,
                              created_at=start + timedelta(minutes=n + 1))
        ids.append(store.create(broadcast).id)
    return ids


def test_after_another_school_posts_205_the_vice_principal_still_sees_her_pending_alert_and_the_sender_his_notice(
        make_client, aviso, staff):
    sender, approver = make_client(), make_client()
    sign_in(sender, aviso, SENDER)
    sign_in(approver, aviso, APPROVER)
    subscribe(aviso, "+12135550111", school="BELMONT", lang="es")
    sent_back = create(sender, {"schools": "BELMONT", "kind": "verified", "verified_by": "School Police",
                                "source": "text", "text.en": "Agents seen at 3rd & Loma",
                                "text.es": "Agentes vistos en 3rd y Loma", "when": "now"})
    assert post(approver, f"/dashboard/broadcasts/{sent_back}/reject", {"reason": "Name the corner"}).status_code == 302
    waiting = create(sender, {"schools": "BELMONT", "kind": "verified", "verified_by": "School Police",
                              "source": "text", "text.en": "Agents seen at 4th & Loma",
                              "text.es": "Agentes vistos en 4th y Loma", "when": "now"})
    other_school_posts(aviso, staff["venice"].id, 205, start=datetime.now(UTC))

    approvals = approver.get("/dashboard/approvals").text
    assert f"/dashboard/broadcasts/{waiting}" in approvals and "Nothing is waiting" not in approvals
    home = sender.get("/dashboard/").text
    assert f"/dashboard/broadcasts/{sent_back}" in home and "Name the corner" in home
    headers = {"Authorization": f"Bearer {aviso.roster.issue_token(staff['approver'].id)}"}
    api = client_json = approver.get(f"/api/broadcasts?status={PENDING_APPROVAL}", headers=headers).json
    assert [b["id"] for b in client_json["broadcasts"]] == [waiting] and api["next_cursor"] is None


def test_pages_walk_every_broadcast_of_a_school_once_newest_first(aviso, staff):
    ids = other_school_posts(aviso, staff["venice"].id, 45)
    seen, cursor = [], None
    while True:
        page = aviso.desk().list(staff["venice"], broadcast_index.Query(None, limit=20, cursor=cursor))
        seen += [b.id for b in page.broadcasts]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_history_finds_by_kind_status_and_date_and_never_shows_another_schools(make_client, aviso, staff):
    other_school_posts(aviso, staff["venice"].id, 5)
    store = BroadcastStore(aviso.connection)
    mine = store.create(Broadcast(id=new_id(), schools=("BELMONT",), kind="all_clear", texts={"en": "All clear"},
                                  code="BELM1", created_by=staff["sender"].id, status=DONE,
                                  created_at=T0 + timedelta(days=3)))
    client = make_client()
    sign_in(client, aviso, SENDER)
    found = client.get("/dashboard/broadcasts?kind=all_clear&status=done&since=2026-03-05&until=2026-03-05").text
    assert f"/dashboard/broadcasts/{mine.id}" in found
    assert "No broadcast matches" in client.get("/dashboard/broadcasts?since=2026-03-06").text
    assert "V0001" not in client.get("/dashboard/broadcasts").text  # Venice's are not hers
    assert client.get("/dashboard/broadcasts?school=VENICE").status_code == 403
    assert client.get("/dashboard/broadcasts?since=yesterday").status_code == 400


def test_the_api_lists_a_page_with_filters_and_refuses_a_bad_one(client, aviso, staff):
    other_school_posts(aviso, staff["venice"].id, 30)
    headers = {"Authorization": f"Bearer {aviso.roster.issue_token(staff['venice'].id)}"}
    first = client.get("/api/broadcasts?limit=25", headers=headers).json
    assert len(first["broadcasts"]) == 25 and first["next_cursor"]
    rest = client.get(f"/api/broadcasts?limit=25&cursor={first['next_cursor']}", headers=headers).json
    assert len(rest["broadcasts"]) == 5 and rest["next_cursor"] is None
    assert client.get("/api/broadcasts?status=sent", headers=headers).status_code == 400
    assert client.get("/api/broadcasts?school=BELMONT", headers=headers).status_code == 403


def test_a_status_change_moves_the_broadcast_between_lists(aviso, staff):
    store = BroadcastStore(aviso.connection)
    broadcast = store.create(Broadcast(id=new_id(), schools=("BELMONT",), kind="verified", texts={"en": "x"},
                                       code="MOVE1", created_by=staff["sender"].id, status=PENDING_APPROVAL))
    pending = broadcast_index.Query(("BELMONT",), status=PENDING_APPROVAL)
    assert [b.id for b in aviso.desk().list(staff["approver"], pending).broadcasts] == [broadcast.id]
    store.transition(broadcast.id, DRAFT)
    assert aviso.desk().list(staff["approver"], pending).broadcasts == []
    drafts = broadcast_index.Query(None, status=DRAFT, sender=staff["sender"].id)
    assert [b.id for b in aviso.desk().list(staff["sender"], drafts).broadcasts] == [broadcast.id]


def test_backfill_indexes_broadcasts_stored_before_the_indexes_and_can_run_twice(aviso, staff):
    ids = other_school_posts(aviso, staff["venice"].id, 3)
    for name in list(aviso.connection.scan_iter(match=keys.PREFIX + ":bidx:*")):
        aviso.connection.delete(name)
    assert aviso.desk().list(staff["venice"], broadcast_index.Query(None)).broadcasts == []
    assert broadcast_index.backfill(aviso.connection) == 3
    assert broadcast_index.backfill(aviso.connection) == 3
    assert [b.id for b in aviso.desk().list(staff["venice"], broadcast_index.Query(None)).broadcasts] == ids[::-1]


def test_the_csv_report_counts_per_language_channel_and_reason_and_holds_no_number(make_client, aviso, staff):
    store, outcomes = BroadcastStore(aviso.connection), OutcomeStore(aviso.connection)
    numbers = {"+12135550111": ("es", "sms"), "+12135550112": ("es", "sms"), "+12135550113": ("ko", "whatsapp")}
    contacts = {n: subscribe(aviso, n, school="BELMONT", lang=lang, channel=ch) for n, (lang, ch) in numbers.items()}
    broadcast = store.create(Broadcast(id=new_id(), schools=("BELMONT",), kind="update", texts={"en": "x"},
                                       code="CSV01", created_by=staff["sender"].id, status=SENDING,
                                       started_at=T0))
    for number, outcome in (("+12135550111", "sent:SM0001"), ("+12135550112", "failed:21211"),
                            ("+12135550113", "skipped:whatsapp_window_closed")):
        claim = outcomes.claim(broadcast.id, contacts[number], "sending:1.000:run")
        outcomes.record(broadcast.id, contacts[number], claim.value, outcome, "SM0001" if outcome.startswith("sent")
                        else "")
    outcomes.record_status(broadcast.id, "SM0001", "delivered")
    aviso.connection.hset(keys.BROADCAST.format(id=broadcast.id), "started_at", T0.isoformat())
    client = make_client()
    sign_in(client, aviso, SENDER)
    response = client.get(f"/dashboard/broadcasts/{broadcast.id}/report.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [["language", "channel", "outcome", "reason", "recipients"],
                    ["es", "sms", "failed", "21211", "1"], ["es", "sms", "sent", "delivered", "1"],
                    ["ko", "whatsapp", "skipped", "whatsapp_window_closed", "1"]]
    body = response.text
    assert not re.search(r"\d{6,}", body) and not any(key in body for key in contacts.values())
    assert "SM0001" not in body
    headers = {"Authorization": f"Bearer {aviso.roster.issue_token(staff['sender'].id)}"}
    assert make_client().get(f"/api/broadcasts/{broadcast.id}/report.csv", headers=headers).text == body
    venice = make_client()
    sign_in(venice, aviso, VENICE)
    assert venice.get(f"/dashboard/broadcasts/{broadcast.id}/report.csv").status_code == 403


def test_aviso_broadcast_reindex_backfills_from_the_command_line(aviso, staff, runner, cli_env):
    other_school_posts(aviso, staff["venice"].id, 2)
    for name in list(aviso.connection.scan_iter(match=keys.PREFIX + ":bidx:*")):
        aviso.connection.delete(name)
    result = runner.invoke(cli, ["broadcast", "reindex"], env=cli_env)
    assert result.exit_code == 0 and "indexed 2 broadcasts" in result.output, result.output
    assert len(aviso.desk().list(staff["venice"], broadcast_index.Query(None)).broadcasts) == 2


def test_reindex_gives_a_school_its_audit_entries_from_before_the_per_school_lists(make_client, aviso, staff):
    (mine,) = [BroadcastStore(aviso.connection).create(Broadcast(
        id=new_id(), schools=("BELMONT",), kind="update", texts={"en": "x"}, code="OLD01",
        created_by=staff["sender"].id, status=DONE))]
    aviso.connection.lpush(keys.AUDIT, '{"at": "2026-03-02T15:00:00+00:00", "actor": "Ms. Rivera", '
                           f'"action": "created", "subject": "{mine.id}", "detail": "update for BELMONT"}}')
    client = make_client()
    sign_in(client, aviso, SENDER)
    assert "OLD01" not in client.get("/dashboard/audit").text
    assert aviso.audit.reindex() == 1 and aviso.audit.reindex() == 1
    assert "OLD01" in client.get("/dashboard/audit").text


def test_the_audit_log_shows_a_schools_entries_a_page_at_a_time_whatever_other_schools_do(make_client, aviso, staff):
    store = BroadcastStore(aviso.connection)
    mine = store.create(Broadcast(id=new_id(), schools=("BELMONT",), kind="update", texts={"en": "x"},
                                  code="AUD01", created_by=staff["sender"].id, status=DONE))
    theirs = store.create(Broadcast(id=new_id(), schools=("VENICE",), kind="update", texts={"en": "y"},
                                    code="AUD02", created_by=staff["venice"].id, status=DONE))
    for n in range(250):
        aviso.audit.record("Ms. Rivera", "approved", mine.id, f"round {n}", ("BELMONT",))
    for _ in range(1200):  # Venice is busy afterwards: more than the 1,000 entries the log used to scan
        aviso.audit.record("Mr. Novak", "approved", theirs.id, "", ("VENICE",))
    client = make_client()
    sign_in(client, aviso, SENDER)
    first = client.get("/dashboard/audit").text
    assert first.count("AUD01") == 200 and "AUD02" not in first and "round 249" in first
    assert 'href="/dashboard/audit?page=1"' in first
    second = client.get("/dashboard/audit?page=1").text
    assert second.count("AUD01") == 50 and "round 0<" in second and "?page=2" not in second
