"""`aviso doctor` against real redis-servers (a misconfigured one: AOF off, an eviction policy; the session's,
set up as the README asks) and the fake Twilio, before and after `aviso twilio setup`."""

from __future__ import annotations

import pytest
from rq import Worker
from rq.scheduler import RQScheduler

from bot.cli.main import cli
from bot.people.identity import Keyring
from bot.services import doctor
from bot.store import keys, queues
from bot.twilio.fake import FakeTwilio

from . import redis_server
from .conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE_URL

SERVICE = "MG" + "d" * 32
NUMBER = "+12135550100"
MISCONFIGURED = ("appendonly no", "maxmemory-policy allkeys-lru", "hash-max-ziplist-value 64", "save ''")


def statuses(report: doctor.Report) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


@pytest.fixture
def misconfigured(tmp_path):
    """A real redis-server set up as a district must not: no AOF, evicting keys when full."""
    with redis_server.RedisServer(tmp_path / "bad", redis_server.session_binary(), MISCONFIGURED) as server:
        yield server


@pytest.fixture
def running(aviso):
    """A worker on every queue and a scheduler holding their locks, recorded by RQ's own calls."""
    worker = Worker(list(queues.ALL), connection=aviso.connection)
    worker.register_birth()
    scheduler = RQScheduler(list(queues.ALL), connection=aviso.connection)
    scheduler.acquire_locks()
    yield
    scheduler.release_locks()
    scheduler.connection.connection_pool.disconnect()
    worker.register_death()


@pytest.fixture
def fake():
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, phone_numbers=[NUMBER],
                    messaging_services=[SERVICE]) as server:
        yield server


def live(settings, fake, **changes):
    """Production settings with a (fake) Twilio account and its Messaging Service."""
    return settings.with_overrides(**{"env": "production", "twilio_account_sid": ACCOUNT_SID,
                                      "twilio_auth_token": AUTH_TOKEN, "twilio_api_base_url": fake.url,
                                      "twilio_messaging_service_sid": SERVICE, **changes})


def test_doctor_fails_a_redis_without_aof_and_with_an_eviction_policy(runner, cli_env, settings, misconfigured):
    report = doctor.diagnose(settings.with_overrides(redis_url=misconfigured.url))
    found = statuses(report)
    assert found["redis reachable"] == "OK"
    assert found["redis persistence"] == "FAIL" and found["redis eviction"] == "FAIL"
    assert found["redis memory"] == "WARN"
    assert report.failed
    result = runner.invoke(cli, ["doctor"], env={**cli_env, "REDIS_URL": misconfigured.url})
    assert result.exit_code == 1
    assert "appendonly is off" in result.output and "maxmemory-policy allkeys-lru" in result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("OK") and "redis reachable" in lines[0]
    assert any(line.startswith("FAIL") and "redis eviction" in line for line in lines)
    assert lines[-1].startswith("5 FAIL, 2 WARN")  # and no worker, scheduler or content on that Redis


def test_doctor_passes_the_sessions_redis_with_a_worker_scheduler_and_content(settings, aviso, running):
    report = doctor.diagnose(settings, aviso.connection)
    found = statuses(report)
    for name in ("redis reachable", "redis version", "redis persistence", "redis eviction", "redis memory",
                 "redis tls", "key strength", "public url", "worker", "scheduler", "content"):
        assert found[name] == "OK", report
    assert not report.failed


def test_doctor_fails_without_a_worker_a_scheduler_or_content(settings, aviso):
    aviso.connection.delete(keys.CONTENT_ACTIVE)
    found = statuses(doctor.diagnose(settings, aviso.connection))
    assert found["worker"] == found["scheduler"] == found["content"] == "FAIL"


def test_doctor_says_when_redis_is_unreachable(settings, tmp_path):
    report = doctor.diagnose(settings.with_overrides(redis_url=f"unix://{tmp_path}/nothing.sock"))
    assert report.checks[0].name == "redis reachable" and report.checks[0].status == "FAIL"
    assert "worker" not in statuses(report)


def test_doctor_warns_in_production_of_plain_redis_across_a_network_without_a_password(settings, aviso, fake):
    remote = live(settings, fake, redis_url="redis://redis.internal.example.org:6379/0")
    found = statuses(doctor.diagnose(remote, aviso.connection))
    assert found["redis tls"] == "WARN" and found["redis password"] == "WARN"
    secured = live(settings, fake, redis_url="rediss://aviso:s3cret-pass@redis.internal.example.org:6380/0")
    report = doctor.diagnose(secured, aviso.connection)
    assert statuses(report)["redis tls"] == "OK" and statuses(report)["redis password"] == "OK"
    assert "s3cret-pass" not in repr(report) and "aviso:***@" in report.checks[0].advice


def test_doctor_fails_weak_keys_and_another_naming_key(settings, aviso):
    weak = settings.with_overrides(encryption_keys=("password" * 4,))
    assert statuses(doctor.diagnose(weak, aviso.connection))["key strength"] == "FAIL"
    aviso.connection.set(keys.NAMING_KEY, Keyring(settings.secret_key).naming_fingerprint())
    assert statuses(doctor.diagnose(settings, aviso.connection))["naming key"] == "OK"
    other = settings.with_overrides(secret_key="another-key-7Qp2Vx9LmZr4Tn8Kd1Ws6Hy3Bc5Fg0Jq")
    assert statuses(doctor.diagnose(other, aviso.connection))["naming key"] == "FAIL"


def test_doctor_fails_a_plain_http_public_url_in_production(settings, aviso, fake):
    found = statuses(doctor.diagnose(live(settings, fake, public_base_url="http://aviso.example.org"),
                                     aviso.connection))
    assert found["public url"] == "FAIL"


def test_doctor_reads_twilios_urls_before_and_after_twilio_setup(runner, cli_env, settings, aviso, fake):
    production = live(settings, fake)
    before = statuses(doctor.diagnose(production, aviso.connection))
    assert before["twilio webhook"] == "FAIL"
    assert before["twilio status callback"] == before["twilio fallback"] == "WARN"
    env = {**cli_env, "AVISO_ENV": "production", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_API_BASE_URL": fake.url, "TWILIO_MESSAGING_SERVICE_SID": SERVICE}
    assert runner.invoke(cli, ["twilio", "setup"], env=env).exit_code == 0
    after = doctor.diagnose(production, aviso.connection)
    found = statuses(after)
    assert found["twilio webhook"] == found["twilio status callback"] == found["twilio fallback"] == "OK"
    assert any(check.advice == PUBLIC_BASE_URL + "/twilio/messages" for check in after.checks)


def test_doctor_reads_a_numbers_urls_without_a_messaging_service(runner, cli_env, settings, aviso, fake):
    production = live(settings, fake, twilio_messaging_service_sid=None, twilio_sms_from=NUMBER)
    assert statuses(doctor.diagnose(production, aviso.connection))["twilio webhook"] == "FAIL"
    env = {**cli_env, "AVISO_ENV": "production", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_API_BASE_URL": fake.url, "TWILIO_SMS_FROM": NUMBER}
    assert runner.invoke(cli, ["twilio", "setup", "--number", NUMBER], env=env).exit_code == 0
    found = statuses(doctor.diagnose(production, aviso.connection))
    assert found["twilio webhook"] == found["twilio fallback"] == found["twilio voice"] == "OK"
    missing = live(settings, fake, twilio_messaging_service_sid=None, twilio_sms_from="+12135550999")
    assert statuses(doctor.diagnose(missing, aviso.connection))["twilio"] == "FAIL"


def test_doctor_warns_where_a_managed_redis_hides_its_settings(settings, tmp_path):
    hidden = (*redis_server.BASE_CONFIG, 'rename-command CONFIG ""')
    with redis_server.RedisServer(tmp_path / "managed", redis_server.session_binary(), hidden) as server:
        report = doctor.diagnose(settings.with_overrides(redis_url=server.url))
    found = statuses(report)
    assert found["redis reachable"] == "OK"
    assert found["redis persistence"] == found["redis eviction"] == "WARN"
    assert "provider's settings" in next(c.advice for c in report.checks if c.name == "redis persistence")
