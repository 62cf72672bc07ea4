"""Production logs under gunicorn: every line on stderr, gunicorn's own included, is one JSON event."""

from __future__ import annotations

import json
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from bot.config import load_settings
from bot.services import Aviso
from bot.store import embedded_redis
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, CONTENT_DIR, PARENT, ROOT, inbound, sign

PUBLIC_BASE_URL = "https://aviso.example.org"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_in_production_writes_one_json_event_per_line_with_request_ids(tmp_path):
    redis_url = embedded_redis.ensure_running(tmp_path / "redis")
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AVISO_ENV": "production",
               "AVISO_SECRET_KEY": secrets.token_urlsafe(32), "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
               "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
               "TWILIO_MESSAGING_SERVICE_SID": "MG" + "a" * 32, "REDIS_URL": redis_url,
               "AVISO_DATA_DIR": str(tmp_path / "data"), "AVISO_CONTENT_DIR": str(CONTENT_DIR), "WEB_CONCURRENCY": "1"}
        Aviso(load_settings(env, dotenv_path=None)).ensure_content()
        port = _free_port()
        log_path = tmp_path / "aviso.log"
        with log_path.open("wb") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "python:bot.gunicorn_conf", "--bind",
                 f"127.0.0.1:{port}", "bot:create_app()"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            params = inbound("DERECHOS")
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/twilio/messages", data=urllib.parse.urlencode(params).encode(),
                headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/twilio/messages", params),
                         "X-Request-Id": "lb-4f2a9c"})
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        assert response.headers["X-Request-Id"] == "lb-4f2a9c"
                        break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.1)
            while '"inbound"' not in log_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(20)
    finally:
        embedded_redis.stop(tmp_path / "redis")
    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is one JSON event
    assert any(line.get("logger") == "gunicorn.error" and "Booting worker" in line["event"] for line in lines)
    assert not [line for line in lines if line.get("logger") == "gunicorn.access"]  # Aviso logs its answers itself
    (answer,) = [line for line in lines if line["event"] == "inbound"]
    assert answer["request_id"] == "lb-4f2a9c" and answer["lang"] == "es" and answer["level"] == "info"
    assert PARENT not in text and PARENT[2:] not in text and "DERECHOS" not in text


def _formatted(formatter, records) -> list[str]:
    import structlog

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id="r1")
    try:
        # The timestamp is the time of formatting: the one thing that may differ.
        return [re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "T", formatter.format(record)) for record in records]
    finally:
        structlog.contextvars.clear_contextvars()


def test_the_formatters_lines_are_structlogs_own():
    # bot.observability.logs formats standard-library records without structlog's copy of each (the webhook's
    # hot path): every kind of record must give the line structlog's ProcessorFormatter gives.
    import logging

    import structlog

    from bot.observability import logs

    try:
        raise ZeroDivisionError("x")
    except ZeroDivisionError:
        failure = sys.exc_info()
    make = logging.getLogger("bot.x").makeRecord
    for fmt in ("json", "console"):
        records = [make("bot.x", logging.INFO, __file__, 1, "inbound contact=%s lang=%s replies=%d", ("ab", "es", 1),
                        None),
                   make("bot.x", logging.WARNING, __file__, 1, "plain %d%% text", (5,), None),
                   make("bot.x", logging.INFO, __file__, 1, "with extra", (), None, extra={"school": "lincoln"}),
                   make("bot.x", logging.ERROR, __file__, 1, "boom x=%s", (1,), failure)]
        ours = logs.formatter(fmt)
        theirs = logs.formatter(fmt)
        theirs.__class__ = structlog.stdlib.ProcessorFormatter
        assert type(ours) is not type(theirs)
        assert _formatted(ours, records) == _formatted(theirs, records)


def test_the_answer_line_written_directly_is_the_line_logging_would_write(tmp_path):
    # logs.info writes each webhook answer's line straight to Aviso's JSON handler (the hot path); it must be
    # the line logger.info gives, and go through logging whenever something else would see the record.
    import logging

    import structlog

    from bot.observability import logs

    path = tmp_path / "app.log"
    root = logging.getLogger()
    others = root.handlers[:]  # pytest's capturing handlers: production has none
    with path.open("w") as stream:
        root.handlers = []
        logs.configure("json", stream=stream)
        logger = logging.getLogger("bot.services.conversations")
        assert logs._only_json_handler(logger) is not None  # the direct path is the one under test
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id="r1")
        try:
            logs.info(logger, "inbound", contact="ab12cd34", channel="sms", command="rights", lang="es", replies=1)
            logger.info("inbound contact=%s channel=%s command=%s lang=%s replies=%d", "ab12cd34", "sms", "rights",
                        "es", 1)
            seen: list[logging.LogRecord] = []
            watcher = logging.Handler()
            watcher.emit = seen.append
            logger.addHandler(watcher)  # another handler (a test's capture, Sentry's): the record goes to both
            try:
                logs.info(logger, "inbound", contact="cd34ab12", channel="whatsapp", command="menu", lang="-",
                          replies=0)
            finally:
                logger.removeHandler(watcher)
            logger.setLevel(logging.WARNING)
            try:
                logs.info(logger, "inbound", contact="quiet", channel="sms", command="menu", lang="-", replies=0)
            finally:
                logger.setLevel(logging.NOTSET)
        finally:
            structlog.contextvars.clear_contextvars()
            root.handlers = others
            logs.configure("json")
    lines = path.read_text().splitlines()
    direct, standard, shared = (re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "T", line) for line in lines)
    assert direct == standard
    assert json.loads(direct)["replies"] == "1" and list(json.loads(direct))[:5] == [
        "event", "request_id", "level", "logger", "timestamp"]
    assert json.loads(shared)["contact"] == "cd34ab12" and json.loads(shared)["request_id"] == "r1"
    assert [record.getMessage() for record in seen] == [
        "inbound contact=cd34ab12 channel=whatsapp command=menu lang=- replies=0"]
