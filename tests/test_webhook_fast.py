"""The webhook's fast path (bot/web/webhook_fast.py): the same answers as the Flask view, without its cycle."""

from __future__ import annotations

import pytest
from flask import request

from bot import create_app, services
from bot.web.webhook_fast import FastMessages

from .conftest import PARENT, PUBLIC_BASE_URL, Phone, inbound, replies, sign
from .test_errors import BODY, FakeSentry  # noqa: F401 - the fake DSN server

CONVERSATION = ["hola", "DERECHOS", "1", "menu", "derechoz", "hay agentes en la puerta que hago", "gracias",
                "STOP", "START", "RIGHTS", "ALERTS Garfield High School please", "👍", "AYUDA"]


@pytest.fixture
def flask_requests(app):
    """The paths of the requests Flask's own request cycle handled."""
    seen: list[str] = []
    app.before_request(lambda: seen.append(f"{request.method} {request.full_path}"))
    return seen


def flask_only(app):
    """The same app without the fast path: every request through Flask's view."""
    assert isinstance(app.wsgi_app, FastMessages)
    app.wsgi_app = app.wsgi_app.flask_wsgi
    return app


def test_a_signed_message_is_answered_without_flasks_request_cycle(phone, flask_requests):
    response = phone.post(inbound("DERECHOS"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert int(response.headers["Content-Length"]) == len(response.data)
    assert len(response.headers["X-Request-Id"]) == 16
    assert replies(response.data)
    assert flask_requests == []


def test_its_answers_are_the_flask_views_answers(settings, shipped_content, app):
    fast, slow = Phone(app.test_client(), PARENT), Phone(flask_only(create_app(settings)).test_client(), "+12135550199")
    for channel in ("", "whatsapp:"):
        fast.number, slow.number = channel + PARENT, channel + "+12135550199"
        for text in CONVERSATION:
            ours, flasks = fast.post(inbound(text, fast.number)), slow.post(inbound(text, slow.number))
            assert (ours.status_code, ours.data) == (flasks.status_code, flasks.data), text
            assert [name for name, _ in ours.headers] == [name for name, _ in flasks.headers]
            assert [v for n, v in ours.headers if n != "X-Request-Id"] == \
                [v for n, v in flasks.headers if n != "X-Request-Id"]


def test_a_retried_message_sid_gets_the_same_answer(phone, flask_requests):
    params = inbound("DERECHOS")
    first, again = phone.post(params), phone.post(params)
    assert first.data == again.data and again.status_code == 200
    assert flask_requests == []


def test_an_offered_request_id_is_echoed_and_a_bad_one_replaced(phone, client):
    params = inbound("RIGHTS")
    signature = sign(PUBLIC_BASE_URL + "/twilio/messages", params)
    response = client.post("/twilio/messages", data=params,
                           headers={"X-Twilio-Signature": signature, "X-Request-Id": "lb-1234.abc"})
    assert response.headers["X-Request-Id"] == "lb-1234.abc"
    params = inbound("RIGHTS")
    response = client.post("/twilio/messages", data=params, headers={
        "X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/twilio/messages", params), "X-Request-Id": "a b"})
    assert response.status_code == 200 and response.headers["X-Request-Id"] != "a b"


@pytest.mark.parametrize(("case", "status"), [
    ("unsigned", 403), ("bad signature", 403), ("no From", 400), ("bad MessageSid", 400), ("GET", 405),
    ("query string", 200), ("port in the signed URL", 200), ("multipart", 200),
])
def test_everything_else_is_flasks_own_answer(client, flask_requests, case, status):
    params = inbound("RIGHTS")
    path = "/twilio/messages?school=lincoln" if case == "query string" else "/twilio/messages"
    url = PUBLIC_BASE_URL + (":443" + path if case == "port in the signed URL" else path)
    if case == "no From":
        del params["From"]
    if case == "bad MessageSid":
        params["MessageSid"] = "SM123"
    headers = {} if case == "unsigned" else {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl" if case == "bad signature"
                                             else sign(url, params)}
    if case == "GET":
        response = client.get(path)
    else:
        response = client.post(path, data=params, headers=headers,
                               content_type="multipart/form-data" if case == "multipart" else None)
    assert response.status_code == status
    assert len(flask_requests) == 1


def test_a_body_larger_than_allowed_is_flasks_413(client, flask_requests):
    params = inbound("x" * (1024 * 1024 + 1))
    response = client.post("/twilio/messages", data=params,
                           headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/twilio/messages", params)})
    assert response.status_code == 413


def test_the_answer_is_timed_like_the_views(app, phone):
    from prometheus_client import REGISTRY

    def answered() -> float:
        return REGISTRY.get_sample_value("aviso_webhook_requests_total",
                                         {"endpoint": "/twilio/messages", "status": "200"}) or 0.0

    before = answered()
    phone.text("RIGHTS")
    assert answered() == before + 1


def test_a_failure_while_answering_is_flasks_500_reported_without_the_familys_words(settings, shipped_content,
                                                                                     monkeypatch):
    sentry = FakeSentry()
    try:
        app = create_app(settings.with_overrides(sentry_dsn=sentry.dsn))
        aviso = services.current_from(app)
        aviso.content.publish(shipped_content, by="first boot")

        def fail(message, now):
            raise RuntimeError(f"could not answer {message.address.handle}: {message.body}")

        monkeypatch.setattr(aviso.conversations, "answer", fail)
        params = inbound(BODY)
        response = app.test_client().post("/twilio/messages", data=params, headers={
            "X-Twilio-Signature": sign(PUBLIC_BASE_URL + "/twilio/messages", params)})
        assert response.status_code == 500
        (event,) = sentry.events()
        assert event["exception"]["values"][0]["type"] == "RuntimeError"
        raw = b"".join(sentry.raw).decode()
        for secret in (PARENT, PARENT[2:], "agentes"):
            assert secret not in raw
    finally:
        import sentry_sdk

        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)
        sentry.server.shutdown()
        sentry.server.server_close()


def test_scripts_flushed_from_redis_are_loaded_again(phone, aviso, shipped_content):
    assert phone.text("RIGHTS")
    aviso.connection.script_flush()
    assert phone.text("DERECHOS")
    assert phone.text("1")
