"""The registration store: atomic seats, the waitlist, promotion, FORGET, closing; counts and attendance sheets."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from bot.content.model import Content
from bot.conversation.turn import CancelRegistration, Register
from bot.conversation.workshops import format_when
from bot.people import contacts
from bot.services import conversations
from bot.store import keys
from bot.workshops import registrations

from .workshops_support import SIGNUP, content_with, make_contact, numbers, on, publish, starts, workshop


@pytest.fixture
def content(shipped_content) -> Content:
    return content_with(shipped_content, workshop("kyr", on(0), capacity=2, title="Rights"),
                        workshop("open", on(1), capacity=0, title="Open"))


def fields(aviso, key: str) -> tuple:
    return tuple((aviso.connection.hget(contacts.contact_redis_key(key), f) or b"").decode()
                 for f in ("workshops", "waitlisted"))


_clock = itertools.count()


def sign_up(aviso, content, key, workshop_id="kyr", waitlist=True) -> str:
    """Sign up, a second after the previous sign-up (sign-up order is by time)."""
    moment = SIGNUP + timedelta(seconds=next(_clock))
    return registrations.register(aviso.connection, key, content.workshop(workshop_id), moment,
                                  waitlist=waitlist).decode()


def test_seats_then_waitlist_then_full(aviso, content):
    a, b, c, d = (make_contact(aviso, n) for n in numbers(4))
    assert [sign_up(aviso, content, k) for k in (a, b, c)] == ["seat", "seat", "waitlist"]
    assert sign_up(aviso, content, d, waitlist=False) == "full"
    assert sign_up(aviso, content, a) == "already_seat" and sign_up(aviso, content, c) == "already_waitlist"
    assert fields(aviso, a) == ("kyr", "") and fields(aviso, c) == ("", "kyr") and fields(aviso, d) == ("", "")
    assert registrations.registrants(aviso.connection, "kyr") == [a, b]
    assert registrations.registrants(aviso.connection, "kyr", waitlist=True) == [a, b, c]
    assert aviso.connection.ttl(contacts.contact_redis_key(a)) == -1
    assert aviso.connection.ttl(contacts.contact_redis_key(d)) > 0  # turned away: still expires
    assert 0 < aviso.connection.ttl(registrations.seats_key("kyr"))  # deleted after the workshop at the latest


def test_no_limit_when_capacity_is_zero(aviso, content):
    assert {sign_up(aviso, content, make_contact(aviso, n), "open") for n in numbers(5)} == {"seat"}


def test_capacity_holds_when_many_sign_up_at_once(aviso, content):
    people = [make_contact(aviso, n) for n in numbers(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda k: sign_up(aviso, content, k, waitlist=False), people))
    assert sorted(outcomes).count("seat") == 2 and outcomes.count("full") == 38
    assert aviso.connection.zcard(registrations.seats_key("kyr")) == 2


def test_nobody_jumps_the_waitlist_when_a_seat_is_free(aviso, content):
    a, b, c, d = (make_contact(aviso, n) for n in numbers(4))
    for key in (a, b, c):
        sign_up(aviso, content, key)
    aviso.connection.zrem(registrations.seats_key("kyr"), a)  # a seat frees without a promotion (say, by hand)
    assert sign_up(aviso, content, d) == "waitlist"


def test_cancel_promotes_the_first_on_the_waitlist_skipping_opted_out_and_dropping_gone(aviso, content):
    a, b, stopped, gone, waiting = (make_contact(aviso, n) for n in numbers(5))
    for key in (a, b, stopped, gone, waiting):
        sign_up(aviso, content, key)
    aviso.connection.hset(contacts.contact_redis_key(stopped), "opted_out", "1")
    aviso.connection.delete(contacts.contact_redis_key(gone))
    answer = registrations.cancel(aviso.connection, a, "kyr", 2)
    assert [x.decode() for x in answer] == ["seat", waiting]
    assert registrations.registrants(aviso.connection, "kyr", waitlist=True) == [b, waiting, stopped]
    assert fields(aviso, a) == ("", "") and fields(aviso, waiting) == ("kyr", "")
    assert aviso.connection.smembers(keys.WORKSHOP_PROMOTED.format(id="kyr")) == {waiting.encode()}
    assert [x.decode() for x in registrations.cancel(aviso.connection, stopped, "kyr")] == ["waitlist"]


def test_apply_runs_a_turns_effects_in_one_round_trip_and_reports_surprises(aviso, content):
    a, b, c = (make_contact(aviso, n) for n in numbers(3))
    for key in (a, b):
        sign_up(aviso, content, key)
    results = registrations.apply(aviso.connection, c, [Register("kyr")], content, SIGNUP)
    assert [(r.workshop, r.outcome) for r in results] == [("kyr", "full")]
    state = contacts.state_from_hash({b"lang": b"es", b"workshops": b"kyr"})
    assert registrations.seats_left_after(state, results) == {"kyr": 0}
    freed = registrations.apply(aviso.connection, a, [CancelRegistration("kyr")], content, SIGNUP)
    assert freed[0].cancelled and freed[0].promoted == ()  # c was turned away, not waiting
    assert registrations.seats_left_after(state, freed) == {}


def test_forget_contact_frees_everything_and_queues_the_promotion_notice(aviso, content):
    a, b, c = (make_contact(aviso, n) for n in numbers(3))
    for key in (a, b, c):
        sign_up(aviso, content, key)
    sign_up(aviso, content, a, "open")
    conversations.forget(aviso.connection, a)
    assert not aviso.connection.exists(contacts.contact_redis_key(a))
    assert registrations.registrants(aviso.connection, "kyr") == [b, c]
    assert registrations.registrants(aviso.connection, "open") == []
    from rq import Queue

    jobs = Queue("default", connection=aviso.connection).jobs
    assert [(j.func_name, j.args) for j in jobs if j.func_name.endswith("send_promotions")] == [
        ("bot.services.jobs.send_promotions", ("kyr",))]


def test_close_deletes_a_workshops_registrations_and_lets_contacts_expire_again(aviso, content):
    a, b = (make_contact(aviso, n) for n in numbers(2))
    sign_up(aviso, content, a)
    sign_up(aviso, content, a, "open")
    sign_up(aviso, content, b)
    aviso.connection.hset(registrations.registration_key("kyr", a), "rem:1d:1", "sent:SM1")
    assert registrations.close(aviso.connection, "kyr", 3600) == 2
    for name in (registrations.seats_key("kyr"), registrations.registration_key("kyr", a),
                 keys.WORKSHOP_META.format(id="kyr")):
        assert not aviso.connection.exists(name)
    assert fields(aviso, a) == ("open", "") and aviso.connection.ttl(contacts.contact_redis_key(a)) == -1
    assert fields(aviso, b) == ("", "") and 0 < aviso.connection.ttl(contacts.contact_redis_key(b)) <= 3600
    assert registrations.registered_workshops(aviso.connection) == ["open"]


def test_counts_and_attendance_name_nobody(aviso, content):
    people = [make_contact(aviso, n, lang) for n, lang in zip(numbers(4), ["es", "en", "es", "ko"], strict=True)]
    for key in people:
        sign_up(aviso, content, key)
    counts = registrations.counts(aviso.connection, "kyr")
    assert (counts.seats, counts.waitlist) == (2, 2)
    assert counts.seats_by_language == {"en": 1, "es": 1} and counts.waitlist_by_language == {"es": 1, "ko": 1}
    rows = registrations.attendance(aviso.connection, "kyr")
    assert [(r.number, r.language, r.seat) for r in rows] == [(1, "es", True), (2, "en", True), (3, "es", False),
                                                             (4, "ko", False)]


def test_cli_lists_counts_and_prints_an_attendance_sheet_without_numbers(aviso, shipped_content, runner, cli_env):
    from bot.cli.main import cli

    content = publish(aviso, shipped_content, workshop("kyr", on(0), capacity=2, title="Rights"))
    phones = numbers(3)
    people = [make_contact(aviso, n, lang) for n, lang in zip(phones, ["es", "en", "es"], strict=True)]
    for key in people:
        sign_up(aviso, content, key)
    listed = runner.invoke(cli, ["workshops", "list"], env=cli_env)
    assert listed.exit_code == 0, listed.output
    assert "kyr" in listed.output and "   2/2 " in listed.output and "en 1/0, es 1/1" in listed.output
    sheet = runner.invoke(cli, ["workshops", "attendance", "kyr"], env=cli_env)
    assert sheet.exit_code == 0, sheet.output
    when = format_when(content, "en", starts(0))
    assert "Rights (en) (kyr)" in sheet.output and f"{when} - 19:30, Belmont High School" in sheet.output
    lines = sheet.output.splitlines()
    assert lines[-3].split()[:3] == ["1", "Spanish", "seat"] and lines[-1].split()[:3] == ["3", "Spanish", "waitlist"]
    as_csv = runner.invoke(cli, ["workshops", "attendance", "kyr", "--csv"], env=cli_env)
    assert as_csv.output.splitlines()[2] == "1,Spanish,seat,"
    for output in (listed.output, sheet.output, as_csv.output):
        assert not any(p[2:] in output or p[-7:] in output for p in phones)
        assert not any(k in output for k in people)
    missing = runner.invoke(cli, ["workshops", "attendance", "nope"], env=cli_env)
    assert missing.exit_code != 0 and "no workshop nope" in missing.output
