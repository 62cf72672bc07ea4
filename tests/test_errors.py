"""Error reports: with SENTRY_DSN set, a failing request or RQ job reaches Sentry (a local fake DSN server
here, recording envelopes) without any number, user id, message body, cookie or credential."""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk
from rq import Queue

from bot import create_app
from bot.observability import errors
from bot.store import queues
from tests.conftest import PARENT
from tests.test_fanout import BurstWorker

USER_ID = "US.13491208655302741918"
BODY = "agentes en mi puerta, me llamo Xochiquetzal"
COOKIE = "session=secret-cookie-value-123"
API_TOKEN, SIGNATURE = "api-token-abcdef", "c2lnbmF0dXJl"  # up here: Sentry quotes the lines around a failure


class FakeSentry:
    """An HTTP server on 127.0.0.1 that accepts Sentry envelopes and keeps their items."""

    def __init__(self):
        self.items: list[dict] = []
        self.raw: list[bytes] = []
        self.arrived = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                lines = body.split(b"\n")
                with fake.arrived:
                    fake.raw.append(body)
                    fake.items += [json.loads(line) for line in lines[2::2] if line.strip()]
                    fake.arrived.notify_all()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://publickey0123456789@127.0.0.1:{self.server.server_address[1]}/1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, count: int = 1, seconds: float = 20) -> list[dict]:
        """Wait for `count` error events."""
        deadline = time.monotonic() + seconds
        with self.arrived:
            while len(self._errors()) < count and time.monotonic() < deadline:
                self.arrived.wait(deadline - time.monotonic())
            return self._errors()

    def _errors(self) -> list[dict]:
        return [item for item in self.items if item.get("exception")]


@pytest.fixture
def sentry():
    """The fake DSN server; Sentry's client is closed after the test (it is global to the process)."""
    fake = FakeSentry()
    yield fake
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    fake.server.shutdown()
    fake.server.server_close()


def fail_with_private_details(number: str) -> None:
    """An RQ job that fails with a number and a family's words in its message (as a careless one might)."""
    raise RuntimeError(f"could not reach {number} / whatsapp:{USER_ID}: {BODY}")


def test_a_failing_request_is_reported_without_numbers_bodies_or_cookies(settings, sentry):
    app = create_app(settings.with_overrides(sentry_dsn=sentry.dsn))

    @app.post("/boom")
    def boom():
        fail_with_private_details(PARENT)

    response = app.test_client().post(
        f"/boom?From={PARENT.replace('+', '%2B')}", data={"Body": BODY, "From": PARENT, "WaId": PARENT[1:]},
        headers={"Cookie": COOKIE, "Authorization": f"Bearer {API_TOKEN}", "X-Twilio-Signature": SIGNATURE})
    assert response.status_code == 500
    (event,) = sentry.events()
    assert event["exception"]["values"][0]["type"] == "RuntimeError"
    assert event["request"]["method"] == "POST"
    raw = b"".join(sentry.raw).decode()
    for secret in (PARENT, PARENT[2:], PARENT[-7:], USER_ID, "Xochiquetzal", "agentes", "secret-cookie-value",
                   API_TOKEN, SIGNATURE):
        assert secret not in raw, raw[max(0, raw.find(secret) - 300):raw.find(secret) + 50]


def fail_sending_to(number: str) -> None:
    """An RQ job that fails naming a number and a user id (jobs never see a family's words: none are kept)."""
    raise RuntimeError(f"could not reach {number} / whatsapp:{USER_ID}")


def test_a_failing_job_in_a_forked_worker_is_reported_scrubbed(app, aviso, settings, sentry):
    app = create_app(settings.with_overrides(sentry_dsn=sentry.dsn))
    Queue(queues.LOW, connection=aviso.connection).enqueue(fail_sending_to, PARENT)
    with app.app_context():
        BurstWorker([queues.LOW], connection=aviso.connection).work(burst=True, logging_level="WARNING")
    events = sentry.events()
    assert events and events[0]["exception"]["values"][-1]["type"] == "RuntimeError"
    assert "rq-job" in events[0]["extra"]  # the RQ integration's record of the job (its arguments scrubbed)
    raw = b"".join(sentry.raw).decode()
    for secret in (PARENT, PARENT[2:], PARENT[-7:], USER_ID, USER_ID[3:]):
        assert secret not in raw, raw[max(0, raw.find(secret) - 300):raw.find(secret) + 50]


@pytest.mark.parametrize(("before", "after"), [
    ("could not send to +12135550123", "could not send to [number]"),
    ("whatsapp:+52 55 1234 5678 failed", "whatsapp:[number] failed"),
    ("user US.13491208655302741918 left", "user [number] left"),
    ("(213) 555-0123", "[number]"),
    ("broadcast 4f2a9c0d batch 3 failed after 5 calls (20429)", "broadcast 4f2a9c0d batch 3 failed after 5 calls "
     "(20429)"),
])
def test_the_scrubber_masks_numbers_and_user_ids_in_any_text(before, after):
    assert errors.scrub({"message": before})["message"] == after


def test_the_scrubber_drops_bodies_cookies_and_credentials_wherever_they_are():
    event = {"request": {"data": {"Body": BODY}, "cookies": {"session": "x"}, "query_string": "From=%2B1213",
                         "headers": [["Cookie", COOKIE], ["Authorization", "Bearer t"], ["Accept", "text/xml"]]},
             "extra": {"rq-job": {"kwargs": {"body": BODY, "text": BODY}, "args": ["+12135550123"]}}}
    scrubbed = errors.scrub(event)
    assert scrubbed["request"] == {"headers": [["Cookie", "[removed]"], ["Authorization", "[removed]"],
                                               ["Accept", "text/xml"]]}
    assert scrubbed["extra"]["rq-job"] == {"kwargs": {"body": "[removed]", "text": "[removed]"}, "args": ["[number]"]}
