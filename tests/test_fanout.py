"""Fan-out end to end: real RQ workers, the real twilio library, the fake Twilio server, real Redis."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from rq import Queue, Worker
from rq.job import Job
from werkzeug.serving import make_server

from bot.broadcasts import fanout
from bot.broadcasts.fanout import Policy
from bot.broadcasts.outcomes import OutcomeStore, claim_value
from bot.broadcasts.store import CANCELLED, DONE, FAILED, SENDING, BroadcastStore
from bot.people.contacts import contact_redis_key
from bot.services import jobs
from bot.store import keys, queues
from bot.twilio import senders
from bot.twilio.client import make_client
from bot.twilio.fake import FakeTwilio
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, sign
from tests.test_broadcasts import EN_TEXT, ES_TEXT, make_broadcast, subscribe

SERVICE_SID = "MG" + "b" * 32
WHATSAPP_FROM = "whatsapp:+12135550199"
TEMPLATE = {"content_sid": "HX" + "c" * 32, "variables": {"1": "Main y 3rd"}}
QUICK = Policy(batch_size=10, concurrency=8, backoff_base=0.01, backoff_cap=0.05, lease_seconds=5)
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def public_port():
    """A port the app can be served on, so the fake's status callbacks can reach it."""
    return _free_port()


@pytest.fixture
def fake():
    """The fake Twilio, with the test account's credentials, answering at once."""
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, messaging_services=[SERVICE_SID]) as server:
        yield server


@pytest.fixture
def settings(settings, fake, public_port):
    """The test settings sending through the fake Twilio."""
    return settings.with_overrides(
        twilio_account_sid=ACCOUNT_SID, twilio_messaging_service_sid=SERVICE_SID,
        twilio_whatsapp_from=WHATSAPP_FROM, twilio_api_base_url=fake.url,
        public_base_url=f"http://127.0.0.1:{public_port}")


class BurstWorker(Worker):
    """RQ's worker, forking a work horse per job as in production, without the pub/sub listener for
    remote commands: stopping it waits a second for a listener the tests never use."""

    def subscribe(self):
        """No remote commands in tests."""


def work(app, aviso) -> None:
    """Run an RQ worker until the queues are empty."""
    with app.app_context():
        BurstWorker(list(queues.ALL), connection=aviso.connection).work(burst=True, logging_level="WARNING")


def send(app, aviso, broadcast, policy: Policy = QUICK):
    """Store an approved broadcast, start it and run the workers; return the stored broadcast."""
    store = BroadcastStore(aviso.connection)
    store.create(broadcast)
    fanout.enqueue_start(aviso.connection, broadcast.id, policy=policy)
    work(app, aviso)
    return store.get(broadcast.id)


def start_only(app, aviso, broadcast, policy: Policy = QUICK) -> BroadcastStore:
    """Store and start a broadcast, running only the start job: its batches stay queued."""
    store = BroadcastStore(aviso.connection)
    store.create(broadcast)
    fanout.enqueue_start(aviso.connection, broadcast.id, policy=policy)
    with app.app_context():
        BurstWorker(list(queues.ALL), connection=aviso.connection).work(burst=True, max_jobs=1)
    return store


def family(aviso, count: int, start: int = 0, **kw) -> dict[str, str]:
    """Subscribe `count` families; return number -> contact key."""
    numbers = [f"+1213555{start + i:04d}" for i in range(count)]
    return {number: subscribe(aviso, number, **kw) for number in numbers}


def to_numbers(fake) -> list[str]:
    return [m["to"] for m in fake.messages()]


def test_each_recipient_gets_exactly_one_outcome(app, aviso, fake):
    spanish = family(aviso, 17)
    english = family(aviso, 8, start=100, lang="en")
    opted = family(aviso, 2, start=200, opted_out=True)
    aviso.connection.sadd(keys.SCHOOL_SUBSCRIBERS.format(code="lincoln"), "e" * 32)  # forgot itself
    broadcast = send(app, aviso, make_broadcast())
    assert broadcast.status == DONE and broadcast.started_at and broadcast.finished_at
    outcomes = BroadcastStore(aviso.connection).outcomes(broadcast.id)
    assert (outcomes.audience, outcomes.sent, outcomes.pending) == (25, 25, 0)
    assert sorted(to_numbers(fake)) == sorted([*spanish, *english])
    bodies = {m["to"]: m["body"] for m in fake.messages()}
    assert {bodies[n] for n in spanish} == {ES_TEXT} and {bodies[n] for n in english} == {EN_TEXT}
    records = aviso.connection.hgetall(keys.BROADCAST_OUTCOMES.format(id=broadcast.id))
    assert all(records[key.encode()].startswith(b"sent:SM") for key in [*spanish.values(), *english.values()])
    assert not any(number in to_numbers(fake) for number in opted)
    callback = fake.requests()[0]["params"]["StatusCallback"]
    assert callback == f"{aviso.settings.public_base_url}/twilio/status?b={broadcast.id}"


def test_forgotten_and_opted_out_since_the_snapshot_are_skipped(app, aviso, fake):
    contacts = family(aviso, 3)
    broadcast = make_broadcast()
    store = start_only(app, aviso, broadcast)  # the audience is frozen, then the world changes
    first, second, _ = contacts.values()
    aviso.connection.delete(contact_redis_key(first))
    aviso.connection.hset(contact_redis_key(second), "opted_out", "1")
    work(app, aviso)
    outcomes = store.outcomes(broadcast.id)
    assert (outcomes.sent, outcomes.skipped) == (1, {"contact_gone": 1, "opted_out": 1})


def test_carrier_errors_are_recorded_and_21610_opts_out(app, aviso, fake):
    contacts = family(aviso, 5)
    numbers = list(contacts)
    whatsapp = family(aviso, 1, start=50, channel="whatsapp", wa_seen=int(time.time()) - 60)
    fake.configure(recipient_errors={numbers[0]: 21610, numbers[1]: 21211, f"whatsapp:{next(iter(whatsapp))}": 63016})
    broadcast = send(app, aviso, make_broadcast())
    outcomes = BroadcastStore(aviso.connection).outcomes(broadcast.id)
    assert outcomes.sent == 3
    assert outcomes.failed == {"21610": 1, "21211": 1, "63016": 1}
    assert aviso.connection.hget(contact_redis_key(contacts[numbers[0]]), "opted_out") == b"1"
    assert aviso.connection.hget(contact_redis_key(contacts[numbers[1]]), "opted_out") == b"0"


def test_retryable_errors_back_off_and_retry(app, aviso, fake):
    family(aviso, 6)
    fake.configure(error_429_count=4, error_5xx_count=2, error_5xx_status=503)
    broadcast = send(app, aviso, make_broadcast())
    assert BroadcastStore(aviso.connection).outcomes(broadcast.id).sent == 6
    assert fake.stats()["by_error_code"] == {"20429": 4, "20503": 2}
    assert fake.duplicates() == {}


def test_retries_are_bounded(app, aviso, fake):
    family(aviso, 2)
    fake.configure(error_5xx_rate=1.0)
    broadcast = send(app, aviso, make_broadcast(), replace(QUICK, max_attempts=3))
    outcomes = BroadcastStore(aviso.connection).outcomes(broadcast.id)
    assert outcomes.failed == {"20500": 2} and broadcast.status == DONE
    assert fake.stats()["requests"] == 6


def test_too_many_requests_are_retried_without_using_up_attempts_but_not_forever(app, aviso, fake):
    family(aviso, 2)
    fake.configure(error_429_rate=1.0)
    broadcast = send(app, aviso, make_broadcast(), replace(QUICK, max_attempts=2, max_throttled=4))
    outcomes = BroadcastStore(aviso.connection).outcomes(broadcast.id)
    assert outcomes.failed == {"20429": 2} and broadcast.status == DONE
    assert fake.stats()["requests"] == 8


def test_a_batch_keeps_to_the_accounts_limit_on_open_requests(app, aviso, fake, caplog):
    # Twilio answers 429 to requests beyond the account's limit on open requests. A batch allowed 48 calls
    # in flight finds the account allows 6 and keeps near that, instead of having 42 of every 48 calls
    # refused (until recipients run out of retries).
    family(aviso, 150)
    fake.configure(max_concurrent_requests=6, latency_ms=20)
    broadcast = make_broadcast()
    store = start_only(app, aviso, broadcast, replace(QUICK, batch_size=150, concurrency=48))
    with app.app_context(), caplog.at_level("WARNING", logger="bot.broadcasts.batches"):
        jobs.send_batch(broadcast.id, 0)
    outcomes = store.outcomes(broadcast.id)
    stats = fake.stats()
    assert outcomes.sent == 150 and outcomes.failed == {} and fake.duplicates() == {}
    assert stats["most_concurrent_requests"] <= 6
    assert stats["by_error_code"]["20429"] < 150, stats  # a fixed 48 in flight: about 450 refusals
    assert "keeps 33 calls in flight, not 48 (AVISO_SEND_CONCURRENCY)" in caplog.text


def test_a_timed_out_call_that_twilio_accepted_is_not_sent_twice(app, aviso, fake, monkeypatch):
    monkeypatch.setattr(senders, "REQUEST_TIMEOUT_SECONDS", 0.3)
    family(aviso, 3)
    fake.configure(hang_count=1, hang_seconds=1.0, hang_accepts=True)
    broadcast = send(app, aviso, make_broadcast())
    assert BroadcastStore(aviso.connection).outcomes(broadcast.id).sent == 3
    assert len(fake.messages()) == 3 and fake.duplicates() == {}


# A call we gave up on (timeout) that Twilio accepts but lists only later: on a busy machine every call
# can time out before the fake Twilio has even read it, and a list made at once says "never sent".
SLOW_LISTING = {"hang_count": 1, "hang_seconds": 4.0, "hang_accepts": True, "list_delay_ms": 2500}


def test_a_timed_out_call_is_looked_for_until_twilios_list_can_be_trusted(app, aviso, fake, monkeypatch):
    monkeypatch.setattr(senders, "REQUEST_TIMEOUT_SECONDS", 0.3)
    family(aviso, 3)
    fake.configure(**SLOW_LISTING)
    broadcast = send(app, aviso, make_broadcast(), replace(QUICK, settle_seconds=8.0))
    outcomes = BroadcastStore(aviso.connection).outcomes(broadcast.id)
    assert outcomes.sent == 3 and outcomes.failed == {}
    assert len(fake.messages()) == 3 and fake.duplicates() == {}


def test_trusting_the_first_empty_list_after_a_timeout_sends_twice(app, aviso, fake, monkeypatch):
    # The race the settle time closes, reproduced: this is what a family got before (the alert twice).
    monkeypatch.setattr(senders, "REQUEST_TIMEOUT_SECONDS", 0.3)
    family(aviso, 3)
    fake.configure(**SLOW_LISTING)
    send(app, aviso, make_broadcast(), replace(QUICK, settle_seconds=0.0))
    assert fake.duplicates()  # the timed-out call, at least (on a busy machine, every call that timed out)


def test_bad_credentials_stop_the_batch_and_leave_everyone_pending(app, aviso, fake):
    family(aviso, 12)
    fake.configure(auth_token="0" * 32)  # the account's token was rotated: every call is a 401 / 20003
    broadcast = make_broadcast()
    store = start_only(app, aviso, broadcast)
    with app.app_context(), pytest.raises(fanout.BatchFailed, match="20003"):
        jobs.send_batch(broadcast.id, 0)
    assert fake.messages() == [] and len(fake.requests()) <= QUICK.concurrency
    records = aviso.connection.hvals(keys.BROADCAST_OUTCOMES.format(id=broadcast.id))
    assert not [r for r in records if r.startswith(b"sending:")]  # unclaimed: the retried job sends them
    assert store.outcomes(broadcast.id).pending == 12 and store.get(broadcast.id).status == SENDING


def test_cancel_mid_send_stops(app, aviso, fake):
    # 4 calls in flight of 100 ms: 40 messages a second, so the bound below holds unless the batch is
    # starved for seconds; the batch sees a cancel within a tick (0.2 s) of its own clock.
    family(aviso, 120)
    fake.configure(latency_ms=100)
    broadcast = make_broadcast()

    def cancel_soon():
        while len(fake.messages()) < 10:
            time.sleep(0.01)
        fanout.cancel(aviso.connection, broadcast.id)

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    stored = send(app, aviso, broadcast, replace(QUICK, batch_size=40, concurrency=4))
    canceller.join()
    assert stored.status == CANCELLED and stored.finished_at
    sent_at_cancel = len(fake.messages())
    assert 10 <= sent_at_cancel < 60  # in-flight calls finish; nothing new starts
    outcomes = BroadcastStore(aviso.connection).outcomes(broadcast.id)
    assert outcomes.sent == sent_at_cancel and outcomes.pending == 120 - sent_at_cancel
    records = aviso.connection.hvals(keys.BROADCAST_OUTCOMES.format(id=broadcast.id))
    assert not [r for r in records if r.startswith(b"sending:")]  # nothing left claimed


def test_running_a_batch_twice_sends_nothing_twice(app, aviso, fake):
    family(aviso, 12)
    broadcast = send(app, aviso, make_broadcast())
    assert len(fake.messages()) == 12
    # Pretend nobody noticed the batches finished, and that the broadcast is still going out.
    aviso.connection.delete(keys.BROADCAST_DONE_BATCHES.format(id=broadcast.id))
    aviso.connection.hset(keys.BROADCAST.format(id=broadcast.id), "status", SENDING)
    aviso.connection.set(keys.BROADCAST_BATCH.format(id=broadcast.id, n=0), ",".join(
        k.decode() for k in aviso.connection.hkeys(keys.BROADCAST_OUTCOMES.format(id=broadcast.id))))
    with app.app_context():
        jobs.send_batch(broadcast.id, 0)
        jobs.send_batch(broadcast.id, 0)
        jobs.start_broadcast(broadcast.id)
    work(app, aviso)
    assert len(fake.messages()) == 12 and fake.duplicates() == {}
    assert BroadcastStore(aviso.connection).outcomes(broadcast.id).sent == 12


def test_claims_left_by_a_dead_worker_are_checked_with_twilio_first(app, aviso, fake):
    contacts = family(aviso, 4)
    (accepted, accepted_key), (lost, lost_key) = list(contacts.items())[:2]
    broadcast = make_broadcast()
    store, outcomes = BroadcastStore(aviso.connection), OutcomeStore(aviso.connection)
    store.create(broadcast)
    # A worker claimed two recipients and died: Twilio had accepted one message, never saw the other.
    client = make_client(ACCOUNT_SID, AUTH_TOKEN, api_base_url=fake.url)
    client.messages.create(to=accepted, body=ES_TEXT, messaging_service_sid=SERVICE_SID)
    for key in (accepted_key, lost_key):
        outcomes.claim(broadcast.id, key, claim_value("dead-worker", time.time() - 1))
    fanout.enqueue_start(aviso.connection, broadcast.id, policy=QUICK)
    work(app, aviso)
    assert fake.duplicates() == {} and sorted(to_numbers(fake)) == sorted(contacts)
    summary = store.outcomes(broadcast.id)
    assert (summary.sent, summary.reconciled, summary.pending) == (4, 1, 0)
    assert outcomes.outcome_of(broadcast.id, accepted_key) == f"sent:{fake.messages()[0]['sid']}"


def test_the_watchdog_requeues_a_batch_whose_worker_vanished(app, aviso, fake):
    family(aviso, 15)
    broadcast = make_broadcast()
    store = start_only(app, aviso, broadcast)  # two batches queued
    # A worker took batch 0 and vanished with it: the job says started, long ago, and holds no lease.
    job_id = aviso.connection.hget(keys.BROADCAST_RUN.format(id=broadcast.id), "job:0").decode()
    Queue(queues.DEFAULT, connection=aviso.connection).remove(job_id)
    aviso.connection.hset(Job.key_for(job_id), mapping={"status": "started",
                                                        "started_at": "2020-01-01T00:00:00.000000Z"})
    with app.app_context():
        assert jobs.watch_broadcast(broadcast.id) == "requeued [0]"
        assert jobs.watch_broadcast(broadcast.id) == "requeued []"  # its new job is waiting: nothing more
    work(app, aviso)
    assert store.get(broadcast.id).status == DONE and len(fake.messages()) == 15
    with app.app_context():
        assert jobs.watch_broadcast(broadcast.id) == "finished"


def test_nothing_is_requeued_for_a_cancelled_broadcast(app, aviso, fake):
    family(aviso, 15)
    broadcast = make_broadcast()
    start_only(app, aviso, broadcast)
    fanout.cancel(aviso.connection, broadcast.id)
    assert fanout.sweep(aviso.connection, broadcast.id, force=True) == []
    work(app, aviso)
    assert fake.messages() == []
    assert BroadcastStore(aviso.connection).outcomes(broadcast.id).pending == 15


def test_whatsapp_window_and_templates(app, aviso, fake):
    now = int(time.time())
    inside = family(aviso, 1, channel="whatsapp", wa_seen=now - 3600)
    outside = family(aviso, 1, start=1, channel="whatsapp", wa_seen=now - 30 * 3600)
    unreachable = family(aviso, 1, start=2, channel="whatsapp", lang="en", wa_seen=now - 30 * 3600)
    broadcast = send(app, aviso, make_broadcast(whatsapp_templates={"es": TEMPLATE}))
    sent = {r["params"]["To"]: r["params"] for r in fake.requests()}
    assert sent[f"whatsapp:{next(iter(inside))}"]["Body"] == ES_TEXT
    template = sent[f"whatsapp:{next(iter(outside))}"]
    assert template["ContentSid"] == TEMPLATE["content_sid"] and "Body" not in template
    assert json.loads(template["ContentVariables"]) == TEMPLATE["variables"]
    assert template["From"] == WHATSAPP_FROM
    assert f"whatsapp:{next(iter(unreachable))}" not in sent
    outcomes = BroadcastStore(aviso.connection).outcomes(broadcast.id)
    assert (outcomes.sent, outcomes.skipped) == (2, {"whatsapp_window_closed": 1})


def test_languages_filter_and_fallback(app, aviso, fake):
    spanish = family(aviso, 2)
    korean = family(aviso, 2, start=10, lang="ko")
    family(aviso, 2, start=20, lang="en")
    refused = send(app, aviso, make_broadcast(languages=("es", "ko")))
    assert refused.status == FAILED and "ko" in BroadcastStore(aviso.connection).failure(refused.id)
    assert fake.messages() == []
    sent = send(app, aviso, make_broadcast(languages=("es", "ko"), fallback_language="en"))
    assert sent.status == DONE
    bodies = {m["to"]: m["body"] for m in fake.messages()}
    assert bodies == {**dict.fromkeys(spanish, ES_TEXT), **dict.fromkeys(korean, EN_TEXT)}


def test_correction_goes_to_exactly_the_originals_recipients(app, aviso, fake):
    first = family(aviso, 3)
    family(aviso, 1, start=10, channel="whatsapp")  # outside the window, no template: not sent
    original = send(app, aviso, make_broadcast())
    later = family(aviso, 2, start=20)  # subscribed after the original
    fake.reset()
    correction = send(app, aviso, make_broadcast(kind="correction", corrects=original.id, schools=(),
                                                 texts={"es": "CORRECCION: " + ES_TEXT}))
    assert correction.status == DONE
    assert sorted(to_numbers(fake)) == sorted(first)
    assert not set(later) & set(to_numbers(fake))


def test_status_callbacks_roll_up_through_the_signed_webhook(app, aviso, fake, client, public_port):
    contacts = family(aviso, 4)
    numbers = list(contacts)
    fake.configure(status_callbacks=True, sent_delay_ms=1, delivered_delay_ms=1,
                   delivery_failures={numbers[0]: 30003, numbers[1]: ["failed", 30008]})
    server = make_server("127.0.0.1", public_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        broadcast = send(app, aviso, make_broadcast())
        deadline = time.monotonic() + 5
        while len(fake.callbacks()) < 7 and time.monotonic() < deadline:  # 2 + 2 + 2 + 1 (failed skips sent)
            time.sleep(0.02)
    finally:
        server.shutdown()
        thread.join()
    assert {c["status"] for c in fake.callbacks()} == {204}
    store = BroadcastStore(aviso.connection)
    outcomes = store.outcomes(broadcast.id)
    assert (outcomes.delivered, outcomes.undelivered, outcomes.delivery_failed) == (2, 1, 1)
    # Twilio retries a callback: it counts once. A forged one is refused and counts nothing.
    replay = next(c for c in fake.callbacks() if c["params"]["MessageStatus"] == "delivered")
    path = replay["url"].removeprefix(aviso.settings.public_base_url)
    signature = {"X-Twilio-Signature": replay["signature"]}
    assert client.post(path, data=replay["params"], headers=signature).status_code == 204
    forged = {**replay["params"], "MessageStatus": "undelivered"}
    assert client.post(path, data=forged, headers=signature).status_code == 403
    signed = sign(aviso.settings.public_base_url + path, forged)
    assert client.post(path, data=forged, headers={"X-Twilio-Signature": signed}).status_code == 204
    outcomes = store.outcomes(broadcast.id)
    assert (outcomes.delivered, outcomes.undelivered) == (1, 2)  # moved, not double counted


def test_no_phone_number_in_any_redis_key_or_value(app, aviso, fake):
    now = int(time.time())
    numbers = [*family(aviso, 5), *family(aviso, 2, start=10, channel="whatsapp", wa_seen=now - 60),
               *family(aviso, 1, start=20, channel="whatsapp", wa_seen=now - 90000)]
    fake.configure(recipient_errors={numbers[0]: 21610}, error_429_count=1)
    send(app, aviso, make_broadcast(whatsapp_templates={"es": TEMPLATE}))
    digits = [n.removeprefix("+") for n in numbers] + [n[2:] for n in numbers]
    for key, value in _dump(aviso.connection):
        for needle in digits:
            assert needle.encode() not in key and needle.encode() not in value, (key, needle)


def _dump(connection):
    """Every key with its values as bytes (RQ's zlib-compressed job data inflated too)."""
    read = {"string": lambda k: [connection.get(k)], "set": lambda k: list(connection.smembers(k)),
            "hash": lambda k: [b"%s=%s" % pair for pair in connection.hgetall(k).items()],
            "zset": lambda k: connection.zrange(k, 0, -1), "list": lambda k: connection.lrange(k, 0, -1)}
    for key in connection.scan_iter(count=1000):
        values = read.get(connection.type(key).decode(), lambda k: [])(key)
        yield key, b"\n".join(values + [_inflate(value.split(b"=", 1)[-1]) for value in values])


def _inflate(value: bytes) -> bytes:
    try:
        return zlib.decompress(value)
    except zlib.error:
        return b""


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    """A real `aviso worker` (RQ worker with its scheduler) in its own process group."""
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "worker"],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop_workers(*processes: subprocess.Popen | None) -> None:
    """Stop `aviso worker` processes as systemd would: SIGTERM (RQ finishes the job at hand), then after 30 s
    SIGKILL to each worker's group and its work horses (each in a group of its own). None is left running to
    take the next tests' jobs."""
    running = [p for p in processes if p is not None and p.poll() is None]
    for process in running:
        os.killpg(process.pid, signal.SIGTERM)
    for process in running:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            horses = [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _is_child(int(pid), process.pid)]
            for group in (process.pid, *horses):
                try:
                    os.killpg(group, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            process.wait()


def test_a_worker_killed_mid_broadcast_loses_and_duplicates_nobody(app, aviso, fake, tmp_path, redis_url):
    contacts = family(aviso, 240)
    fake.configure(latency_ms=60)
    env = {**os.environ, "REDIS_URL": redis_url, "AVISO_ENV": "development", "AVISO_DATA_DIR": str(tmp_path),
           "AVISO_CONTENT_DIR": str(aviso.settings.content_dir), "AVISO_SECRET_KEY": aviso.settings.secret_key,
           "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID, "TWILIO_API_BASE_URL": fake.url,
           "PUBLIC_BASE_URL": aviso.settings.public_base_url,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    log = tmp_path / "workers.log"
    survivor = _start_worker(env, log)
    _wait_until(lambda: aviso.connection.exists("rq:scheduler-lock:urgent"))  # the survivor schedules
    victim = _start_worker(env, log)
    # The scheduled watchdog comes too late to matter: the surviving workers must notice by themselves.
    policy = Policy(batch_size=20, concurrency=4, lease_seconds=1.5, watch_seconds=600)
    broadcast = make_broadcast(urgent=True)
    store = BroadcastStore(aviso.connection)
    store.create(broadcast)
    try:
        fanout.enqueue_start(aviso.connection, broadcast.id, policy=policy)
        horses = _wait_for_horses(aviso.connection, broadcast.id, victim)
        assert horses, "the worker to kill was not running a batch"
        os.killpg(victim.pid, signal.SIGKILL)  # the worker (and its scheduler), then its work horse
        for horse in horses:  # RQ puts the horse in a process group of its own
            os.killpg(horse, signal.SIGKILL)
        victim.wait()
        restarted = _start_worker(env, log)
        deadline = time.monotonic() + 40
        while store.get(broadcast.id).status == SENDING and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        _stop_workers(survivor, victim, locals().get("restarted"))
    assert store.get(broadcast.id).status == DONE, log.read_text()[-3000:]
    assert fake.duplicates() == {}
    assert sorted(to_numbers(fake)) == sorted(contacts)
    outcomes = store.outcomes(broadcast.id)
    assert (outcomes.sent, outcomes.pending) == (240, 0)
    records = aviso.connection.hgetall(keys.BROADCAST_OUTCOMES.format(id=broadcast.id))
    assert len(records) == 240 and all(v.startswith(b"sent:") for v in records.values())


def _wait_until(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)


def _wait_for_horses(connection, broadcast_id: str, worker: subprocess.Popen, timeout: float = 20) -> list[int]:
    """The pids of the worker's work horses holding a batch lease, once one has calls in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        horses = []
        for key in connection.scan_iter(match=keys.BROADCAST_LEASE.format(id=broadcast_id, n="*")):
            token = connection.get(key)
            pid = int(token.split(b"-")[0]) if token and token[:1].isdigit() else 0
            if pid and _is_child(pid, worker.pid):
                horses.append(pid)
        if horses:
            time.sleep(0.15)  # let some of its calls be in flight
            return horses
        time.sleep(0.02)
    return []


def _is_child(pid: int, parent: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == parent
