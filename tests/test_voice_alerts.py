"""Voice alerts: VOICE / VOZ by text, an urgent broadcast's calls through the fake Twilio's Calls API, the
TwiML a call speaks and the calls' outcomes, and exactly once per family with a worker SIGKILLed mid-way."""

from __future__ import annotations

import os
import signal
import threading
import time
from xml.etree import ElementTree

import pytest
from werkzeug.serving import make_server

from bot.broadcasts import calls, fanout
from bot.broadcasts.calls import CallPolicy
from bot.broadcasts.store import BroadcastStore
from bot.people.contacts import contact_redis_key
from bot.people.identity import SMS, Address
from bot.store import keys, queues
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, JobRunner, inbound, replies, sign
from tests.test_broadcasts import SCHOOL, make_broadcast
from tests.test_fanout import (  # noqa: F401  (fixtures)
    REPO,
    SERVICE_SID,
    _dump,
    _is_child,
    _start_worker,
    _stop_workers,
    fake,
    family,
    public_port,
    work,
)

VOICE_FROM = "+12135550150"
QUICK_CALLS = CallPolicy(calls_per_second=50, lease_seconds=2, settle_seconds=1.0)


@pytest.fixture
def settings(settings, fake, public_port):  # noqa: F811
    """Sending through the fake Twilio, calls from a voice number."""
    return settings.with_overrides(
        twilio_account_sid=ACCOUNT_SID, twilio_messaging_service_sid=SERVICE_SID, twilio_api_base_url=fake.url,
        public_base_url=f"http://127.0.0.1:{public_port}", twilio_voice_from=VOICE_FROM)


def callers(aviso, count: int, start: int = 0, lang: str = "es") -> dict[str, str]:
    """Subscribed families who asked for calls: number -> contact key."""
    found = family(aviso, count, start=start, lang=lang)
    for contact in found.values():
        aviso.connection.hset(contact_redis_key(contact), "voice", "1")
    return found


def serve(app, port: int):
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def work_in_process(app, aviso) -> None:
    """Run the queued jobs in this process: a forked work horse could inherit a lock held by a thread of the
    app server serving the fake Twilio's requests meanwhile, and hang until RQ's job timeout."""
    with app.app_context():
        JobRunner(list(queues.ALL), connection=aviso.connection).work(burst=True, logging_level="WARNING")


def wait_for(predicate, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def post(client, aviso, path: str, params: dict[str, str]):
    """POST signed as Twilio signs, for this app's public URL."""
    signature = sign(aviso.settings.public_base_url + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def text(client, aviso, number: str, body: str, **extra: str) -> str:
    answer = post(client, aviso, "/twilio/messages", inbound(body, number, **extra))
    assert answer.status_code == 200, answer.data
    return " ".join(replies(answer.data))


def test_voice_by_text_asks_for_calls_and_stop_ends_them(client, aviso):
    number = "+12135550177"
    contact = contact_redis_key(aviso.keyring.contact_key(Address(SMS, number)))
    assert "NO VOZ" in text(client, aviso, number, "VOZ")
    assert aviso.connection.hget(contact, "voice") == b"1"
    assert "VOZ" in text(client, aviso, number, "no voz")
    assert aviso.connection.hget(contact, "voice") is None
    text(client, aviso, number, "VOZ")
    text(client, aviso, number, "STOP", OptOutType="STOP")
    assert aviso.connection.hget(contact, "voice") is None
    assert "NO VOICE" in text(client, aviso, "+12135550178", "VOICE")
    english = contact_redis_key(aviso.keyring.contact_key(Address(SMS, "+12135550178")))
    text(client, aviso, "+12135550178", "FORGET")
    text(client, aviso, "+12135550178", "FORGET")  # confirmed: everything about the family goes
    assert not aviso.connection.exists(english)


def test_an_urgent_alert_calls_who_asked_speaking_their_language(app, aviso, fake, public_port):  # noqa: F811
    spanish = callers(aviso, 3)
    english = callers(aviso, 1, start=10, lang="en")
    farsi = callers(aviso, 1, start=20, lang="fa")  # no Twilio voice reads Farsi: texted, not called
    texted_only = family(aviso, 2, start=30)
    no_answer, busy = list(spanish)[1:3]
    fake.configure(call_outcomes={no_answer: "no-answer", busy: "busy"}, status_callbacks=False)
    server = serve(app, public_port)
    try:
        said_text = {"es": "Cierre de la calle Main.", "en": "Main St closed."}
        broadcast = make_broadcast(urgent=True, kind="update", texts=said_text, bodies=said_text, code="K7P2Q")
        store = BroadcastStore(aviso.connection)
        store.create(broadcast)
        calls.start(aviso, broadcast, QUICK_CALLS)
        fanout.enqueue_start(aviso.connection, broadcast.id)
        work_in_process(app, aviso)
        assert wait_for(lambda: sum(calls.counts(aviso.connection, broadcast.id).get(k, 0)
                                    for k in ("answered", "no_answer", "busy")) == 4)
    finally:
        server.shutdown()
    placed = fake.calls.snapshot()
    assert sorted(c["to"] for c in placed) == sorted([*spanish, *english])
    assert all(c["from"] == VOICE_FROM for c in placed)
    assert not set(farsi) & {c["to"] for c in placed} and not set(texted_only) & {c["to"] for c in placed}
    said = {c["to"]: c["twiml"] for c in placed if c["twiml"]}
    spoken = " ".join(s.text for s in ElementTree.fromstring(said[list(spanish)[0]]).iter("Say"))
    assert "Cierre de la calle Main." in spoken and "K, 7, P, 2, Q" in spoken and "oprima 1" in spoken
    say = next(ElementTree.fromstring(said[list(spanish)[0]]).iter("Say"))
    assert say.get("voice") == "Polly.Lupe"
    english_said = " ".join(s.text for s in ElementTree.fromstring(said[list(english)[0]]).iter("Say"))
    assert "Main St closed." in english_said and "VERIFY" in english_said
    counts = calls.counts(aviso.connection, broadcast.id)
    assert counts == {**counts, "audience": 5, "placed": 4, "skipped": 1, "answered": 2, "no_answer": 1, "busy": 1}
    digits = [n.removeprefix("+") for n in [*spanish, *english, *farsi]]
    for key, value in _dump(aviso.connection):  # no number in Redis: calls are kept by contact key and call sid
        assert not any(d.encode() in key or d.encode() in value for d in digits), key
    # A non-urgent broadcast never calls.
    quiet = make_broadcast()
    BroadcastStore(aviso.connection).create(quiet)
    fanout.enqueue_start(aviso.connection, quiet.id)
    work(app, aviso)
    assert len(fake.calls.snapshot()) == 4 and calls.counts(aviso.connection, quiet.id) == {}


def test_the_alert_call_repeats_on_1_and_is_signed(client, aviso):
    broadcast = make_broadcast(urgent=True, code="ABC12")
    BroadcastStore(aviso.connection).create(broadcast)
    path = f"/twilio/voice/alert?b={broadcast.id}&lang=es&heard=1"
    params = {"CallSid": "CA" + "1" * 32, "AccountSid": ACCOUNT_SID, "Digits": "1"}
    assert client.post(path, data=params).status_code == 403
    heard = post(client, aviso, path, params)
    root = ElementTree.fromstring(heard.data)
    assert "A, B, C, 1, 2" in " ".join(s.text for s in root.iter("Say"))
    assert next(root.iter("Gather")).get("action").endswith("heard=2")
    other = {**params, "Digits": "2"}
    ended = post(client, aviso, path, other)
    assert [e.tag for e in ElementTree.fromstring(ended.data)] == ["Hangup"]


def test_a_call_status_counts_once(client, aviso):
    broadcast_id = "b" * 12
    aviso.connection.hset(keys.CALL_RUN.format(id=broadcast_id), "audience", 1)
    path = f"/twilio/voice/status?b={broadcast_id}"
    params = {"CallSid": "CA" + "2" * 32, "CallStatus": "no-answer", "AccountSid": ACCOUNT_SID}
    for _ in range(2):  # Twilio retries a callback
        answer = post(client, aviso, path, params)
        assert answer.status_code == 204
    assert calls.counts(aviso.connection, broadcast_id)["no_answer"] == 1


def test_a_worker_killed_mid_call_run_calls_every_family_exactly_once(
        app, aviso, fake, tmp_path, redis_url):  # noqa: F811
    numbers = callers(aviso, 1000)
    fake.configure(latency_ms=60, calls_per_second=40, fetch_twiml=False)
    env = {**os.environ, "REDIS_URL": redis_url, "AVISO_ENV": "development", "AVISO_DATA_DIR": str(tmp_path),
           "AVISO_CONTENT_DIR": str(aviso.settings.content_dir), "AVISO_SECRET_KEY": aviso.settings.secret_key,
           "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID,
           "TWILIO_VOICE_FROM": VOICE_FROM, "TWILIO_API_BASE_URL": fake.url,
           "PUBLIC_BASE_URL": aviso.settings.public_base_url,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    log = tmp_path / "workers.log"
    workers = [_start_worker(env, log), _start_worker(env, log)]
    broadcast = make_broadcast(urgent=True)
    store = BroadcastStore(aviso.connection)
    store.create(broadcast)
    run = keys.CALL_RUN.format(id=broadcast.id)
    try:
        calls.start(aviso, broadcast, CallPolicy(calls_per_second=40, lease_seconds=2, settle_seconds=1.5))
        fanout.enqueue_start(aviso.connection, broadcast.id)
        assert wait_for(lambda: int(aviso.connection.hget(run, "placed") or 0) >= 200, 60), log.read_text()[-3000:]
        token = aviso.connection.get(keys.CALL_LEASE.format(id=broadcast.id))
        horse = int(token.split(b"-")[0])
        victim = next(w for w in workers if _is_child(horse, w.pid))
        os.killpg(victim.pid, signal.SIGKILL)  # the worker, then its work horse (RQ gives it its own group)
        os.killpg(horse, signal.SIGKILL)
        victim.wait()
        workers.append(_start_worker(env, log))
        assert wait_for(lambda: aviso.connection.hget(run, "done") is not None, 120), log.read_text()[-3000:]
    finally:
        _stop_workers(*workers)
    placed = [c["to"] for c in fake.calls.snapshot()]
    assert sorted(placed) == sorted(numbers)  # every family called, nobody twice
    assert fake.stats()["max_calls_in_any_1s_window"] <= 40
    records = aviso.connection.hvals(keys.CALL_OUTCOMES.format(id=broadcast.id))
    assert len(records) == 1000 and all(r.startswith(b"placed:CA") for r in records)
    assert SCHOOL in broadcast.schools


def test_the_preview_says_how_many_calls_and_how_long(aviso):
    callers(aviso, 3)
    family(aviso, 2, start=40)
    desk = aviso.desk()
    urgent = make_broadcast(urgent=True)
    plan = desk.with_calls(urgent, aviso.broadcasts.plan(urgent, strict=False, district=desk.district))
    assert (plan.recipients, plan.calls, plan.calls_seconds, plan.calls_per_second) == (5, 3, 3.0, 1)
    quiet = make_broadcast()
    assert desk.with_calls(quiet, aviso.broadcasts.plan(quiet, strict=False, district=desk.district)).calls == 0
