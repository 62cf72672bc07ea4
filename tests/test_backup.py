"""`aviso backup FILE` / `aviso restore FILE`: an encrypted, versioned snapshot of every Aviso key (and RQ's
queued and scheduled jobs), brought back whole with its expiry times, on the session's real Redis."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue, Worker
from rq.scheduler import RQScheduler

from bot.cli.main import cli
from bot.people import contacts
from bot.people.identity import SMS, Address
from bot.store import backup, keys, queues

from .test_broadcasts import subscribe

CONTACTS = 100_000
CONTACT_TTL_MS = 180 * 24 * 3600 * 1000
CLOCK = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def snapshot(connection) -> dict[bytes, tuple[object, bool]]:
    """Every key a backup keeps: its value (read by its type) and whether it expires."""
    names = backup.key_names(connection)
    pipe = connection.pipeline(transaction=False)
    for name in names:
        pipe.type(name)
    types = pipe.execute()
    read = {b"string": pipe.get, b"hash": pipe.hgetall, b"set": pipe.smembers, b"list": lambda n: pipe.lrange(n, 0, -1),
            b"zset": lambda n: pipe.zrange(n, 0, -1, withscores=True), b"stream": lambda n: pipe.xrange(n)}
    for name, kind in zip(names, types, strict=True):
        read[kind](name)
        pipe.pttl(name)
    answers = pipe.execute()
    return {name: (answers[2 * i], answers[2 * i + 1] >= 0) for i, name in enumerate(names)}


def many_contacts(aviso, count: int) -> None:
    """count subscribed contacts as the webhook stores them (encrypted numbers, a school's set, an expiry)."""
    encrypted = aviso.keyring.encrypt("+12135550000")  # one token for all: the backup never reads it
    pipe = aviso.connection.pipeline(transaction=False)
    for n in range(count):
        key = aviso.keyring.contact_key(Address(SMS, f"+1213{n:07d}"))
        name = contacts.contact_redis_key(key)
        pipe.hset(name, mapping={"lang": "es", "ch": SMS, "num": encrypted, "opted_out": "0", "schools": "BELMONT"})
        pipe.pexpire(name, CONTACT_TTL_MS)
        pipe.sadd(keys.SCHOOL_SUBSCRIBERS.format(code="BELMONT"), key)
        if n % 2000 == 1999:
            pipe.execute()
    pipe.execute()


@pytest.fixture
def district(aviso, phone):
    """A little of everything: families who texted, a subscriber, staff, an audit entry, a queued job."""
    phone.text("HOLA")
    phone.text("1")
    subscribe(aviso, "+12135550177")
    known = set(aviso.active_content().schools.by_code)
    aviso.roster.add("+12135550999", "District Admin", "admin", ["BELMONT"], known)
    aviso.audit.record("operator", "test", "backup")
    # a reminder job scheduled days ahead (never run here): RQ's keys are kept too
    Queue(queues.DEFAULT, connection=aviso.connection).enqueue_in(timedelta(days=3), queues.SEND_REMINDERS, "w1")
    return aviso


def test_backup_and_restore_bring_back_100000_contacts_and_everything_else(runner, cli_env, aviso, district,
                                                                            tmp_path):
    many_contacts(aviso, CONTACTS)
    before = snapshot(aviso.connection)
    assert len(before) > CONTACTS
    file = tmp_path / "aviso.backup"
    made = runner.invoke(cli, ["backup", str(file)], env=cli_env)
    assert made.exit_code == 0, made.output
    assert f"{len(before)} keys written" in made.output
    assert file.stat().st_mode & 0o077 == 0  # its owner's alone
    assert b"BELMONT" not in file.read_bytes() and b"District Admin" not in file.read_bytes()  # encrypted
    with file.open("rb") as source:
        header = backup.read_header(source)
    assert header.format == backup.FORMAT and header.keys == len(before)

    aviso.connection.flushdb()
    restored = runner.invoke(cli, ["restore", str(file)], env=cli_env)
    assert restored.exit_code == 0, restored.output
    assert f"{len(before)} keys restored" in restored.output
    after = snapshot(aviso.connection)
    assert after == before  # the same values, and the same keys expire
    name = contacts.contact_redis_key(aviso.keyring.contact_key(Address(SMS, "+12130000007")))
    assert 0 < aviso.connection.pttl(name) <= CONTACT_TTL_MS
    assert len(aviso.roster.all()) == 1


def test_restore_refuses_a_redis_holding_aviso_data_unless_told_to_replace(runner, cli_env, aviso, district,
                                                                          tmp_path):
    file = tmp_path / "aviso.backup"
    assert runner.invoke(cli, ["backup", str(file)], env=cli_env).exit_code == 0
    before = snapshot(aviso.connection)
    aviso.audit.record("operator", "after the backup", "x")
    refused = runner.invoke(cli, ["restore", str(file)], env=cli_env)
    assert refused.exit_code == 1 and "already holds Aviso's data" in refused.output
    replaced = runner.invoke(cli, ["restore", "--replace", str(file)], env=cli_env)
    assert replaced.exit_code == 0, replaced.output
    assert snapshot(aviso.connection)[keys.AUDIT.encode()] == before[keys.AUDIT.encode()]


def test_a_changed_cut_or_foreign_backup_is_refused_before_anything_is_written(runner, cli_env, aviso, district,
                                                                              tmp_path):
    file = tmp_path / "aviso.backup"
    assert runner.invoke(cli, ["backup", str(file)], env=cli_env).exit_code == 0
    data = file.read_bytes()
    aviso.connection.flushdb()
    cases = {
        "changed": data[:-40] + bytes([data[-40] ^ 1]) + data[-39:],
        "cut": data[: len(data) - 30],
        "extended": data + b"x",
        "header": data.replace(b'"keys": ', b'"keys": 1', 1),
        "not a backup": b"PK\x03\x04 a zip file",
    }
    for case, content in cases.items():
        broken = tmp_path / f"{case}.backup"
        broken.write_bytes(content)
        result = runner.invoke(cli, ["restore", str(broken)], env=cli_env)
        assert result.exit_code == 1, case
        assert aviso.connection.dbsize() == 0, case
    other_key = {**cli_env, "AVISO_SECRET_KEY": "another-deployment-Zq7Rt2Wv9Kp4Lx8Mn3Bc6Df1Gh5Jy"}
    foreign = runner.invoke(cli, ["restore", str(file)], env=other_key)
    assert foreign.exit_code == 1 and "does not open with this AVISO_SECRET_KEY" in foreign.output
    assert aviso.connection.dbsize() == 0


def test_keys_that_expired_while_the_backup_was_kept_stay_gone(aviso, tmp_path):
    aviso.connection.set("aviso:test:short", "x", px=300)
    aviso.connection.set("aviso:test:kept", "y")
    file = tmp_path / "aviso.backup"
    with file.open("wb") as out:
        made = backup.write(aviso.connection, out, aviso.settings.secret_key, now=CLOCK)
    assert made.header.created == "2026-03-02T08:30:00+00:00"
    deadline = time.monotonic() + 10
    while aviso.connection.exists("aviso:test:short") and time.monotonic() < deadline:
        time.sleep(0.05)
    aviso.connection.flushdb()
    with file.open("rb") as source:
        summary = backup.restore(aviso.connection, source, aviso.settings.secret_key)
    assert summary.expired == 1 and summary.written == made.written - 1
    assert not aviso.connection.exists("aviso:test:short") and aviso.connection.get("aviso:test:kept") == b"y"


def test_running_workers_and_scheduler_locks_are_not_kept(aviso, tmp_path):
    worker = Worker(list(queues.ALL), connection=aviso.connection)
    worker.register_birth()
    scheduler = RQScheduler(list(queues.ALL), connection=aviso.connection)
    scheduler.acquire_locks()
    try:
        names = [name.decode() for name in backup.key_names(aviso.connection)]
    finally:
        scheduler.release_locks()
        scheduler.connection.connection_pool.disconnect()
        worker.register_death()
    assert not [name for name in names if name.startswith(backup.NOT_KEPT)]
    assert keys.CONTENT_ACTIVE in names


def test_the_header_is_readable_without_the_key(aviso, tmp_path):
    file = tmp_path / "aviso.backup"
    with file.open("wb") as out:
        backup.write(aviso.connection, out, aviso.settings.secret_key, now=CLOCK)
    raw = file.read_bytes()
    length = int.from_bytes(raw[len(backup.MAGIC):len(backup.MAGIC) + 4], "big")
    fields = json.loads(raw[len(backup.MAGIC) + 4:len(backup.MAGIC) + 4 + length])
    assert fields["format"] == 1 and fields["cipher"] == "AES-256-GCM" and fields["keys"] > 0


def test_backup_of_an_unreachable_redis_says_so_and_leaves_no_file(runner, cli_env, tmp_path):
    file = tmp_path / "aviso.backup"
    result = runner.invoke(cli, ["backup", str(file)], env={**cli_env, "REDIS_URL": f"unix://{tmp_path}/none.sock"})
    assert result.exit_code == 1 and "cannot read Redis" in result.output
    assert list(tmp_path.iterdir()) == []
