"""Redis down or frozen: families still get rights, resources and HELP from memory, in their language,
and an honest "try again in a few minutes" for what needs Redis; nothing half-written when it returns."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot import create_app, services
from bot.conversation.engine import main_menu_text, submenu_text, welcome_text
from bot.conversation.offline import respond_offline, unavailable_text
from bot.conversation.turn import Inbound, Policy
from bot.store import embedded_redis, keys
from bot.store.outage import Outage

from .conftest import PUBLIC_BASE_URL, Phone, inbound, sign

NOW = datetime(2026, 12, 3, 16, 0, tzinfo=ZoneInfo("America/Los_Angeles"))


def offline(content, text: str, channel: str = "sms", advanced_opt_out: bool = True):
    return respond_offline(Inbound(text=text, channel=channel, now=NOW), content,
                           Policy(carrier_answers_sms_keywords=advanced_opt_out))


@pytest.mark.parametrize(("text", "language", "expected"), [
    ("DERECHOS", "es", lambda c: submenu_text(c, "es", "rights")),
    ("rights", "en", lambda c: submenu_text(c, "en", "rights")),
    ("RECURSOS", "es", lambda c: submenu_text(c, "es", "resources")),
    ("권리", "ko", lambda c: submenu_text(c, "ko", "rights")),
    ("AYUDA", "es", lambda c: (c.text("es", "help"), c.text("es", "help.more"))),
    ("HELP", None, lambda c: (c.text("en", "help"), c.text("en", "help.more"))),  # a carrier word: English
    ("MENÚ", "es", lambda c: main_menu_text(c, "es")),
])
def test_without_redis_rights_resources_help_and_menus_come_from_memory_in_the_message_language(
        shipped_content, text, language, expected):
    answered = offline(shipped_content, text)
    wanted = expected(shipped_content)
    assert answered.replies == (wanted if isinstance(wanted, tuple) else (wanted,))  # HELP: then hotline, person
    assert answered.language == language and not answered.effects


@pytest.mark.parametrize(("text", "language"), [
    ("ALERTAS", "es"), ("ALERTAS Garfield", "es"), ("TALLERES", "es"), ("MIS ALERTAS", "es"),
    ("VERIFICAR K7P2Q", "es"), ("BORRAR", "es"), ("FORGET", "en"), ("WORKSHOPS", "en"), ("ESPAÑOL", "es"),
    ("SALIR", "es"), ("MIS TALLERES", "es"), ("알림", "ko"),
])
def test_without_redis_what_needs_it_is_declined_honestly_in_the_message_language(shipped_content, text, language):
    answered = offline(shipped_content, text)
    assert answered.replies == (shipped_content.text(language, "unavailable"),)
    assert answered.effects == () and answered.command == "unavailable"


def test_without_redis_a_message_in_no_known_language_gets_the_welcome(shipped_content):
    assert offline(shipped_content, "hola buenas").replies == (welcome_text(shipped_content),)


@pytest.mark.parametrize("number", ["1", "0", " 2 ", "１"])
def test_without_redis_a_menu_number_is_declined_in_both_welcome_languages(shipped_content, number):
    assert offline(shipped_content, number).replies == (unavailable_text(shipped_content, None),)


def test_without_redis_stop_on_whatsapp_is_declined_in_both_welcome_languages(shipped_content):
    answered = offline(shipped_content, "STOP", channel="whatsapp")
    assert answered.replies == (unavailable_text(shipped_content, None),)
    assert shipped_content.text("es", "unavailable") in answered.replies[0]


def test_without_redis_stop_on_sms_stays_silent_as_twilio_answers_it(shipped_content):
    assert offline(shipped_content, "STOP").replies == ()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_logged_once_per_minute_not_per_message_and_its_end_once(caplog):
    caplog.set_level(logging.INFO, logger="bot.store.outage")
    clock = Clock()
    outage = Outage(clock)
    for _ in range(50):
        outage.failed(ConnectionError("refused"))
        outage.answered_from_memory()
        clock.now += 1
    assert [r.message.split(":")[0] for r in caplog.records] == ["redis unreachable for 0 s (ConnectionError)"]
    clock.now += 20
    outage.failed(ConnectionError("refused"))
    assert len(caplog.records) == 2 and "50 so far" in caplog.records[1].message
    outage.recovered()
    outage.recovered()
    assert len(caplog.records) == 3 and "reachable again after 70 s" in caplog.records[2].message


def test_right_after_a_failure_redis_is_not_tried_again_for_a_moment():
    clock = Clock()
    outage = Outage(clock)
    assert outage.worth_trying()
    outage.failed(TimeoutError())
    assert not outage.worth_trying()
    clock.now += 1.0
    assert outage.worth_trying()


# ---- a real redis-server of the test's own, killed or frozen ---------------------------------------------

@pytest.fixture
def own_phone(settings, own_redis):
    """A family's phone texting an app whose Redis is the test's own."""
    _, url, _ = own_redis
    app = create_app(settings.with_overrides(redis_url=url))
    aviso = services.current_from(app)
    aviso.ensure_content()
    return Phone(app.test_client()), aviso


def timed_text(phone: Phone, body: str) -> tuple[list[str], float]:
    started = time.monotonic()
    replies = phone.text(body)
    return replies, time.monotonic() - started


def wait_until_answered_through_redis(phone: Phone, content) -> list[str]:
    """Text MIS ALERTAS until Redis answers it again (the webhook retries Redis a moment after a failure)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        replies = phone.text("MIS ALERTAS")
        if replies != [content.text("es", "unavailable")]:
            return replies
        time.sleep(0.05)
    raise AssertionError("Redis never answered again")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def follow_belmont(phone: Phone) -> None:
    for body in ("ALERTAS", "Belmont", "1"):
        phone.text(body)


def test_redis_killed_derechos_still_answered_in_spanish_within_a_second_and_nothing_half_written(
        own_phone, own_redis, shipped_content, caplog):
    phone, aviso = own_phone
    data_dir, url, pid = own_redis
    follow_belmont(phone)
    stats_before = keyword_counts(aviso)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    caplog.set_level(logging.INFO, logger="bot.store.outage")

    replies, took = timed_text(phone, "DERECHOS")
    assert replies == [submenu_text(shipped_content, "es", "rights")] and took < 1.0
    for body in ("ALERTAS Garfield", "BORRAR", "TALLERES"):
        replies, took = timed_text(phone, body)
        assert replies == [shipped_content.text("es", "unavailable")] and took < 1.0
    assert sum("redis unreachable" in r.message for r in caplog.records) == 1

    embedded_redis.ensure_running(data_dir)  # back, from its append-only file
    replies = wait_until_answered_through_redis(phone, shipped_content)
    assert "Belmont" in replies[0] and "Garfield" not in replies[0]  # kept what it had, gained nothing half-done
    assert aviso.connection.scard(keys.SCHOOL_SUBSCRIBERS.format(code="GARFIELD")) == 0
    assert aviso.connection.scard(keys.SCHOOL_SUBSCRIBERS.format(code="BELMONT")) == 1
    assert keyword_counts(aviso)["rights:es"] == stats_before["rights:es"]  # the offline answer was not counted
    assert any("reachable again" in r.message for r in caplog.records)


def test_redis_frozen_derechos_still_answered_in_spanish_within_a_second_and_nothing_written_twice(
        own_phone, own_redis, shipped_content):
    phone, aviso = own_phone
    _, url, pid = own_redis
    follow_belmont(phone)
    counts_before = keyword_counts(aviso)
    os.kill(pid, signal.SIGSTOP)
    try:
        frozen_sids = ["SM" + f"{n:032x}" for n in range(1, 4)]
        for sid, body in zip(frozen_sids, ("DERECHOS", "ALERTAS Garfield", "DERECHOS"), strict=True):
            started = time.monotonic()
            replies = phone.text(body, sid=sid)
            took = time.monotonic() - started
            expected = (submenu_text(shipped_content, "es", "rights") if body == "DERECHOS"
                        else shipped_content.text("es", "unavailable"))
            assert replies == [expected] and took < 1.0
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until_answered_through_redis(phone, shipped_content)
    assert aviso.connection.scard(keys.SCHOOL_SUBSCRIBERS.format(code="GARFIELD")) == 0
    counts = keyword_counts(aviso)
    assert counts["rights:es"] == counts_before["rights:es"]  # answered from memory: counted nowhere, never twice
    assert counts["my_alerts:es"] == counts_before["my_alerts:es"] + 1  # the one answer through Redis
    assert _contact(aviso).get(b"schools") == b"BELMONT"
    for sid in frozen_sids:  # a command the frozen server read late holds at most a claim, never an answer
        stored = aviso.connection.get(keys.INBOUND_MESSAGE.format(sid=sid))
        assert stored in (None, keys.INBOUND_PENDING.encode())


def keyword_counts(aviso) -> Counter:
    """Every day's keyword counts added up (the test does not depend on which day it runs)."""
    total: Counter = Counter()
    for key in aviso.connection.scan_iter("aviso:stats:keywords:*"):
        total.update({k.decode(): int(v) for k, v in aviso.connection.hgetall(key).items()})
    return total


def _contact(aviso) -> dict[bytes, bytes]:
    found = list(aviso.connection.scan_iter("aviso:contact:*"))
    assert len(found) == 1
    return aviso.connection.hgetall(found[0])


def test_twilio_fallback_answers_from_memory_while_redis_is_gone(settings, tmp_path, shipped_content):
    app = create_app(settings.with_overrides(redis_url=f"unix://{tmp_path}/nothing.sock"))
    client = app.test_client()
    params = inbound("DERECHOS", ErrorCode="11200", ErrorUrl=PUBLIC_BASE_URL + "/twilio/messages")
    response = client.post("/twilio/fallback", data=params,
                           headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/twilio/fallback", params)})
    assert response.status_code == 200
    assert submenu_text(shipped_content, "es", "rights") in response.get_data(as_text=True)


def test_twilio_fallback_checks_signatures_and_refuses_malformed_requests(phone):
    assert phone.post(inbound("DERECHOS"), path="/twilio/fallback", signature="forged").status_code == 403
    assert phone.post({"Body": "DERECHOS"}, path="/twilio/fallback").status_code == 400


def test_a_status_callback_while_redis_is_gone_gets_503_not_an_error(settings, tmp_path):
    app = create_app(settings.with_overrides(redis_url=f"unix://{tmp_path}/nothing.sock"))
    params = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "delivered", "AccountSid": "AC" + "1" * 32}
    path = "/twilio/status?b=f3fd04af7a5541b7"
    response = app.test_client().post(path, data=params,
                                      headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + path, params)})
    assert response.status_code == 503


def test_healthz_answers_503_within_a_second_while_redis_is_frozen(settings, own_redis):
    _, url, pid = own_redis
    client = create_app(settings.with_overrides(redis_url=url)).test_client()
    assert client.get("/healthz/web").status_code == 200
    os.kill(pid, signal.SIGSTOP)
    try:
        for path in ("/healthz", "/healthz/web"):
            started = time.monotonic()
            assert client.get(path).status_code == 503
            assert time.monotonic() - started < 1.0
    finally:
        os.kill(pid, signal.SIGCONT)
