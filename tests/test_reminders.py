"""Reminders and notices: exact due times (daylight saving too), exactly-once jobs, content changes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue, Worker
from rq.registry import ScheduledJobRegistry

from bot import create_app, services
from bot.config import ConfigError, load_settings
from bot.content.encoding import for_sms
from bot.conversation.workshops import describe, format_when
from bot.people import contacts
from bot.people.identity import SMS, WHATSAPP, Address
from bot.services import conversations
from bot.services import jobs as job_functions
from bot.store import queues
from bot.twilio.fake import FakeTwilio
from bot.workshops import changes as workshop_changes
from bot.workshops import registrations
from bot.workshops import schedule as schedule_module
from bot.workshops.reminders import Incomplete
from bot.workshops.schedule import Offset, due_times, schedule

from .conftest import ACCOUNT_SID, AUTH_TOKEN
from .workshops_support import LA, SIGNUP, content_with, make_contact, numbers, on, publish, starts, workshop


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


DUE = [
    # (workshop starts, local), offset, due (local wall clock, UTC offset), due in UTC
    ("2027-06-03T18:00", "1d", "2027-06-02 18:00 -0700", utc(2027, 6, 3, 1, 0)),
    ("2027-06-03T18:00", "2h", "2027-06-03 16:00 -0700", utc(2027, 6, 3, 23, 0)),
    ("2027-06-03T18:00", "30m", "2027-06-03 17:30 -0700", utc(2027, 6, 4, 0, 30)),
    # Fall back, Sunday 2026-11-01 at 2:00 PDT -> 1:00 PST. "1d" keeps the wall clock: 25 real hours.
    ("2026-11-01T18:00", "1d", "2026-10-31 18:00 -0700", utc(2026, 11, 1, 1, 0)),
    ("2026-11-01T18:00", "2h", "2026-11-01 16:00 -0800", utc(2026, 11, 2, 0, 0)),
    ("2026-11-02T10:00", "1d", "2026-11-01 10:00 -0800", utc(2026, 11, 1, 18, 0)),
    ("2026-11-01T03:00", "2h", "2026-11-01 01:00 -0800", utc(2026, 11, 1, 9, 0)),  # the second 1:00 am
    ("2026-11-02T01:30", "1d", "2026-11-01 01:30 -0700", utc(2026, 11, 1, 8, 30)),  # ambiguous: the first
    # Spring forward, Sunday 2027-03-14 at 2:00 PST -> 3:00 PDT. "1d" keeps the wall clock: 23 real hours.
    ("2027-03-14T18:00", "1d", "2027-03-13 18:00 -0800", utc(2027, 3, 14, 2, 0)),
    ("2027-03-14T18:00", "2h", "2027-03-14 16:00 -0700", utc(2027, 3, 14, 23, 0)),
    ("2027-03-15T10:00", "1d", "2027-03-14 10:00 -0700", utc(2027, 3, 14, 17, 0)),
    ("2027-03-14T03:30", "2h", "2027-03-14 00:30 -0800", utc(2027, 3, 14, 8, 30)),  # 2 real hours
    ("2027-03-15T02:30", "1d", "2027-03-14 03:30 -0700", utc(2027, 3, 14, 10, 30)),  # 2:30 never happens
]


@pytest.mark.parametrize(("starts", "offset", "local", "in_utc"), DUE)
def test_due_times_are_exact_across_daylight_saving(starts, offset, local, in_utc):
    due = Offset.parse(offset).due(datetime.fromisoformat(starts).replace(tzinfo=LA))
    assert due.strftime("%Y-%m-%d %H:%M %z") == local
    assert due.astimezone(UTC) == in_utc


def test_schedule_skips_reminders_already_due_when_someone_signs_up_late(shipped_content):
    w = content_with(shipped_content, workshop("w", "2026-11-01T18:00")).workshop("w")
    early = datetime(2026, 10, 1, tzinfo=LA)
    assert [(o, d.astimezone(UTC)) for o, d in schedule(w, ("1d", "2h"), early)] == [
        ("1d", utc(2026, 11, 1, 1, 0)), ("2h", utc(2026, 11, 2, 0, 0))]
    assert [o for o, _ in schedule(w, ("1d", "2h"), datetime(2026, 11, 1, 9, 0, tzinfo=LA))] == ["2h"]
    assert schedule(w, ("1d", "2h"), datetime(2026, 11, 1, 17, 0, tzinfo=LA)) == []
    assert due_times(w.starts, ("2d", "1d"), early)[0][0] == "2d"


@pytest.mark.parametrize(("value", "offsets"), [(None, ("1d", "2h")), ("1d,2h", ("1d", "2h")),
                                                (" 2D , 3h,45m", ("2d", "3h", "45m"))])
def test_reminder_offsets_setting(tmp_path, value, offsets):
    environ = {**development(tmp_path), **({"AVISO_REMINDER_OFFSETS": value} if value else {})}
    assert load_settings(environ, dotenv_path=None).reminder_offsets == offsets


@pytest.mark.parametrize("value", ["1w", "2h,2h", "0d", "tomorrow", ",", "1.5h"])
def test_bad_reminder_offsets_fail_at_startup_with_one_line(tmp_path, value):
    with pytest.raises(ConfigError, match="AVISO_REMINDER_OFFSETS"):
        load_settings({**development(tmp_path), "AVISO_REMINDER_OFFSETS": value}, dotenv_path=None)


def development(tmp_path) -> dict[str, str]:
    """A developer's settings, the generated key kept in the test's own folder."""
    return {"AVISO_ENV": "development", "AVISO_DATA_DIR": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}


# --- jobs, with the clock in the test's hand ---

KYR = workshop("kyr", on(0), capacity=2, title="Rights")
PLAN = workshop("plan", on(7), title="Plan")
KYR_STARTS = starts(0)
DAY_BEFORE = starts(-1)
EPOCH_1D = int(DAY_BEFORE.timestamp())


@pytest.fixture
def content(aviso, shipped_content):
    return publish(aviso, shipped_content, KYR, PLAN)


@pytest.fixture
def family(aviso, content):
    """Two seat holders (Spanish SMS, English WhatsApp) and one on the waitlist, all signed up on SIGNUP."""
    phones = {"es": "+12135550101", "en": "+12135550102", "wait": "+12135550103"}
    people = {"es": make_contact(aviso, phones["es"], "es"),
              "en": make_contact(aviso, phones["en"], "en", channel=WHATSAPP),
              "wait": make_contact(aviso, phones["wait"], "es")}
    for n, name in enumerate(("es", "en", "wait")):
        registrations.register(aviso.connection, people[name], content.workshop("kyr"), SIGNUP + timedelta(seconds=n),
                               waitlist=True)
    return {"keys": people, "phones": phones}


def outbox(aviso, number: str, channel: str = SMS) -> list[str]:
    return [m["body"] for m in aviso.sender.messages_for(Address(channel, number))]


def fire(app, *args, **kwargs) -> str:
    with app.app_context():
        return job_functions.send_reminders(*args, **kwargs)


def test_the_day_reminder_goes_to_each_seat_holder_once_in_their_language(app, aviso, content, family):
    assert fire(app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE) == "reminder 1d for kyr: 2 sent"
    assert fire(app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE + timedelta(minutes=5)) == "reminder 1d for kyr: 2 done"
    kyr = content.workshop("kyr")
    written = content.text("es", "reminder.day", **describe(content, "es", kyr))
    assert outbox(aviso, family["phones"]["es"]) == [for_sms(written, "es")]  # SMS: folded where that saves one
    assert outbox(aviso, family["phones"]["en"], WHATSAPP) == [
        content.text("en", "reminder.day", **describe(content, "en", kyr))]
    assert outbox(aviso, family["phones"]["wait"]) == []  # the waitlist gets no reminder
    assert outbox(aviso, family["phones"]["es"])[0].startswith(
        f"Recordatorio: Rights (es), {format_when(content, 'es', KYR_STARTS)}, Belmont High School")
    record = aviso.connection.hgetall(registrations.registration_key("kyr", family["keys"]["es"]))
    assert list(record) == [f"rem:1d:{EPOCH_1D}".encode()] and record[f"rem:1d:{EPOCH_1D}".encode()].startswith(
        b"sent:SM")


def test_the_hours_reminder_has_its_own_text(app, aviso, content, family):
    due = KYR_STARTS - timedelta(hours=2)
    assert fire(app, "kyr", "2h", int(due.timestamp()), now=due) == "reminder 2h for kyr: 2 sent"
    assert outbox(aviso, family["phones"]["es"])[0].startswith("Ya pronto: Rights (es)")


def test_nothing_for_opted_out_forgotten_or_freed_seats(app, aviso, content, family):
    people = family["keys"]
    aviso.connection.hset(contacts.contact_redis_key(people["es"]), "opted_out", "1")
    conversations.forget(aviso.connection, people["en"])  # the waitlist's first gets the seat...
    assert fire(app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE) == "reminder 1d for kyr: 1 opted_out, 1 sent"
    assert outbox(aviso, family["phones"]["wait"])  # ...and its reminder
    registrations.cancel(aviso.connection, people["wait"], "kyr")
    due = KYR_STARTS - timedelta(hours=2)
    assert fire(app, "kyr", "2h", int(due.timestamp()), now=due) == "reminder 2h for kyr: 1 opted_out"
    assert len(outbox(aviso, family["phones"]["wait"])) == 1 and outbox(aviso, family["phones"]["es"]) == []


def test_who_signs_up_after_a_reminder_was_due_does_not_get_it(app, aviso, content, family):
    late = make_contact(aviso, "+12135550109", "es")
    registrations.cancel(aviso.connection, family["keys"]["en"], "kyr")  # wait is promoted
    registrations.cancel(aviso.connection, family["keys"]["wait"], "kyr")
    registrations.register(aviso.connection, late, content.workshop("kyr"), DAY_BEFORE + timedelta(seconds=1))
    assert fire(app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE + timedelta(minutes=1)) == "reminder 1d for kyr: 1 sent"
    assert outbox(aviso, "+12135550109") == []


@pytest.mark.parametrize(("offset", "now", "expected"), [
    ("1d", DAY_BEFORE - timedelta(minutes=2), "not due yet"),
    ("1d", DAY_BEFORE + timedelta(hours=12, minutes=1), "too late: nothing sent"),
    ("2h", KYR_STARTS, "too late: nothing sent"),
    ("1d", DAY_BEFORE - timedelta(seconds=30), "reminder 1d for kyr: 2 sent"),  # the scheduler may be early
])
def test_reminders_only_go_near_their_time(app, aviso, content, family, offset, now, expected):
    due = Offset.parse(offset).due(KYR_STARTS)
    assert fire(app, "kyr", offset, int(due.timestamp()), now=now) == expected


def test_a_removed_or_moved_workshop_sends_no_stale_reminder(app, aviso, shipped_content, content, family):
    moved = dict(KYR, starts=on(1))
    publish(aviso, shipped_content, moved, PLAN)
    assert fire(app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE) == "workshop moved: this reminder was rescheduled"
    publish(aviso, shipped_content, PLAN)
    assert fire(app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE) == "workshop gone: nothing sent"
    assert outbox(aviso, family["phones"]["es"]) == []


DAY_MARKER = f"rem:1d:{EPOCH_1D}"  # a registration's claim field for the day-before reminder


def leave_dead_claims(aviso, content, family) -> str:
    """A worker died after Twilio accepted the day-before reminder (es), another before sending it (en);
    return the reminder's body."""
    kyr, people = content.workshop("kyr"), family["keys"]
    body = for_sms(content.text("es", "reminder.day", **describe(content, "es", kyr)), "es")  # as an SMS carries it
    aviso.sender.send(Address(SMS, family["phones"]["es"]), body)
    dead = int((datetime.now(UTC).timestamp() - 60) * 1000)
    for person in (people["es"], people["en"]):
        aviso.connection.hset(registrations.registration_key("kyr", person), DAY_MARKER, f"sending:{dead}:deadbeef")
    return body


def test_a_claim_left_by_a_dead_worker_is_checked_before_sending_again(app, aviso, content, family):
    """One worker died after Twilio accepted the message (es), another before sending it (en)."""
    body = leave_dead_claims(aviso, content, family)
    assert fire(app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE) == "reminder 1d for kyr: 1 done, 1 sent"
    assert outbox(aviso, family["phones"]["es"]) == [body]
    assert len(outbox(aviso, family["phones"]["en"], WHATSAPP)) == 1


def test_too_late_to_send_but_dead_claims_are_still_settled(app, aviso, content, family):
    leave_dead_claims(aviso, content, family)
    people, marker = family["keys"], DAY_MARKER
    assert fire(app, "kyr", "1d", EPOCH_1D, now=KYR_STARTS) == (
        "too late: nothing sent; claims settled for kyr: 1 done, 1 too_late")
    assert aviso.connection.hget(registrations.registration_key("kyr", people["es"]), marker).startswith(b"sent:")
    assert aviso.connection.hget(registrations.registration_key("kyr", people["en"]), marker) is None
    assert outbox(aviso, family["phones"]["en"], WHATSAPP) == []
    assert fire(app, "kyr", "1d", EPOCH_1D, now=KYR_STARTS) == "too late: nothing sent"


def test_a_claim_held_right_now_by_another_worker_makes_the_job_retry_later(app, aviso, content, family):
    marker, now_ms = f"rem:1d:{EPOCH_1D}", int(datetime.now(UTC).timestamp() * 1000)
    aviso.connection.hset(registrations.registration_key("kyr", family["keys"]["es"]), marker, f"sending:{now_ms}:x")
    with pytest.raises(Incomplete, match="1 busy, 1 sent"):
        fire(app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE)
    assert outbox(aviso, family["phones"]["es"]) == []


def test_promotion_notice_goes_once_and_not_after_the_seat_was_freed(app, aviso, content, family):
    people = family["keys"]
    registrations.cancel(aviso.connection, people["es"], "kyr")
    with app.app_context():
        assert job_functions.send_promotions("kyr", now=SIGNUP) == "promotions for kyr: 1 sent"
        registrations.cancel(aviso.connection, people["en"], "kyr")
        registrations.register(aviso.connection, people["es"], content.workshop("kyr"), SIGNUP, waitlist=True)
        registrations.cancel(aviso.connection, people["wait"], "kyr")  # es promoted, then...
        registrations.cancel(aviso.connection, people["es"], "kyr")  # ...frees it before the news went
        assert job_functions.send_promotions("kyr", now=SIGNUP) == "nobody to tell"  # freeing it took it off the list
    assert outbox(aviso, family["phones"]["wait"])[0].startswith("Buenas noticias: se abrio un lugar en Rights (es)")
    assert outbox(aviso, family["phones"]["es"]) == []


# --- through a real Twilio client (the fake server) ---

@pytest.fixture
def fake():
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, messaging_services=["MG" + "d" * 32]) as server:
        yield server


@pytest.fixture
def twilio_app(app, settings, fake):
    """A second app on the same Redis that sends through the fake Twilio with the real twilio library."""
    app2 = create_app(settings.with_overrides(twilio_account_sid=ACCOUNT_SID, twilio_api_base_url=fake.url,
                                              twilio_messaging_service_sid="MG" + "d" * 32))
    yield app2
    services.current_from(app2).connection.close()


def test_twilio_errors_are_retried_and_nothing_is_sent_twice(twilio_app, aviso, content, family, fake):
    fake.configure(error_5xx_count=1)
    with pytest.raises(Incomplete, match="1 retry, 1 sent"):
        fire(twilio_app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE)
    assert fire(twilio_app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE) == "reminder 1d for kyr: 1 done, 1 sent"
    fake.configure(recipient_errors={family["phones"]["wait"]: 21610})
    aviso.connection.zadd(registrations.seats_key("kyr"), {family["keys"]["wait"]: 1})  # a third seat
    assert fire(twilio_app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE) == "reminder 1d for kyr: 2 done, 1 failed:21610"
    accepted = [m["to"] for m in fake.messages()]
    assert sorted(accepted) == sorted([family["phones"]["es"], "whatsapp:" + family["phones"]["en"]])
    assert fake.duplicates() == {}
    stopped = aviso.connection.hget(contacts.contact_redis_key(family["keys"]["wait"]), "opted_out")
    assert stopped == b"1"  # Twilio says it texted STOP: Aviso stops too
    assert fire(twilio_app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE) == "reminder 1d for kyr: 2 done, 1 opted_out"


# --- content changes: notices and rescheduled reminders ---

def scheduled(aviso) -> dict[str, int]:
    registry = ScheduledJobRegistry(queues.DEFAULT, connection=aviso.connection)
    return {job_id: int(registry.get_scheduled_time(job_id).timestamp()) for job_id in registry.get_job_ids()
            if job_id.startswith("ws-rem-kyr")}


def test_publishing_and_rollback_queue_a_sync(aviso, shipped_content):
    publish(aviso, shipped_content, KYR)
    jobs = Queue(queues.LOW, connection=aviso.connection).jobs
    assert "bot.services.jobs.sync_workshops" in [j.func_name for j in jobs]
    aviso.content.rollback()
    assert len(Queue(queues.LOW, connection=aviso.connection).jobs) == len(jobs) + 1


def test_a_changed_workshop_notifies_each_registrant_once_and_moves_its_reminders(app, aviso, shipped_content,
                                                                                  content, family):
    first = workshop_changes.sync(aviso, now=SIGNUP)
    assert first.changes == () and first.serial == 0
    two_hours_before = int((KYR_STARTS - timedelta(hours=2)).timestamp())
    assert scheduled(aviso) == {"ws-rem-kyr-1d": EPOCH_1D, "ws-rem-kyr-2h": two_hours_before}
    moved = dict(KYR, starts=on(1, "19:00"), place="Roosevelt High School")
    new = publish(aviso, shipped_content, moved, PLAN)
    report = workshop_changes.sync(aviso, now=SIGNUP)
    assert [(c.workshop, c.kind) for c in report.changes] == [("kyr", "changed")]
    assert report.notices == ("ws-changed-kyr-1",) and report.serial == 1
    notice = Queue(queues.DEFAULT, connection=aviso.connection).fetch_job("ws-changed-kyr-1")
    assert notice.args == ("kyr", "changed", new.version, "1") and notice.kwargs == {}
    assert scheduled(aviso) == {"ws-rem-kyr-1d": int(starts(0, "19:00").timestamp()),
                                "ws-rem-kyr-2h": int(starts(1, "17:00").timestamp())}
    with app.app_context():
        notify = lambda: job_functions.send_notices("kyr", "changed", new.version, "1", now=SIGNUP)  # noqa: E731
        assert notify() == "changed notices for kyr: 3 sent"
        assert notify() == "changed notices for kyr: 3 done"
    assert outbox(aviso, family["phones"]["wait"]) == [
        f"CAMBIO: Rights (es) ahora es {format_when(new, 'es', starts(1, '19:00'))}, Roosevelt High School. "
        "Sigue inscrito. ¿No puede ir? Envie MIS TALLERES para dejar su lugar."]
    again = workshop_changes.sync(aviso, now=SIGNUP)
    assert again.changes == () and again.serial == 1  # handled once
    assert fire(app, "kyr", "1d", EPOCH_1D, now=DAY_BEFORE) == "workshop moved: this reminder was rescheduled"
    new_due = starts(0, "19:00")
    assert fire(app, "kyr", "1d", int(new_due.timestamp()), now=new_due) == "reminder 1d for kyr: 2 sent"


def test_a_removed_workshop_sends_a_cancellation_and_ends_its_registrations(app, aviso, shipped_content, content,
                                                                            family):
    workshop_changes.sync(aviso, now=SIGNUP)
    publish(aviso, shipped_content, PLAN)
    report = workshop_changes.sync(aviso, now=SIGNUP)
    assert [(c.workshop, c.kind) for c in report.changes] == [("kyr", "cancelled")]
    with app.app_context():
        assert job_functions.send_notices("kyr", "cancelled", content.version, str(report.serial), now=SIGNUP) == (
            "cancelled notices for kyr: 3 sent")
    assert outbox(aviso, family["phones"]["en"], WHATSAPP) == [
        f"CANCELLED: Rights (en) ({format_when(content, 'en', KYR_STARTS)}) will not take place. We are sorry. "
        "Text WORKSHOPS to see other workshops."]
    assert registrations.registrants(aviso.connection, "kyr", waitlist=True) == []
    assert "kyr" not in registrations.registered_workshops(aviso.connection)
    for person in family["keys"].values():
        assert aviso.connection.hget(contacts.contact_redis_key(person), "workshops") is None
        assert aviso.connection.ttl(contacts.contact_redis_key(person)) > 0  # nothing keeps it any more


def test_more_seats_promote_from_the_waitlist(app, aviso, shipped_content, content, family):
    workshop_changes.sync(aviso, now=SIGNUP)
    publish(aviso, shipped_content, dict(KYR, capacity=3), PLAN)
    report = workshop_changes.sync(aviso, now=SIGNUP)
    assert [(c.workshop, c.kind) for c in report.changes] == [("kyr", "more_seats")]
    assert registrations.registrants(aviso.connection, "kyr")[-1] == family["keys"]["wait"]
    jobs = Queue(queues.DEFAULT, connection=aviso.connection).jobs
    assert any(j.func_name == "bot.services.jobs.send_promotions" and j.args == ("kyr",) for j in jobs)


def test_a_due_reminder_fires_through_a_real_worker_and_its_scheduler(app, aviso, shipped_content):
    """As scheduled by a sync, run by RQ's own scheduler and a forking worker in burst mode (real time)."""
    due = datetime.now(LA).replace(microsecond=0) + timedelta(seconds=2)
    starts = due + timedelta(hours=2)
    content = publish(aviso, shipped_content, workshop("now", starts.strftime("%Y-%m-%dT%H:%M:%S")))
    person = make_contact(aviso, numbers(1, 500)[0], "es")
    registrations.register(aviso.connection, person, content.workshop("now"), datetime.now(LA) - timedelta(hours=1))
    assert workshop_changes.sync(aviso).scheduled == 1  # the 2h reminder; the day one is already past
    job = Queue(queues.DEFAULT, connection=aviso.connection).fetch_job(schedule_module.reminder_job_id("now", "2h"))
    assert job.kwargs == {} and job.timeout == schedule_module.JOB_TIMEOUT and job.retries_left == 5
    time.sleep(max(0.0, due.timestamp() - time.time()) + 0.1)
    with app.app_context():
        Worker(list(queues.ALL), connection=aviso.connection).work(burst=True, with_scheduler=True,
                                                                   logging_level="WARNING")
    assert outbox(aviso, numbers(1, 500)[0])[0].startswith("Ya pronto: now (es)")
    assert job.return_value(refresh=True) == "reminder 2h for now: 1 sent"


def test_a_restarted_worker_requeues_the_reminders_due_now(app, aviso, content, family):
    with app.app_context():
        assert schedule_module.recover(aviso, now=DAY_BEFORE - timedelta(hours=1)) == []
        queued = schedule_module.recover(aviso, now=DAY_BEFORE + timedelta(minutes=3))
    assert [j.split("-")[:4] for j in queued] == [["ws", "rem", "kyr", "1d"]]
    job = Queue(queues.DEFAULT, connection=aviso.connection).fetch_job(queued[0])
    assert job.args == ("kyr", "1d", EPOCH_1D) and job.kwargs == {}
