"""The webhook's scripts on a thread's own connection (bot/store/scripts.py): a write sent without waiting
lands in Redis in order, its reply is read later without mixing it up with the next script's, a script
Redis lost is run again, and a write Redis refuses is logged and counted."""

from __future__ import annotations

import logging
import os
import signal
import time

import pytest
import redis
from prometheus_client import REGISTRY

from bot.store.scripts import ScriptRunner

ADD = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
COUNT_FIELD = "return redis.call('HINCRBY', KEYS[1], 'f', 1)"  # WRONGTYPE on a key that holds a string


@pytest.fixture
def connection(redis_url):
    with redis.Redis.from_url(redis_url) as connection:
        connection.flushdb()
        yield connection
        connection.flushdb()


def not_saved(reason: str) -> float:
    return REGISTRY.get_sample_value("aviso_answers_not_saved_total", {"reason": reason}) or 0.0


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_sent_write_reaches_redis_without_anyone_reading_its_reply(connection):
    runner = ScriptRunner(connection, ADD)
    runner.send(runner.scripts[0], ["n"], [5])
    assert wait_for(lambda: connection.get("n") == b"5")  # seen from another connection, nothing confirmed
    assert runner.confirm() is True


def test_the_next_script_gets_its_own_reply_not_the_unconfirmed_one(connection):
    runner = ScriptRunner(connection, ADD)
    add = runner.scripts[0]
    runner.send(add, ["n"], [5])
    assert runner.run(add, ["n"], [1]) == 6
    assert runner.confirm() is True  # nothing left to confirm
    assert runner.client().get("n") == b"6"


def test_a_script_flushed_between_sending_and_confirming_is_run_again(connection):
    runner = ScriptRunner(connection, ADD)
    add = runner.scripts[0]
    assert runner.run(add, ["n"], [1]) == 1
    connection.script_flush()
    runner.send(add, ["n"], [5])
    assert runner.confirm() is True
    assert connection.get("n") == b"6"


def test_scripts_are_loaded_before_the_first_write_is_sent(connection):
    connection.script_flush()
    runner = ScriptRunner(connection, COUNT_FIELD, ADD)
    runner.send(runner.scripts[1], ["n"], [3])  # never run before on this Redis: no NOSCRIPT to read too late
    assert wait_for(lambda: connection.get("n") == b"3")
    assert runner.confirm() is True


def test_a_write_redis_refuses_is_logged_and_counted_and_the_next_script_still_runs(connection, caplog):
    runner = ScriptRunner(connection, COUNT_FIELD, ADD)
    count_field, add = runner.scripts
    connection.set("s", "a string, not a hash")
    before = not_saved("error")
    with caplog.at_level(logging.ERROR, logger="bot.store.scripts"):
        runner.send(count_field, ["s"], [])
        assert runner.confirm() is False
    assert not_saved("error") == before + 1
    assert "its write was not saved (WRONGTYPE)" in caplog.text
    assert runner.run(add, ["n"], [1]) == 1


def test_a_write_to_a_frozen_redis_does_not_hold_the_answer_and_lands_when_it_wakes(own_redis):
    _, url, pid = own_redis
    with redis.Redis.from_url(url, socket_timeout=5) as connection:  # waiting for Redis would raise
        runner = ScriptRunner(connection, ADD)
        add = runner.scripts[0]
        runner.run(add, ["n"], [1])
        os.kill(pid, signal.SIGSTOP)  # Redis frozen: the write waits in its socket
        try:
            runner.send(add, ["n"], [5])  # returns at once: the answer goes out now, not after Redis
        finally:
            os.kill(pid, signal.SIGCONT)
        assert runner.run(add, ["n"], [10]) == 16  # the write's reply is read first, then this one's


def test_a_write_lost_with_its_redis_is_logged_and_counted(own_redis, caplog):
    _, url, pid = own_redis
    with redis.Redis.from_url(url) as connection:
        runner = ScriptRunner(connection, ADD)
        add = runner.scripts[0]
        runner.run(add, ["n"], [1])
        os.kill(pid, signal.SIGSTOP)
        runner.send(add, ["n"], [5])
        os.kill(pid, signal.SIGKILL)  # gone before it ran the write
        before = not_saved("unreachable")
        with caplog.at_level(logging.ERROR, logger="bot.store.scripts"):
            assert runner.confirm() is False
        assert not_saved("unreachable") == before + 1
        assert "its write was not saved (ConnectionError)" in caplog.text
