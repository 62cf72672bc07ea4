"""Staff sign-in under attack: requests for codes never lock the real staff member out, no useless codes are
texted, an admin can unlock, rostered and unknown numbers cost the same work, and the district's budget of
wrong codes alerts admins and slows sign-in — real Redis, real RQ jobs, the outbox."""

from __future__ import annotations

import re
import threading

import pytest
from rq import Queue

from bot.cli.main import cli
from bot.people import signin
from bot.store import keys, queues
from bot.web.dashboard import auth as dashboard_auth

from .test_dashboard import ADMIN, APPROVER, SENDER, STRANGER, VENICE, codes, enter_code, run_jobs, sign_in, token

ATTACKER_ADDRESS = "203.0.113.66"
NOW = 1_800_000_000.0  # a fixed clock, moved forward by the tests


@pytest.fixture
def staff(aviso):
    """A sender and an approver at Belmont, a sender at Venice, an admin (as in test_dashboard)."""
    known = set(aviso.active_content().schools.by_code)
    people = {"sender": (SENDER, "sender", "BELMONT"), "approver": (APPROVER, "approver", "BELMONT"),
              "venice": (VENICE, "sender", "VENICE"), "admin": (ADMIN, "admin", "BELMONT")}
    return {name: aviso.roster.add(number, name.title(), role, [school], known)
            for name, (number, role, school) in people.items()}


@pytest.fixture
def clock(monkeypatch):
    """The sign-in clock, at NOW until a test moves it."""
    state = {"now": NOW}
    monkeypatch.setattr(dashboard_auth, "clock", lambda: state["now"])
    return state


@pytest.fixture
def attacker(app):
    """A browser on another network that never signed in."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ATTACKER_ADDRESS
    return client


def ask(client, number: str):
    """Ask for a code for a number (nothing is texted until the jobs run)."""
    return client.post("/dashboard/login", data={"phone": number, "csrf_token": token(client)})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_an_attackers_five_requests_do_not_stop_the_real_staff_member_signing_in(app, aviso, staff, attacker,
                                                                                 clock):
    own_phone = sign_in(app.test_client(), aviso, SENDER)  # the staff member's phone signed in yesterday
    assert own_phone.post("/dashboard/logout", data={"csrf_token": token(own_phone, "/dashboard/")}).status_code == 302
    clock["now"] += 24 * 3600
    texted_before = len(codes(aviso, SENDER))
    answers = [ask(attacker, SENDER).status_code for _ in range(5)]
    run_jobs(attacker, aviso)
    assert answers == [302] * signin.FREE_CODES + [429] * (5 - signin.FREE_CODES)
    assert len(codes(aviso, SENDER)) - texted_before == signin.FREE_CODES  # not five codes

    response = ask(own_phone, SENDER)  # the real person, at once, from their own phone
    assert response.status_code == 302
    run_jobs(own_phone, aviso)
    assert enter_code(own_phone, codes(aviso, SENDER)[-1]).status_code == 302
    assert own_phone.get("/dashboard/").status_code == 200


def test_the_staff_member_is_told_once_that_their_number_is_being_hammered(app, aviso, staff, attacker, clock):
    for _ in range(3 * signin.HAMMERED_REQUESTS):
        ask(attacker, SENDER)
    run_jobs(attacker, aviso)
    messages = [m["body"] for m in aviso.sender.messages_for(_address(SENDER))]
    assert sum("keeps asking for staff sign-in codes" in body for body in messages) == 1
    for _ in range(3 * signin.HAMMERED_REQUESTS):  # an unknown number is hammered too: nobody to tell
        ask(attacker, STRANGER)
    run_jobs(attacker, aviso)
    assert aviso.sender.messages_for(_address(STRANGER)) == []


def test_an_attackers_wrong_guesses_never_spend_the_real_staff_members_code(app, aviso, staff, attacker, clock):
    real = app.test_client()  # a browser that never signed in
    ask(real, SENDER)
    run_jobs(real, aviso)
    code = codes(aviso, SENDER)[-1]
    ask(attacker, SENDER)
    for _ in range(signin.TRIES_PER_CODE + 2):
        enter_code(attacker, wrong(code))
    assert enter_code(real, code).status_code == 302


def test_backed_off_requests_text_no_code_and_say_how_long_to_wait(app, aviso, staff, attacker, clock):
    for _ in range(signin.FREE_CODES):
        ask(attacker, SENDER)
    run_jobs(attacker, aviso)
    texted = len(codes(aviso, SENDER))
    refused = ask(attacker, SENDER)
    run_jobs(attacker, aviso)
    assert refused.status_code == 429 and "the next one can go in 1 min" in refused.text
    assert len(codes(aviso, SENDER)) == texted
    clock["now"] += signin.BACKOFF_SECONDS  # the wait is over: one more code, then twice the wait
    assert ask(attacker, SENDER).status_code == 302
    assert "the next one can go in 2 min" in ask(attacker, SENDER).text
    run_jobs(attacker, aviso)
    assert len(codes(aviso, SENDER)) == texted + 1


def test_no_code_is_texted_to_an_address_that_may_not_try_one(app, aviso, staff, attacker, clock):
    ask(attacker, STRANGER)
    for _ in range(dashboard_auth.LIMITS["checks-address"]):
        enter_code(attacker, "123456")
    texted = len(codes(aviso, SENDER))
    refused = ask(attacker, SENDER)
    run_jobs(attacker, aviso)
    assert refused.status_code == 429 and "Too many tries" in refused.text
    assert len(codes(aviso, SENDER)) == texted


def test_an_admin_unlocks_a_staff_member_from_the_command_line(app, aviso, staff, attacker, clock, runner, cli_env):
    for _ in range(signin.FREE_CODES + 3):
        ask(attacker, SENDER)
    run_jobs(attacker, aviso)
    real = app.test_client()  # a new browser: held up by the back-off
    assert ask(real, SENDER).status_code == 429
    result = runner.invoke(cli, ["staff", "unlock", staff["sender"].id], env=cli_env)
    assert result.exit_code == 0 and "may ask for a sign-in code now" in result.output
    assert ask(real, SENDER).status_code == 302
    run_jobs(real, aviso)
    assert enter_code(real, codes(aviso, SENDER)[-1]).status_code == 302
    assert ("operator", "sign-in unlocked") in [(e.actor, e.action) for e in aviso.audit.recent(5)]
    assert runner.invoke(cli, ["staff", "unlock"], env=cli_env).exit_code != 0  # says what to name


def _address(number: str):
    from bot.people.identity import parse_address

    return parse_address(number)


def _shape(command: str) -> tuple[str, str]:
    """A Redis command as (name, its first argument with hashes, ids and numbers blanked)."""
    parts = command.split(" ")
    first = parts[1].strip('"') if len(parts) > 1 else ""
    segments = [re.sub(r"\d+", "#", part) if len(part) < 16 else "#" for part in first.split(":")]
    return parts[0].strip('"').upper(), ":".join(segments)


def _commands_during(aviso, action) -> list[tuple[str, str]]:
    """Every Redis command (as its shape) that action caused, read with MONITOR on a real server."""
    seen: list[str] = []
    ready, done = threading.Event(), threading.Event()
    marker = "aviso-test-end-of-action"

    def watch() -> None:
        with aviso.connection.monitor() as monitor:
            ready.set()
            for event in monitor.listen():
                if marker in event["command"]:
                    break
                seen.append(event["command"])
        done.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert ready.wait(5)
    aviso.connection.ping()  # MONITOR is on before the action starts
    action()
    aviso.connection.echo(marker)
    assert done.wait(10)
    connection_setup = {"PING", "ECHO", "HELLO", "CLIENT", "SELECT", "AUTH"}  # a new pooled connection's
    return [shape for shape in map(_shape, seen) if shape[0] not in connection_setup]


def test_rostered_and_unknown_numbers_cost_the_same_redis_work_and_jobs(app, aviso, staff, clock):
    warm = app.test_client()  # scripts loaded and connections made before watching
    ask(warm, "+13105550177")
    run_jobs(warm, aviso)
    enter_code(warm, "123456")
    shapes, checks, jobs = [], [], []
    for n, number in enumerate((SENDER, STRANGER)):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"192.0.2.{n + 1}"  # each the first request from its network
        page = token(client)
        shapes.append(_commands_during(aviso, lambda client=client, number=number, page=page: client.post(
            "/dashboard/login", data={"phone": number, "csrf_token": page})))
        queued = Queue(queues.URGENT, connection=aviso.connection).jobs
        jobs.append([(job.func_name, len(job.args), [type(a) for a in job.args]) for job in queued])
        run_jobs(client, aviso)
        form = {"code": "000000", "csrf_token": token(client, "/dashboard/login/code")}  # a wrong code
        checks.append(_commands_during(aviso, lambda client=client, form=form: client.post(
            "/dashboard/login/code", data=form)))
    assert shapes[0] == shapes[1] and checks[0] == checks[1]
    assert not any(keys.STAFF in key for _, key in shapes[0] + checks[0])  # only the job reads the roster
    assert jobs[0] == jobs[1] == [("bot.web.dashboard.signin_jobs.send_code", 6, [str, str, str, str, int, float])]
    assert len(codes(aviso, SENDER)) == 1 and codes(aviso, STRANGER) == []


def test_a_spent_district_budget_alerts_admins_once_and_slows_sign_in(app, aviso, staff, attacker, clock, settings):
    budget = settings.signin_failure_budget
    gatherer = app.test_client()  # holds a code from before the slowing, to guess with afterwards
    gatherer.environ_base["REMOTE_ADDR"] = "192.0.2.99"
    ask(gatherer, STRANGER)
    run_jobs(gatherer, aviso)
    for n in range(budget):  # an attacker guessing across many numbers from many browsers
        guesser = app.test_client()
        guesser.environ_base["REMOTE_ADDR"] = f"198.51.100.{n}"
        ask(guesser, f"+1310555{3000 + n}")
        run_jobs(guesser, aviso)
        enter_code(guesser, "000000")
    run_jobs(attacker, aviso)
    alerts = [m["body"] for m in aviso.sender.messages_for(_address(ADMIN))]
    assert sum(f"{budget} wrong staff sign-in codes within the hour" in body for body in alerts) == 1
    assert any("sign-in slowed" in e.action for e in aviso.audit.recent(20))

    assert "too many wrong tries" in enter_code(gatherer, "123456").text  # died unchecked
    assert aviso.signin.failures(NOW) == budget

    slowed = app.test_client()  # a new browser while slowed: one code a minute district-wide, one try each
    slowed.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    first = ask(slowed, ADMIN)
    second_browser = app.test_client()
    second_browser.environ_base["REMOTE_ADDR"] = "192.0.2.11"
    assert first.status_code == 302 and ask(second_browser, ADMIN).status_code == 429
    run_jobs(slowed, aviso)
    assert "too many wrong tries" in enter_code(slowed, wrong(codes(aviso, ADMIN)[-1])).text

    clock["now"] += signin.FAILURE_BUCKET_SECONDS  # the next hour: the budget is fresh
    assert ask(second_browser, ADMIN).status_code == 302


def test_the_district_slowing_ends_with_the_unlock_command(app, aviso, staff, clock, runner, cli_env, settings):
    for n in range(settings.signin_failure_budget):
        guesser = app.test_client()
        guesser.environ_base["REMOTE_ADDR"] = f"198.51.100.{n}"
        ask(guesser, f"+1310555{3000 + n}")
        run_jobs(guesser, aviso)
        enter_code(guesser, "000000")
    assert aviso.signin.slowed(NOW)
    result = runner.invoke(cli, ["staff", "unlock", "--district"], env=cli_env)
    assert result.exit_code == 0 and not aviso.signin.slowed(NOW)


def test_codes_for_one_number_are_spaced_out_more_each_time_up_to_fifteen_minutes(aviso):
    number, now, issued, waits = aviso.signin.number_hash(SENDER), NOW, 0, []
    while len(waits) < 6:  # someone asking again and again, as soon as each wait is over
        answer = aviso.signin.ask(number, known_browser=False, now=now)
        if answer.issued:
            issued += 1
        else:
            waits.append(answer.wait_seconds // 60)
            now += answer.wait_seconds
    assert (issued, waits) == (signin.FREE_CODES + 5, [1, 2, 4, 8, 15, 15])


def test_a_number_quiet_for_an_hour_starts_afresh(aviso):
    number = aviso.signin.number_hash(SENDER)
    for _ in range(signin.FREE_CODES + 1):
        aviso.signin.ask(number, known_browser=False, now=NOW)
    assert not aviso.signin.ask(number, known_browser=False, now=NOW).issued
    later = NOW + signin.BACKOFF_MEMORY_SECONDS + 1
    assert all(aviso.signin.ask(number, known_browser=False, now=later).issued for _ in range(signin.FREE_CODES))
