"""GET /healthz: ok, or 503 when Redis, the workers or the scheduler are gone, for anyone; Redis, content
version, queue depths, workers and scheduler only for this machine or a signed-in admin. GET /healthz/web:
the web process alone, for load balancers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from rq import Worker
from rq.scheduler import RQScheduler

from bot import create_app
from bot.store import queues

from .conftest import ROOT
from .test_dashboard import ADMIN, SENDER, sign_in

ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture(autouse=True)
def worker_alive(aviso):
    """A worker on every queue and a scheduler holding their locks, recorded by RQ's own calls (a worker
    that registered and took the locks, without running its loop)."""
    worker = Worker(list(queues.ALL), connection=aviso.connection)
    worker.register_birth()
    scheduler = RQScheduler(list(queues.ALL), connection=aviso.connection)
    scheduler.acquire_locks()
    yield worker, scheduler
    scheduler.release_locks()
    scheduler.connection.connection_pool.disconnect()  # RQScheduler opens a pool of its own
    worker.register_death()


@pytest.fixture
def staff(aviso):
    """An admin and a sender."""
    known = set(aviso.active_content().schools.by_code)
    aviso.roster.add(ADMIN, "District Admin", "admin", ["BELMONT"], known)
    aviso.roster.add(SENDER, "Ms. Rivera", "sender", ["BELMONT"], known)


def test_healthz_from_this_machine_reports_redis_content_and_queues(client, aviso):
    data = client.get("/healthz").get_json()
    assert data["ok"] is True and data["redis"] is True
    assert data["content_version"] == aviso.content.active_version()
    assert set(data["queues"]) == {"urgent", "default", "low"}
    assert data["workers"] == {"urgent": 1, "default": 1, "low": 1} and data["scheduler"] is True


@pytest.mark.parametrize("address", ["203.0.113.9", "10.0.0.7", "2001:db8::1"])
def test_healthz_from_elsewhere_says_only_ok(client, address):
    response = client.get("/healthz", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 200 and response.get_json() == {"ok": True}
    assert "Set-Cookie" not in response.headers


def test_a_proxy_on_this_machine_does_not_make_every_visitor_local(settings, aviso):
    app = create_app(settings.with_overrides(trusted_proxies=1))
    response = app.test_client().get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.get_json() == {"ok": True}


def test_a_signed_in_admin_sees_the_details_from_anywhere_and_a_sender_does_not(app, aviso, staff):
    admin = sign_in(app.test_client(), aviso, ADMIN)
    assert "queues" in admin.get("/healthz", environ_base=ELSEWHERE).get_json()
    sender = sign_in(app.test_client(), aviso, SENDER)
    assert sender.get("/healthz", environ_base=ELSEWHERE).get_json() == {"ok": True}


def test_healthz_is_503_when_redis_is_unreachable(settings, tmp_path):
    app = create_app(settings.with_overrides(redis_url=f"unix://{tmp_path}/nothing.sock"))
    for environ in ({}, ELSEWHERE):
        response = app.test_client().get("/healthz", environ_base=environ)
        assert response.status_code == 503 and response.get_json() == {"ok": False}


def test_healthz_is_503_without_a_worker_and_says_which_part_is_missing(client, worker_alive):
    worker, _ = worker_alive
    worker.register_death()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["workers"] == {"urgent": 0, "default": 0, "low": 0}
    assert response.get_json()["scheduler"] is True
    assert client.get("/healthz", environ_base=ELSEWHERE).get_json() == {"ok": False}


def test_healthz_is_503_without_a_scheduler(client, worker_alive):
    _, scheduler = worker_alive
    scheduler.release_locks()
    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_json()["scheduler"] is False


def test_load_balancers_check_the_web_process_alone(client, worker_alive, settings, tmp_path):
    worker, scheduler = worker_alive
    worker.register_death()
    scheduler.release_locks()
    assert client.get("/healthz/web", environ_base=ELSEWHERE).status_code == 200  # families still get answers
    app = create_app(settings.with_overrides(redis_url=f"unix://{tmp_path}/nothing.sock"))
    assert app.test_client().get("/healthz/web").status_code == 503


def test_healthz_follows_a_real_worker_starting_and_stopping(client, aviso, worker_alive, cli_env, tmp_path):
    worker, scheduler = worker_alive
    worker.register_death()
    scheduler.release_locks()
    env = {**os.environ, **cli_env, "AVISO_ENV": "development", "TWILIO_AUTH_TOKEN": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "worker"], cwd=ROOT,
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert _status_within(client, 200, 30), (tmp_path / "worker.log").read_text()[-2000:]
        # RQ registers a worker before it installs its signal handlers: a SIGTERM in between kills it without
        # leaving the registry (like SIGKILL: listed until its key expires). It goes idle once they are in.
        deadline = time.monotonic() + 30
        while not any(w.get_state() == "idle" for w in Worker.all(connection=aviso.connection)):
            assert time.monotonic() < deadline, "the worker never went idle"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # a clean stop: RQ takes it off the registry, frees the locks
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:  # never leave a worker behind to take later tests' jobs
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            raise
    gone = {"urgent": 0, "default": 0, "low": 0}
    assert _answer_within(client, lambda r: r.status_code == 503 and r.get_json()["workers"] == gone, 10), \
        (client.get("/healthz").get_json(), (tmp_path / "worker.log").read_text()[-2000:])


def _status_within(client, status: int, seconds: float) -> bool:
    return _answer_within(client, lambda response: response.status_code == status, seconds)


def _answer_within(client, expected, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not expected(client.get("/healthz")):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
