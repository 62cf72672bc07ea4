"""Shared fixtures: a real Redis (Debian's or the embedded one), the app, a signed Twilio client, the content."""

from __future__ import annotations

import os
import re
import signal
import uuid
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import libfaketime
import pytest
import redis
import time_machine
from click.testing import CliRunner
from rq import SimpleWorker, Worker
from twilio.request_validator import RequestValidator

from bot import create_app, services
from bot.config import Settings
from bot.content import samples as sample_workshops
from bot.content.model import Content
from bot.services import jobs  # noqa: F401  (loaded before RQ forks work horses, as `aviso worker` does)
from bot.store import embedded_redis

from . import redis_server

ROOT = Path(__file__).resolve().parent.parent
CONTENT_DIR = ROOT / "content"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "1" * 32
PUBLIC_BASE_URL = "https://aviso.example.org"
PARENT = "+12135550123"


def _clock_offset(text: str) -> timedelta:
    """AVISO_TEST_CLOCK: "+365d", "-365d", "+6h"."""
    match = re.fullmatch(r"([+-])(\d+)([dh])", text.strip())
    if not match:
        raise pytest.UsageError(f"AVISO_TEST_CLOCK={text!r}: write it like +365d, -365d or +6h")
    sign, amount, unit = match.groups()
    offset = timedelta(days=int(amount)) if unit == "d" else timedelta(hours=int(amount))
    return offset if sign == "+" else -offset


def pytest_configure(config):
    """AVISO_TEST_CLOCK=+365d moves this process's clock (time, datetime, date; still ticking) for the whole
    run, to show that no test depends on the day it runs. time-machine rather than libfaketime: the
    tests fork RQ work horses while the fake Twilio's threads read the clock, and a fork under
    libfaketime deadlocks on its lock (and Debian's 0.9.10 never returns from Python 3.11's timed lock
    waits). Servers the tests start (Redis, gunicorn, chromium) keep the real clock."""
    offset = os.environ.get("AVISO_TEST_CLOCK")
    if offset:
        moved = _clock_offset(offset)
        traveller = time_machine.travel(datetime.now(UTC) + moved, tick=True)
        traveller.start()
        config.add_cleanup(traveller.stop)
        # The Python processes the tests start move their clocks the same way (tests/clock/sitecustomize.py).
        os.environ["TEST_CLOCK_OFFSET_SECONDS"] = str(moved.total_seconds())
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests" / "clock"),
                                                                 os.environ.get("PYTHONPATH")]))


@contextmanager
def _redis_clock():
    """Start Redis with the tests' clock: under AVISO_TEST_CLOCK, through the libfaketime that the
    `libfaketime` package ships (Redis expires keys at absolute times the app computes)."""
    offset = os.environ.get("AVISO_TEST_CLOCK")
    if not offset:
        yield
        return
    library = next(Path(libfaketime.__file__).parent.glob("vendor/libfaketime/src/libfaketime.so.1"))
    saved = {name: os.environ.get(name) for name in ("LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC")}
    os.environ.update(LD_PRELOAD=str(library), FAKETIME=offset.strip(), FAKETIME_DONT_FAKE_MONOTONIC="1")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pytest_report_header(config):
    """Say which Redis the session runs on, and when the clock is moved."""
    lines = [f"redis: {redis_server.kind()} (AVISO_TEST_REDIS)"]
    if os.environ.get("AVISO_TEST_CLOCK"):
        lines.append(f"clock moved {os.environ['AVISO_TEST_CLOCK']}: today is {date.today()}")
    return lines


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """One redis-server for the whole test session: Debian's on a free port (AVISO_TEST_REDIS=debian, as
    production runs) or the embedded one on a socket (AVISO_TEST_REDIS=embedded or unset, as `scripts/run`)."""
    data_dir = tmp_path_factory.mktemp("redis")
    if redis_server.kind() == "debian":
        server = redis_server.RedisServer(data_dir)
        with _redis_clock():
            url = server.start()
        yield url
        server.stop()
        return
    with _redis_clock():
        url = embedded_redis.ensure_running(data_dir)
    yield url
    embedded_redis.stop(data_dir)


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server for this test alone (the embedded one), every write on disk at once: the test may kill
    or freeze it (SIGSTOP). Yields its data folder, URL and pid."""
    data_dir = tmp_path / "redis"
    url = embedded_redis.ensure_running(data_dir)
    with redis.Redis.from_url(url) as connection:
        connection.config_set("appendfsync", "always")
    pid = int((data_dir / embedded_redis.PID_NAME).read_text())
    yield data_dir, url, pid
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass
    embedded_redis.stop(data_dir)


@pytest.fixture(scope="session")
def shipped_content() -> Content:
    """The content that ships in content/, as development publishes it: its sample workshops moved to the
    weeks after the day the run started (the `app` fixture publishes exactly this)."""
    literal = Content.from_dir(CONTENT_DIR)
    today = datetime.now(ZoneInfo(literal.tree["manifest"]["timezone"])).date()
    return Content(sample_workshops.moved_to_coming_weeks(literal.tree, today))


@pytest.fixture
def settings(redis_url, tmp_path) -> Settings:
    """Signatures checked (a token is set, so no development tools either), outbox sender (no account sid).
    load_settings would refuse development with a token; built directly, it keeps development's content."""
    return Settings(
        env="development",
        data_dir=tmp_path / "data",
        content_dir=CONTENT_DIR,
        redis_url=redis_url,
        public_base_url=PUBLIC_BASE_URL,
        secret_key="test-key-HytYACjayuf8h3Bp5or35gLUZMkfxP30wo7wJJ23OWk",
        twilio_auth_token=AUTH_TOKEN,
    )


@pytest.fixture
def app(settings, shipped_content):
    """The app on an empty Redis, the shipped content published."""
    app = create_app(settings)
    app.testing = True
    aviso = services.current_from(app)
    aviso.connection.flushdb()
    aviso.content.publish(shipped_content, by="first boot")
    yield app
    aviso.connection.flushdb()


@pytest.fixture
def aviso(app):
    """The app's services."""
    return services.current_from(app)


@pytest.fixture
def client(app):
    """Flask's test client."""
    return app.test_client()


@pytest.fixture
def runner():
    """Click's runner for the aviso command."""
    return CliRunner()


@pytest.fixture
def cli_env(settings) -> dict[str, str]:
    """The environment that makes the `aviso` command use the same Redis, keys and sender as `settings`
    (development takes a Twilio token only with the fake Twilio on this machine: with no account, none)."""
    live = settings.twilio_sending_configured
    return {
        "AVISO_ENV": settings.env, "AVISO_DATA_DIR": str(settings.data_dir), "REDIS_URL": settings.redis_url,
        "AVISO_CONTENT_DIR": str(settings.content_dir), "AVISO_SECRET_KEY": settings.secret_key,
        "AVISO_ENCRYPTION_KEYS": ",".join(settings.encryption_keys),
        "PUBLIC_BASE_URL": settings.public_base_url, "TWILIO_AUTH_TOKEN": settings.twilio_auth_token if live else "",
        "TWILIO_ACCOUNT_SID": settings.twilio_account_sid or "",
        "TWILIO_API_BASE_URL": settings.twilio_api_base_url or "",
        "TWILIO_MESSAGING_SERVICE_SID": settings.twilio_messaging_service_sid or "",
        # Under AVISO_TEST_CLOCK, a process started with this environment keeps the tests' clock.
        **{name: os.environ[name] for name in ("PYTHONPATH", "TEST_CLOCK_OFFSET_SECONDS") if name in os.environ},
    }


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature exactly as Twilio computes it."""
    return RequestValidator(token).compute_signature(url, params)


def inbound(body: str, from_: str = PARENT, sid: str | None = None, **extra: str) -> dict[str, str]:
    """Twilio's inbound-message form fields."""
    params = {
        "MessageSid": sid or "SM" + uuid.uuid4().hex,
        "AccountSid": ACCOUNT_SID,
        "From": from_,
        "To": "+12135550100",
        "Body": body,
        "NumMedia": "0",
    }
    params.update(extra)
    return params


class Phone:
    """A family's phone texting the webhook, signed like Twilio."""

    def __init__(self, client, number: str = PARENT):
        self.client = client
        self.number = number

    def post(self, params: dict[str, str], path: str = "/twilio/messages", signature: str | None = None):
        """Post form params to a webhook path with a valid (or the given) signature."""
        if signature is None:
            signature = sign(PUBLIC_BASE_URL + path, params)
        return self.client.post(path, data=params, headers={"X-Twilio-Signature": signature})

    def text(self, body: str, sid: str | None = None, **extra: str) -> list[str]:
        """Send a message; return the replies the TwiML carries."""
        response = self.post(inbound(body, self.number, sid, **extra))
        assert response.status_code == 200, response.data
        assert response.mimetype == "text/xml"
        return replies(response.data)


def replies(twiml: bytes) -> list[str]:
    """The texts of the <Message> elements of a TwiML answer."""
    root = ElementTree.fromstring(twiml)
    assert root.tag == "Response"
    return [message.text or "" for message in root.iter("Message")]


@pytest.fixture
def phone(client):
    """An SMS phone."""
    return Phone(client)


@pytest.fixture
def whatsapp(client):
    """A WhatsApp phone."""
    return Phone(client, "whatsapp:+12135550124")


class JobRunner(SimpleWorker):
    """RQ's worker in the test process, without the pub/sub listener for remote commands: stopping that
    listener can wait a minute on a connection with health checks, and the tests never send commands."""

    def subscribe(self):
        """No remote commands in tests."""


class ForkingJobRunner(Worker):
    """RQ's forking worker (a work horse per job, as in production), without the pub/sub listener."""

    def subscribe(self):
        """No remote commands in tests."""
