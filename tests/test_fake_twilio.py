"""The local Twilio fake, driven through the real twilio library via bot.twilio.client.make_client."""

import asyncio
import http.server
import json
import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from bot.twilio.client import make_async_client, make_client, rewrite_url
from bot.twilio.fake import FakeTwilio
from bot.twilio.fake.state import num_segments

SENDER = "+15005550006"
FAMILY = "+15551230001"
OTHER_FAMILY = "+15551230002"
SERVICE_SID = "MG" + "a" * 32
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake():
    """A running fake owning SENDER and SERVICE_SID, answering without latency."""
    with FakeTwilio(phone_numbers=[SENDER], messaging_services=[SERVICE_SID]) as server:
        yield server


@pytest.fixture
def client(fake):
    """A real twilio Client pointed at the fake."""
    return make_client(fake.account_sid, fake.auth_token, api_base_url=fake.url, timeout=5.0)


@pytest.fixture
def callback_server():
    """A small local HTTP server recording every POST as (url, form params, X-Twilio-Signature)."""
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            url = f"http://127.0.0.1:{self.server.server_port}{self.path}"
            received.append((url, dict(parse_qsl(body)), self.headers.get("X-Twilio-Signature")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def wait_for(predicate, timeout=5.0):
    """Poll predicate until true or timeout; return its last value."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return result


def send(client, body="Hola", to=FAMILY, **kw):
    """Create a message from SENDER."""
    return client.messages.create(to=to, from_=SENDER, body=body, **kw)


def test_create_message_returns_sm_sid_queued_status_and_segment_count(client, fake):
    message = send(client, "Hello")
    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.status, message.num_segments, message.direction) == ("queued", "1", "outbound-api")
    assert (message.to, message.from_, message.body) == (FAMILY, SENDER, "Hello")
    assert message.account_sid == fake.account_sid and message.error_code is None
    assert message.date_created.tzinfo is not None
    assert fake.messages()[0]["sid"] == message.sid


def test_messaging_service_send_is_accepted_without_from(client):
    message = client.messages.create(to=FAMILY, messaging_service_sid=SERVICE_SID, body="Hola")
    assert (message.status, message.from_, message.messaging_service_sid) == ("accepted", None, SERVICE_SID)


@pytest.mark.parametrize(
    ("body", "segments"),
    [("a" * 160, "1"), ("a" * 161, "2"), ("a" * 306, "2"), ("a" * 307, "3"),
     ("€" * 80, "1"), ("€" * 81, "2")],
)
def test_gsm7_counts_160_single_153_per_part_and_extension_characters_twice(client, body, segments):
    assert send(client, body).num_segments == segments


@pytest.mark.parametrize(("body", "segments"), [("á" + "a" * 69, "1"), ("á" + "a" * 70, "2")])
def test_spanish_accent_forces_ucs2_with_70_single_67_per_part(client, body, segments):
    assert send(client, body).num_segments == segments


@pytest.mark.parametrize(("body", "segments"), [("😀" * 35, "1"), ("😀" * 36, "2"), ("😀" * 67, "3")])
def test_emoji_count_as_two_utf16_units_and_are_never_split(client, body, segments):
    assert send(client, body).num_segments == segments


def test_escape_pair_is_not_split_across_segments():
    assert num_segments("a" * 152 + "€" + "a" * 152) == 3


def test_invalid_to_number_raises_21211_with_status_400(client, fake):
    with pytest.raises(TwilioRestException) as error:
        send(client, to="555-1234")
    assert (error.value.code, error.value.status) == (21211, 400)
    assert "'To' number 555-1234 is not a valid phone number" in error.value.msg
    assert fake.messages() == [] and fake.requests()[0]["error_code"] == 21211


def test_missing_body_raises_21602_and_missing_from_raises_21603(client):
    with pytest.raises(TwilioRestException) as no_body:
        client.messages.create(to=FAMILY, from_=SENDER)
    with pytest.raises(TwilioRestException) as no_from:
        client.messages.create(to=FAMILY, body="Hola")
    assert (no_body.value.code, no_from.value.code) == (21602, 21603)


def test_recipient_configured_as_unsubscribed_gets_21610_and_others_still_succeed(client, fake):
    fake.configure(recipient_errors={FAMILY: 21610})
    with pytest.raises(TwilioRestException) as error:
        send(client, to=FAMILY)
    assert (error.value.code, error.value.status) == (21610, 400)
    assert send(client, to=OTHER_FAMILY).status == "queued"
    assert [m["to"] for m in fake.messages()] == [OTHER_FAMILY]


def test_63016_applies_only_to_whatsapp_freeform_messages(client, fake):
    fake.configure(recipient_errors={FAMILY: 63016})
    with pytest.raises(TwilioRestException) as error:
        send(client, to=f"whatsapp:{FAMILY}")
    assert error.value.code == 63016
    template = client.messages.create(to=f"whatsapp:{FAMILY}", from_=f"whatsapp:{SENDER}", content_sid="HX1")
    assert template.status == "queued"
    assert send(client, to=FAMILY).status == "queued"


def test_injected_429_count_fails_that_many_creates_with_20429_then_succeeds(client, fake):
    fake.configure(error_429_count=2)
    for _ in range(2):
        with pytest.raises(TwilioRestException) as error:
            send(client)
        assert (error.value.code, error.value.status) == (20429, 429)
    assert send(client).status == "queued"
    assert fake.stats()["by_error_code"] == {"20429": 2}


def test_injected_503_count_answers_20503(client, fake):
    fake.configure(error_5xx_count=1, error_5xx_status=503)
    with pytest.raises(TwilioRestException) as error:
        send(client)
    assert (error.value.code, error.value.status) == (20503, 503)
    assert send(client).status == "queued"


def test_hung_create_times_out_client_yet_is_accepted_so_a_retry_is_a_duplicate(fake):
    fake.configure(hang_count=1, hang_seconds=1.0)
    impatient = make_client(fake.account_sid, fake.auth_token, api_base_url=fake.url, timeout=0.3)
    with pytest.raises(requests.exceptions.ReadTimeout):
        send(impatient, "Alerta")
    send(impatient, "Alerta")
    assert fake.duplicates() == {(FAMILY, "Alerta"): 2}


def test_wrong_auth_token_raises_20003_with_status_401(fake):
    intruder = make_client(fake.account_sid, "wrong-token", api_base_url=fake.url)
    with pytest.raises(TwilioRestException) as error:
        send(intruder)
    assert (error.value.code, error.value.status) == (20003, 401)
    assert fake.requests()[0]["auth_ok"] is False and fake.messages() == []


def test_list_filters_by_to_and_date_sent_after(client, fake):
    first, second = send(client, "uno"), send(client, "dos")
    send(client, "otro", to=OTHER_FAMILY)
    fake.configure(recipient_errors={FAMILY: 21610})
    with pytest.raises(TwilioRestException):
        send(client, "rechazado")
    minute_ago = datetime.now(UTC) - timedelta(minutes=1)
    listed = client.messages.list(to=FAMILY, date_sent_after=minute_ago)
    assert [m.sid for m in listed] == [second.sid, first.sid]
    assert client.messages.list(to=FAMILY, date_sent_after=datetime.now(UTC) + timedelta(minutes=1)) == []
    assert len(client.messages.list(page_size=1)) == 3  # follows next_page_uri


def test_incoming_phone_number_update_is_answered_and_recorded(client, fake):
    (number,) = client.incoming_phone_numbers.list(phone_number=SENDER)
    assert number.sid.startswith("PN") and number.phone_number == SENDER
    updated = client.incoming_phone_numbers(number.sid).update(
        sms_url="https://aviso.example/sms", sms_method="POST", status_callback="https://aviso.example/st"
    )
    assert (updated.sms_url, updated.status_callback) == ("https://aviso.example/sms", "https://aviso.example/st")
    assert fake.phone_numbers()[number.sid]["sms_url"] == "https://aviso.example/sms"
    assert fake.requests()[-1]["params"]["SmsUrl"] == "https://aviso.example/sms"


def test_messaging_service_update_is_answered_and_recorded(client, fake):
    service = client.messaging.v1.services(SERVICE_SID)
    updated = service.update(inbound_request_url="https://aviso.example/in", status_callback="https://aviso.example/s")
    assert updated.inbound_request_url == "https://aviso.example/in"
    assert service.fetch().status_callback == "https://aviso.example/s"
    assert fake.services()[SERVICE_SID]["inbound_request_url"] == "https://aviso.example/in"


def test_unknown_phone_number_sid_is_20404(client):
    with pytest.raises(TwilioRestException) as error:
        client.incoming_phone_numbers("PN" + "0" * 32).update(sms_url="https://aviso.example/sms")
    assert (error.value.code, error.value.status) == (20404, 404)


def test_latency_delays_every_answer(client, fake):
    fake.configure(latency_ms=200)
    started = time.monotonic()
    send(client)
    assert time.monotonic() - started >= 0.2


def test_many_threads_share_one_client_without_exhausting_its_pool(client, fake, caplog):
    fake.configure(latency_ms=50)
    with caplog.at_level(logging.WARNING, logger="urllib3"), ThreadPoolExecutor(64) as pool:
        sids = list(pool.map(lambda i: send(client, f"msg {i}").sid, range(128)))
    assert len(set(sids)) == 128 and fake.stats()["messages_accepted"] == 128
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_rate_cap_counts_segments_not_requests(client, fake):
    fake.configure(max_segments_per_second=5)
    two_segments = "a" * 200
    assert send(client, two_segments).num_segments == "2"
    send(client, two_segments)
    with pytest.raises(TwilioRestException) as error:
        send(client, two_segments)  # 6 segments in the window: over the cap
    assert (error.value.code, error.value.status) == (20429, 429)
    send(client, "one segment fits")
    stats = fake.stats()
    assert stats["max_segments_in_any_1s_window"] == 5 and stats["segments_accepted"] == 5
    assert stats["max_requests_in_any_1s_window"] >= 4 and stats["by_status"] == {"201": 3, "429": 1}


def test_requests_beyond_the_accounts_open_limit_are_refused_429_unprocessed(client, fake):
    fake.configure(max_concurrent_requests=3, latency_ms=300)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda i: _sent_or_code(client, f"msg {i}"), range(8)))
    assert outcomes.count(20429) == 5 and fake.stats()["messages_accepted"] == 3
    assert fake.stats()["most_concurrent_requests"] == 3
    assert _sent_or_code(client, "once the others are answered") != 20429  # the limit is on open requests


def _sent_or_code(client, body):
    """The sid of a message sent, or the Twilio error code that refused it."""
    try:
        return send(client, body).sid
    except TwilioRestException as exc:
        return exc.code


def test_status_callbacks_arrive_in_order_with_a_valid_twilio_signature(fake, client, callback_server):
    fake.configure(status_callbacks=True, sent_delay_ms=0, delivered_delay_ms=0)
    url = callback_server.url + "/twilio/status?tenant=1"
    message = send(client, status_callback=url)
    assert wait_for(lambda: len(callback_server.received) == 2)
    validator = RequestValidator(fake.auth_token)
    statuses = ["sent", "delivered"]
    for (got_url, params, signature), status in zip(callback_server.received, statuses, strict=True):
        assert got_url == url and validator.validate(url, params, signature)
        assert (params["MessageSid"], params["MessageStatus"]) == (message.sid, status)
        assert params["SmsSid"] == message.sid and params["SmsStatus"] == status
        assert (params["To"], params["From"], params["AccountSid"]) == (FAMILY, SENDER, fake.account_sid)
        assert params["ApiVersion"] == "2010-04-01" and "ErrorCode" not in params
    assert client.messages(message.sid).fetch().status == "delivered"


def test_status_callbacks_report_configured_undelivered_and_failed_numbers(fake, client, callback_server):
    fake.configure(status_callbacks=True, sent_delay_ms=0, delivered_delay_ms=0,
                   delivery_failures={FAMILY: 30003, OTHER_FAMILY: ["failed", 30008]})
    send(client, status_callback=callback_server.url + "/a")
    send(client, to=OTHER_FAMILY, status_callback=callback_server.url + "/b")
    assert wait_for(lambda: len(callback_server.received) == 3)
    received = callback_server.received
    seen = sorted((url[-2:], p["MessageStatus"], p.get("ErrorCode")) for url, p, _ in received)
    assert seen == [("/a", "sent", None), ("/a", "undelivered", "30003"), ("/b", "failed", "30008")]


def test_status_callbacks_are_off_by_default(fake, client, callback_server):
    fake.configure(sent_delay_ms=0, delivered_delay_ms=0)
    message = send(client, status_callback=callback_server.url + "/status")
    assert wait_for(lambda: client.messages(message.sid).fetch().status == "delivered")
    assert callback_server.received == [] and fake.callbacks() == []


def test_duplicates_lists_same_content_accepted_twice_for_one_recipient(client, fake):
    send(client, "Alerta")
    send(client, "Alerta")
    send(client, "Alerta", to=OTHER_FAMILY)
    send(client, "Otra cosa")
    client.messages.create(to=FAMILY, from_=SENDER, content_sid="HX1", content_variables='{"1": "a"}')
    client.messages.create(to=FAMILY, from_=SENDER, content_sid="HX1", content_variables='{"1": "b"}')
    assert fake.duplicates() == {(FAMILY, "Alerta"): 2}


def test_http_control_endpoints_configure_inspect_and_reset(client, fake):
    answer = requests.post(f"{fake.url}/_fake/config", json={"error_429_count": 1}, timeout=5)
    assert answer.json()["error_429_count"] == 1
    assert requests.post(f"{fake.url}/_fake/config", json={"nonsense": 1}, timeout=5).status_code == 400
    with pytest.raises(TwilioRestException):
        send(client)
    send(client)
    assert [r["status"] for r in requests.get(f"{fake.url}/_fake/requests", timeout=5).json()] == [429, 201]
    assert requests.get(f"{fake.url}/_fake/stats", timeout=5).json()["by_status"] == {"429": 1, "201": 1}
    requests.post(f"{fake.url}/_fake/reset", timeout=5)
    assert fake.requests() == [] and fake.messages() == []


def test_the_async_client_sends_and_lists_through_the_fake_and_logs_no_number(fake, caplog):
    fake.configure(latency_ms=20, recipient_errors={OTHER_FAMILY: 21610})

    async def session():
        client = make_async_client(fake.account_sid, fake.auth_token, api_base_url=fake.url, connections=8)
        async with client.http_client:
            sent = await asyncio.gather(*(client.messages.create_async(
                to=FAMILY, from_=SENDER, body=f"Hola {i} ñ&=+", status_callback="https://a.example/s?b=1")
                for i in range(10)))
            with pytest.raises(TwilioRestException) as refused:
                await client.messages.create_async(to=OTHER_FAMILY, from_=SENDER, body="Hola")
            listed = await client.messages.list_async(to=FAMILY, date_sent_after=datetime.now(UTC) - timedelta(1))
        return sent, refused.value, listed

    with caplog.at_level(logging.DEBUG):
        sent, refused, listed = asyncio.run(session())
    assert sorted(m.body for m in sent) == sorted(f"Hola {i} ñ&=+" for i in range(10))
    assert (refused.code, refused.status) == (21610, 400)
    assert {m.sid for m in listed} == {m.sid for m in sent}
    assert fake.requests()[0]["params"]["StatusCallback"] == "https://a.example/s?b=1"
    assert not [r for r in caplog.records if FAMILY[1:] in r.getMessage() or OTHER_FAMILY[1:] in r.getMessage()]


def test_make_client_rewrites_every_twilio_host_onto_the_base_url():
    base = "http://127.0.0.1:9"
    assert rewrite_url("https://api.twilio.com/2010-04-01/A.json", base) == base + "/2010-04-01/A.json"
    assert rewrite_url("https://messaging.twilio.com/v1/Services", base) == base + "/messaging/v1/Services"
    assert rewrite_url("https://content.twilio.com/v1/Content", base + "/") == base + "/content/v1/Content"
    assert rewrite_url("https://example.com/x", base) == "https://example.com/x"


def test_command_line_prints_its_url_and_serves_until_terminated():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.twilio.fake", "--port", "0", "--latency-ms", "1", "--config",
         json.dumps({"error_429_count": 1})],
        cwd=REPO, env=env, stdout=subprocess.PIPE, text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/_fake/config", timeout=5).json()["error_429_count"] == 1
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
    assert process.returncode == 0


@pytest.mark.parametrize("data", [
    {"To": "+12135550123", "MessagingServiceSid": "MG" + "a" * 32, "Body": "¿Qué? a+b & c=d 😀"},
    {"To": "whatsapp:+12135550123", "ContentSid": "HX" + "b" * 32, "ContentVariables": '{"1": "Main & 3rd"}'},
    {"To": "+12135550123", "MediaUrl": ["https://a.example/1.png", "https://a.example/2.png"], "Body": ""},
])
def test_async_client_forms_are_encoded_as_requests_would_and_keep_no_number_cached(data):
    from urllib.parse import urlencode

    from bot.twilio.client import _quote_shared, encode_form

    _quote_shared.cache_clear()
    assert encode_form(data) == urlencode(data, doseq=True).encode()
    assert encode_form(data) == urlencode(data, doseq=True).encode()  # the second time from the cache
    assert _quote_shared.cache_info().hits > 0
    # Field names and shared values are kept quoted; the recipient's number never is.
    shared = {*data, *(str(v) for name, value in data.items() if name != "To"
                       for v in (value if isinstance(value, list) else [value]))}
    assert _quote_shared.cache_info().currsize == len(shared)
