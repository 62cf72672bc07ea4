"""Notices to staff by SMS through the fake Twilio (the real twilio library, real RQ, real Redis): approvers
when a broadcast waits for them, a reminder if it still waits, the sender when theirs is approved or sent
back, each in the staff member's dashboard language, each once however often its job runs."""

from __future__ import annotations

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry

from bot.broadcasts.compose import BroadcastRequest
from bot.services import jobs
from bot.store import queues

from .conftest import ACCOUNT_SID, JobRunner
from .test_broadcasts import subscribe
from .test_fanout import SERVICE_SID
from .test_fanout import fake as fake  # noqa: F401, PLC0414  (the fake Twilio fixture)

SENDER, APPROVER, ADMIN, VENICE_APPROVER = "+13105550101", "+13105550102", "+13105550104", "+13105550105"
ACTIVITY = BroadcastRequest(("BELMONT",), "verified", "activity_verified",
                            {"location": "3rd & Loma", "time": "7:45 am"}, verified_by="LAUSD School Police",
                            urgent=True)


@pytest.fixture
def settings(settings, fake):
    return settings.with_overrides(twilio_account_sid=ACCOUNT_SID, twilio_messaging_service_sid=SERVICE_SID,
                                   twilio_api_base_url=fake.url, quiet_hours=None, approval_reminder_minutes=10)


@pytest.fixture
def staff(aviso):
    known = set(aviso.active_content().schools.by_code)
    add = aviso.roster.add
    people = {"sender": add(SENDER, "Ms. Rivera", "sender", ["BELMONT"], known),
              "approver": add(APPROVER, "Principal Kim", "approver", ["BELMONT"], known),
              "admin": add(ADMIN, "District Admin", "admin", [], known),
              "venice": add(VENICE_APPROVER, "Mr. Novak", "approver", ["VENICE"], known)}
    aviso.roster.set_language(people["approver"].id, "es")  # she uses the dashboard in Spanish
    subscribe(aviso, "+12135550111", school="BELMONT", lang="en")
    return people


def work(app, aviso) -> None:
    with app.app_context():
        JobRunner(list(queues.ALL), connection=aviso.connection).work(burst=True, logging_level="WARNING")


def texts_to(fake, number: str) -> list[str]:
    return [m["body"] for m in fake.messages() if m["to"] == number]


def run_reminder(app, aviso) -> None:
    """Run the scheduled reminder now (as the worker's scheduler would at its time), through RQ."""
    registry = ScheduledJobRegistry(queues.URGENT, connection=aviso.connection)
    queue = Queue(queues.URGENT, connection=aviso.connection)
    for job_id in registry.get_job_ids():
        job = queue.fetch_job(job_id)
        if job.func_name == queues.NOTIFY_APPROVERS:
            registry.remove(job)
            queue.enqueue_job(job)
    work(app, aviso)


def test_approvers_are_texted_in_their_language_and_reminded_once_while_it_waits(app, aviso, fake, staff):
    broadcast = aviso.desk().create(staff["sender"], ACTIVITY)
    registry = ScheduledJobRegistry(queues.URGENT, connection=aviso.connection)
    [reminder_id] = registry.get_job_ids()
    at = registry.get_scheduled_time(reminder_id)
    created = aviso.broadcasts.get(broadcast.id).created_at
    assert 9 * 60 < (at - created).total_seconds() <= 10 * 60 + 5  # AVISO_APPROVAL_REMINDER_MINUTES
    work(app, aviso)
    [notice] = texts_to(fake, APPROVER)
    assert "Ms. Rivera" in notice and "BELMONT" in notice and "aprobación" not in notice  # plain ASCII Spanish
    assert "aprobacion" in notice and f"/dashboard/broadcasts/{broadcast.id}" in notice
    assert texts_to(fake, VENICE_APPROVER) == [] and texts_to(fake, SENDER) == []
    assert texts_to(fake, ADMIN) == []  # the school has its own approver: the district's admins are not woken
    run_reminder(app, aviso)
    assert len(texts_to(fake, APPROVER)) == 2 and "Aviso" in texts_to(fake, APPROVER)[1]
    # the job runs again (a retry, a second scheduler): nobody is texted twice
    assert jobs.notify_approvers.__name__ == "notify_approvers"
    Queue(queues.URGENT, connection=aviso.connection).enqueue(queues.NOTIFY_APPROVERS, broadcast.id, True)
    work(app, aviso)
    assert len(texts_to(fake, APPROVER)) == 2


def test_the_reminder_does_nothing_once_it_is_approved_and_the_sender_hears(app, aviso, fake, staff):
    broadcast = aviso.desk().create(staff["sender"], ACTIVITY)
    work(app, aviso)
    aviso.desk().approve(staff["approver"], broadcast.id)
    run_reminder(app, aviso)
    assert len(texts_to(fake, APPROVER)) == 1  # the first notice only
    [told] = texts_to(fake, SENDER)
    assert told.startswith("Aviso: Principal Kim approved your broadcast for BELMONT")


def test_the_sender_hears_when_theirs_is_sent_back(app, aviso, fake, staff):
    broadcast = aviso.desk().create(staff["sender"], ACTIVITY)
    aviso.desk().reject(staff["approver"], broadcast.id, "Call the police first")
    work(app, aviso)
    [told] = texts_to(fake, SENDER)
    assert "Principal Kim sent back your broadcast for BELMONT" in told and broadcast.id in told
    assert "Call the police" not in told  # the reason is on the page the link opens
    assert texts_to(fake, APPROVER) == []  # decided before the worker ran: no stale "waits for you"


def test_without_an_approver_at_the_school_the_admins_are_told(app, aviso, fake, staff):
    aviso.roster.remove(staff["approver"].id)
    aviso.desk().create(staff["sender"], ACTIVITY)
    work(app, aviso)
    assert len(texts_to(fake, ADMIN)) == 1 and texts_to(fake, VENICE_APPROVER) == []
