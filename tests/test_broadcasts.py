"""The broadcast store: life cycle, codes, audience, the preview plan and recipient outcome records."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from bot.broadcasts.errors import (
    BroadcastNotFound,
    DuplicateBroadcast,
    InvalidBroadcast,
    InvalidTransition,
    MissingTranslation,
    OriginalUnavailable,
    Undeliverable,
)
from bot.broadcasts.outcomes import OutcomeStore, claim_value
from bot.broadcasts.store import (
    APPROVED,
    CANCELLED,
    DONE,
    DRAFT,
    PENDING_APPROVAL,
    SENDING,
    Broadcast,
    BroadcastStore,
    new_id,
)
from bot.people import audience_counts
from bot.people.contacts import contact_redis_key
from bot.people.identity import Address
from bot.services import jobs
from bot.store import keys

SCHOOL = "lincoln"
ES_TEXT = "ALERTA: actividad reportada cerca de Main y 3rd. Use la entrada norte. Codigo K7Q2"
EN_TEXT = "ALERT: activity reported near Main & 3rd. Use the north entrance. Code K7Q2"


def subscribe(aviso, number: str, *, school: str = SCHOOL, lang: str = "es", channel: str = "sms",
              opted_out: bool = False, wa_seen: int | None = None) -> str:
    """Write a subscribed contact the way the family-side flow stores one; return its contact key."""
    key = aviso.keyring.contact_key(Address(channel, number))
    fields = {"lang": lang, "ch": channel, "num": aviso.keyring.encrypt(number),
              "opted_out": "1" if opted_out else "0", "schools": school}
    if wa_seen is not None:
        fields["wa_seen"] = str(wa_seen)
    audience_counts.write_contact(aviso.connection, key, fields, (school,))  # counts kept, as the webhook does
    return key


def make_broadcast(**changes) -> Broadcast:
    """An approved update for SCHOOL in Spanish and English."""
    fields = dict(id=new_id(), schools=(SCHOOL,), kind="update", texts={"es": ES_TEXT, "en": EN_TEXT},
                  code="K" + new_id()[:5].upper(), created_by="staff-1", status=APPROVED)
    fields.update(changes)
    return Broadcast(**fields)


@pytest.fixture
def store(aviso) -> BroadcastStore:
    """The broadcast store on the test Redis."""
    return BroadcastStore(aviso.connection)


def test_create_get_and_find_by_code(store):
    broadcast = store.create(make_broadcast(code="k7q2", status=DRAFT, whatsapp_templates={
        "es": {"content_sid": "HX" + "1" * 32, "variables": {"1": "Main y 3rd"}}}))
    loaded = store.get(broadcast.id)
    assert loaded == broadcast
    assert loaded.code == "K7Q2"
    assert store.find_by_code(" k7q2 ") == loaded
    assert store.find_by_code("NOPE") is None
    with pytest.raises(DuplicateBroadcast):
        store.create(make_broadcast(code="K7Q2"))
    with pytest.raises(DuplicateBroadcast):
        store.create(replace(broadcast, code="OTHER"))
    with pytest.raises(BroadcastNotFound):
        store.get(new_id())


def test_list_recent_newest_first(store):
    first = store.create(make_broadcast())
    second = store.create(make_broadcast())
    assert [b.id for b in store.list_recent(2)] == [second.id, first.id]


@pytest.mark.parametrize("changes", [
    {"kind": "rumour"}, {"id": "not-an-id"}, {"texts": {}}, {"code": " "}, {"schools": ()},
    {"kind": "correction"}, {"corrects": "0" * 16}, {"whatsapp_templates": {"es": {"variables": {}}}},
])
def test_invalid_broadcasts_are_refused(store, changes):
    with pytest.raises(InvalidBroadcast):
        store.create(make_broadcast(**changes))


def test_life_cycle_refuses_invalid_transitions_and_stamps_times(store):
    broadcast = store.create(make_broadcast(status=DRAFT))
    assert store.transition(broadcast.id, PENDING_APPROVAL).status == PENDING_APPROVAL
    with pytest.raises(InvalidTransition):
        store.transition(broadcast.id, SENDING)
    store.transition(broadcast.id, APPROVED)
    sending = store.transition(broadcast.id, SENDING)
    assert sending.started_at is not None and sending.finished_at is None
    with pytest.raises(InvalidTransition):
        store.save(replace(sending, texts={"es": "changed"}))  # no edits once it is going out
    done = store.transition(broadcast.id, DONE)
    assert done.finished_at is not None
    for status in (CANCELLED, SENDING, APPROVED):
        with pytest.raises(InvalidTransition):
            store.transition(broadcast.id, status)
    with pytest.raises(BroadcastNotFound):
        store.transition(new_id(), APPROVED)


def test_save_edits_before_sending(store):
    broadcast = store.create(make_broadcast(status=PENDING_APPROVAL))
    saved = store.save(replace(broadcast, approved_by="staff-2"))
    assert saved.approved_by == "staff-2" and saved.status == PENDING_APPROVAL


def test_audience_unions_schools_filters_language_and_drops_unreachable(store, aviso):
    es = subscribe(aviso, "+12135550101")
    en = subscribe(aviso, "+12135550102", lang="en", school="roosevelt")
    both = subscribe(aviso, "+12135550103")
    aviso.connection.sadd(keys.SCHOOL_SUBSCRIBERS.format(code="roosevelt"), both)
    subscribe(aviso, "+12135550104", opted_out=True)
    aviso.connection.sadd(keys.SCHOOL_SUBSCRIBERS.format(code=SCHOOL), "f" * 32)  # forgot itself
    broadcast = make_broadcast(schools=(SCHOOL, "roosevelt"))
    assert sorted(r.contact for r in store.audience(broadcast)) == sorted([es, en, both])
    spanish_only = replace(broadcast, languages=("es",))
    assert sorted(r.contact for r in store.audience(spanish_only)) == sorted([es, both])


def test_plan_counts_languages_channels_and_segments(store, aviso):
    now = int(time.time())
    subscribe(aviso, "+12135550111")
    subscribe(aviso, "+12135550112", lang="en")
    subscribe(aviso, "+12135550113", channel="whatsapp", wa_seen=now - 3600)
    subscribe(aviso, "+12135550114", channel="whatsapp", wa_seen=now - 3 * 24 * 3600)
    subscribe(aviso, "+12135550115", lang="en", channel="whatsapp")  # never wrote on WhatsApp
    broadcast = make_broadcast(texts={"es": ES_TEXT, "en": EN_TEXT + " ✓"}, whatsapp_templates={
        "es": {"content_sid": "HX" + "2" * 32, "variables": {"1": "Main y 3rd"}}})
    plan = store.plan(broadcast, now=now)
    rows = {row.language: row for row in plan.languages}
    assert (rows["es"].sms, rows["es"].whatsapp, rows["es"].whatsapp_template) == (1, 2, 1)
    assert rows["es"].sms_segments.encoding == "GSM-7" and rows["es"].sms_segments.segments == 1
    assert rows["en"].sms_segments.encoding == "UCS-2" and rows["en"].sms_segments.segments == 2
    assert (rows["en"].whatsapp, rows["en"].whatsapp_unreachable) == (1, 1)
    assert plan.recipients == 5 and plan.messages == 4
    assert plan.total_segments == 1 + 2  # es SMS 1, en SMS 2 segments: WhatsApp messages are not SMS
    assert plan.whatsapp_outside_window == 2 and plan.whatsapp_uncovered == 1
    assert plan.missing == ()


def test_missing_translation_is_refused_unless_a_fallback_is_given(store, aviso):
    subscribe(aviso, "+12135550121", lang="ko")
    subscribe(aviso, "+12135550122", lang="hy")
    subscribe(aviso, "+12135550123")
    broadcast = make_broadcast()
    with pytest.raises(MissingTranslation) as refused:
        store.plan(broadcast)
    assert refused.value.languages == ("hy", "ko")
    assert store.plan(broadcast, strict=False).missing == ("hy", "ko")
    plan = store.plan(replace(broadcast, fallback_language="en"))
    assert {row.language: row.text_language for row in plan.languages} == {"es": "es", "hy": "en", "ko": "en"}


def test_delivery_for_window_and_templates():
    template = {"content_sid": "HX" + "3" * 32, "variables": {"1": "Main"}}
    broadcast = make_broadcast(whatsapp_templates={"es": template}, fallback_language="en")
    now = time.time()
    assert broadcast.delivery_for("es", "whatsapp", int(now) - 60, now).body == ES_TEXT
    closed = broadcast.delivery_for("es", "whatsapp", int(now) - 25 * 3600, now)
    assert (closed.content_sid, closed.content_variables, closed.body) == (template["content_sid"], {"1": "Main"}, "")
    assert broadcast.delivery_for("ko", "sms", None, now).body == EN_TEXT
    with pytest.raises(Undeliverable) as unreachable:
        broadcast.delivery_for("en", "whatsapp", None, now)
    assert unreachable.value.reason == "whatsapp_window_closed"


def test_outcome_records_count_once(store, aviso):
    outcomes = OutcomeStore(aviso.connection)
    broadcast = store.create(make_broadcast())
    gone, opted, ok = "a" * 32, subscribe(aviso, "+12135550131", opted_out=True), subscribe(aviso, "+12135550132")
    assert outcomes.claim(broadcast.id, gone, claim_value("t", 1.0)).value == "skipped:contact_gone"
    assert outcomes.claim(broadcast.id, opted, claim_value("t", 1.0)).value == "skipped:opted_out"
    claim = outcomes.claim(broadcast.id, ok, claim_value("t", 1.0))
    assert (claim.state, claim.language, claim.channel) == ("claimed", "es", "sms")
    assert outcomes.claim(broadcast.id, ok, claim_value("u", 2.0)).state == "held"
    sid = "SM" + "4" * 32
    assert outcomes.record(broadcast.id, ok, claim.value, f"sent:{sid}", sid)
    assert not outcomes.record(broadcast.id, ok, claim.value, f"sent:{sid}", sid)  # a second time: no-op
    aviso.connection.hset(keys.BROADCAST.format(id=broadcast.id), "audience", 4)
    summary = store.outcomes(broadcast.id)
    assert (summary.sent, summary.skipped, summary.pending) == (1, {"contact_gone": 1, "opted_out": 1}, 1)


def test_status_callbacks_roll_up_once_per_message_and_status(store, aviso):
    outcomes = OutcomeStore(aviso.connection)
    broadcast = store.create(make_broadcast())
    contact = subscribe(aviso, "+12135550141")
    early, sid = "SM" + "5" * 32, "SM" + "6" * 32
    assert outcomes.record_status(broadcast.id, early, "delivered")  # the callback beat the sent record
    claim = outcomes.claim(broadcast.id, contact, claim_value("t", 1.0)).value
    outcomes.record(broadcast.id, contact, claim, f"sent:{early}", early)
    assert aviso.connection.hget(keys.BROADCAST_SIDS.format(id=broadcast.id), early) == f"{contact}|delivered".encode()
    for status in ("sent", "undelivered", "undelivered", "delivered", "read"):
        outcomes.record_status(broadcast.id, sid, status)
    summary = store.outcomes(broadcast.id)
    assert (summary.delivered, summary.undelivered, summary.delivery_failed) == (2, 0, 0)
    assert not outcomes.record_status(new_id(), sid, "delivered")  # no such broadcast: nothing written
    assert not outcomes.record_status("bad id", sid, "delivered")


def test_correction_audience_is_exactly_the_originals_recipients(store, aviso):
    outcomes = OutcomeStore(aviso.connection)
    original = store.create(make_broadcast())
    sent, skipped = subscribe(aviso, "+12135550151"), subscribe(aviso, "+12135550152")
    later_opted_out = subscribe(aviso, "+12135550153", lang="en")
    for contact, outcome in ((sent, "sent:SM1"), (skipped, "skipped:whatsapp_window_closed"),
                             (later_opted_out, "sent:SM2")):
        claim = outcomes.claim(original.id, contact, claim_value("t", 1.0)).value
        outcomes.record(original.id, contact, claim, outcome)
    subscribe(aviso, "+12135550154")  # subscribed after the original went out
    aviso.connection.hset(contact_redis_key(later_opted_out), "opted_out", "1")
    correction = make_broadcast(kind="correction", corrects=original.id, schools=())
    assert [r.contact for r in store.audience(correction)] == [sent]
    with pytest.raises(OriginalUnavailable):
        store.audience(make_broadcast(kind="correction", corrects=new_id()))
    never_sent = store.create(make_broadcast())
    with pytest.raises(OriginalUnavailable):
        store.audience(make_broadcast(kind="correction", corrects=never_sent.id))


def test_bulk_claims_answer_as_single_claims_do_with_the_encrypted_number(store, aviso):
    outcomes = OutcomeStore(aviso.connection)
    one, many = store.create(make_broadcast()), store.create(make_broadcast())
    seen = int(time.time()) - 60
    contacts = ["b" * 32, subscribe(aviso, "+12135550161", opted_out=True), subscribe(aviso, "+12135550162"),
                subscribe(aviso, "+12135550163", lang="en", channel="whatsapp", wa_seen=seen),
                subscribe(aviso, "+12135550164")]
    for broadcast in (one, many):  # another run holds the last one
        outcomes.claim(broadcast.id, contacts[-1], claim_value("other", 1.0))
    singles = [outcomes.claim(one.id, contact, claim_value("t", 2.0)) for contact in contacts]
    bulk = outcomes.claim_many(many.id, contacts, claim_value("t", 2.0))
    assert bulk == singles
    assert [c.state for c in bulk] == ["recorded", "recorded", "claimed", "claimed", "held"]
    assert (bulk[3].language, bulk[3].channel, bulk[3].wa_seen) == ("en", "whatsapp", seen)
    assert [aviso.keyring.decrypt(c.number_token) for c in bulk[2:4]] == ["+12135550162", "+12135550163"]
    assert store.outcomes(one.id).skipped == store.outcomes(many.id).skipped == {"contact_gone": 1, "opted_out": 1}


def test_bulk_records_compare_and_set_each_claim_and_count_once(store, aviso):
    outcomes = OutcomeStore(aviso.connection)
    broadcast = store.create(make_broadcast())
    first, second, third = (subscribe(aviso, f"+1213555017{n}") for n in range(3))
    claims = [c.value for c in outcomes.claim_many(broadcast.id, [first, second, third], claim_value("t", 1.0))]
    sid = "SM" + "7" * 32
    records = [(first, claims[0], f"sent:{sid}", sid), (second, claims[1], "failed:21211", ""),
               (third, claims[2], "", "")]
    assert outcomes.record_many(broadcast.id, records) == 3
    assert outcomes.record_many(broadcast.id, records) == 0  # a second time: every claim is gone
    assert outcomes.outcome_of(broadcast.id, first) == f"sent:{sid}"
    assert outcomes.outcome_of(broadcast.id, third) is None  # dropped: pending again
    assert aviso.connection.hget(keys.BROADCAST_SIDS.format(id=broadcast.id), sid) == first.encode()
    aviso.connection.hset(keys.BROADCAST.format(id=broadcast.id), "audience", 3)
    summary = store.outcomes(broadcast.id)
    assert (summary.sent, summary.failed, summary.pending) == (1, {"21211": 1}, 1)


def test_the_outbox_sends_a_broadcast_exactly_once_without_a_twilio_account(store, aviso, app):
    from bot.broadcasts import fanout
    from bot.twilio.outbox import OutboxSender

    numbers = [f"+121355501{80 + n}" for n in range(6)]
    contacts = [subscribe(aviso, number) for number in numbers]
    broadcast = store.create(make_broadcast())
    policy = fanout.Policy(batch_size=3, concurrency=2)
    with app.app_context():
        assert isinstance(aviso.sender, OutboxSender)
        jobs.start_broadcast(broadcast.id, fanout.asdict(policy))
        aviso.connection.hset(contact_redis_key(contacts[0]), "opted_out", "1")  # STOP after the snapshot
        for batch in range(2):
            jobs.send_batch(broadcast.id, batch)
            jobs.send_batch(broadcast.id, batch)  # again: nothing twice
    assert store.get(broadcast.id).status == DONE
    summary = store.outcomes(broadcast.id)
    assert (summary.sent, summary.skipped, summary.pending) == (5, {"opted_out": 1}, 0)
    sent = [aviso.sender.messages_for(Address("sms", number)) for number in numbers]
    assert [[m["body"] for m in messages] for messages in sent] == [[]] + [[ES_TEXT]] * 5


def test_verify_calls_an_alert_genuine_once_it_started_going_out_even_if_cancelled_later(store, aviso):
    scheduled = store.create(make_broadcast())
    store.transition(scheduled.id, CANCELLED)  # cancelled before anyone got it: no alert
    assert aviso.alert_facts(scheduled.code) is None
    stopped = store.create(make_broadcast())
    store.transition(stopped.id, SENDING)
    store.transition(stopped.id, CANCELLED)  # some families got it before the cancel
    facts = aviso.alert_facts(stopped.code)
    assert facts is not None and facts.code == stopped.code and facts.corrected_by == ""


def test_verify_names_the_correction_of_an_alert_once_the_correction_went_out(store, aviso):
    original = store.create(make_broadcast())
    store.transition(original.id, SENDING)
    correction = store.create(make_broadcast(kind="correction", corrects=original.id))
    assert aviso.alert_facts(original.code).corrected_by == ""  # approved, not sent yet
    store.transition(correction.id, SENDING)
    assert aviso.alert_facts(original.code).corrected_by == correction.code


def test_staff_see_when_a_scheduled_broadcast_goes_out(store, aviso, app, runner, cli_env):
    from datetime import UTC, datetime, timedelta

    from bot.broadcasts import fanout
    from bot.cli.main import cli

    broadcast = store.create(make_broadcast())
    when = datetime.now(UTC) + timedelta(hours=3)
    fanout.schedule(aviso.connection, broadcast.id, when)
    assert store.get(broadcast.id).starts_at == when.replace(microsecond=when.microsecond)
    result = runner.invoke(cli, ["broadcast", "status", broadcast.id, "--no-watch"], env=cli_env)
    local = when.astimezone(aviso.settings.timezone)
    assert result.exit_code == 0 and f"goes out at {local:%Y-%m-%d %H:%M %Z}" in result.output
