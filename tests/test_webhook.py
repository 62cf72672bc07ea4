"""The Twilio webhook through Flask: signatures, parsing, idempotency, TwiML."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest
from flask import session
from twilio.twiml.messaging_response import MessagingResponse

from bot import create_app, services
from bot.content.encoding import for_sms
from bot.conversation.engine import submenu_text
from bot.services.conversations import render_twiml
from bot.store import keys

from .conftest import PUBLIC_BASE_URL, Phone, inbound, sign


def all_keys(aviso) -> list[bytes]:
    return list(aviso.connection.scan_iter("aviso:*"))


def contact_keys(aviso) -> list[bytes]:
    return list(aviso.connection.scan_iter("aviso:contact:*"))


def test_derechos_gets_the_rights_menu_in_spanish(phone, shipped_content):
    assert phone.text("DERECHOS") == [for_sms(submenu_text(shipped_content, "es", "rights"), "es")]


def test_whatsapp_sender_is_answered_too(whatsapp, shipped_content):
    assert whatsapp.text("RIGHTS") == [submenu_text(shipped_content, "en", "rights")]


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", None])
def test_missing_or_wrong_signature_is_refused_and_nothing_is_recorded(client, aviso, signature):
    before = set(all_keys(aviso))
    params = inbound("DERECHOS")
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    response = client.post("/twilio/messages", data=params, headers=headers)
    assert response.status_code == 403
    assert set(all_keys(aviso)) == before


def test_signature_over_other_params_is_refused(phone):
    params = inbound("DERECHOS")
    signature = sign(PUBLIC_BASE_URL + "/twilio/messages", params)
    tampered = dict(params, Body="BORRAR")
    assert phone.post(tampered, signature=signature).status_code == 403


def test_signature_is_checked_against_public_base_url_behind_a_proxy(client):
    params = inbound("RIGHTS")
    local = sign("http://localhost/twilio/messages", params)
    response = client.post("/twilio/messages", data=params, headers={"X-Twilio-Signature": local})
    assert response.status_code == 403
    public = sign(PUBLIC_BASE_URL + "/twilio/messages", params)
    response = client.post(
        "/twilio/messages", data=params, headers={"X-Twilio-Signature": public, "Host": "10.0.0.5:8000"}
    )
    assert response.status_code == 200


def test_signature_over_the_url_with_its_default_port_is_accepted_too(client):
    # Twilio has signed with and without ":443"; its own validator accepts both, and so must Aviso.
    params = inbound("RIGHTS")
    signature = sign(PUBLIC_BASE_URL + ":443/twilio/messages", params)
    response = client.post("/twilio/messages", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


@pytest.mark.parametrize("signature", ["ñandú" + "A" * 23, "\u00ff" * 28])
def test_signature_with_non_ascii_characters_is_refused_not_an_error(client, signature):
    params = inbound("RIGHTS")
    response = client.post("/twilio/messages", data=params,
                           headers={"X-Twilio-Signature": signature.encode().decode("latin-1")})
    assert response.status_code == 403


@pytest.mark.parametrize(("path", "has_session"), [
    ("/twilio/messages", False), ("/twilio/status", False), ("/api/broadcasts", False), ("/healthz", False),
    ("/dashboard/", True), ("/dashboard/login", True)])
def test_only_pages_open_a_cookie_session(app, path, has_session):
    with app.test_request_context(path, method="POST"):
        assert app.session_interface.is_null_session(session) is not has_session


def test_query_string_is_part_of_the_signed_url(client):
    params = inbound("RIGHTS")
    signature = sign(PUBLIC_BASE_URL + "/twilio/messages?school=belmont", params)
    response = client.post("/twilio/messages?school=belmont", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


def test_development_without_token_skips_signature_checks(settings):
    app = create_app(settings.with_overrides(env="development", twilio_auth_token=None))
    services.current_from(app).ensure_content()
    response = app.test_client().post("/twilio/messages", data=inbound("RIGHTS"))
    assert response.status_code == 200


@pytest.mark.parametrize("env", ["production", "development"])
def test_with_a_twilio_token_there_is_no_signing_helper_or_outbox_page(settings, env):
    client = create_app(settings.with_overrides(env=env)).test_client()
    assert client.post("/dev/phone/sign", json={"from": "+12135550123", "body": "STOP"}).status_code == 404
    assert client.get("/dev/phone/outbox?from=%2B12135550123").status_code == 404
    assert client.post("/twilio/messages", data=inbound("RIGHTS")).status_code == 403


def test_production_checks_signatures_always(settings):
    app = create_app(settings.with_overrides(env="production", twilio_account_sid="AC" + "2" * 32))
    response = app.test_client().post("/twilio/messages", data=inbound("RIGHTS"))
    assert response.status_code == 403


MALFORMED = [
    ({"MessageSid": None}, "MessageSid"),
    ({"MessageSid": "hello"}, "MessageSid"),
    ({"From": None}, "From"),
    ({"From": "12135550123"}, "From"),
    ({"From": "+1"}, "From"),
    ({"From": "whatsapp:banana"}, "From"),
    ({"From": "US.13491208655302741918"}, "From"),  # a WhatsApp user id, but From says SMS
    ({"From": "whatsapp:US."}, "From"),
    ({"From": "whatsapp:USA.1349"}, "From"),
    ({"From": "whatsapp:US.1349-1208"}, "From"),
    ({"From": "whatsapp:US." + "1" * 129}, "From"),
    ({"MessageSid": "SM" + "a" * 32 + "\n"}, "MessageSid"),
    ({"NumMedia": "lots"}, "NumMedia"),
    ({"NumMedia": "²"}, "NumMedia"),  # str.isdigit() says yes, int() raises: it was a 500
    ({"NumMedia": "١"}, "NumMedia"),  # Arabic-Indic one: int() would read it, Twilio never sends it
    ({"NumMedia": "-1"}, "NumMedia"),
    ({"NumMedia": " 1"}, "NumMedia"),
    ({"NumMedia": "9" * 5000}, "NumMedia"),  # past int()'s 4,300-digit limit: a ValueError, not a count
]


@pytest.mark.parametrize(("change", "named"), MALFORMED)
def test_malformed_webhook_gets_400_with_a_reason_and_records_nothing(phone, aviso, change, named):
    params = {k: v for k, v in {**inbound("RIGHTS"), **change}.items() if v is not None}
    before = set(all_keys(aviso))
    response = phone.post(params)
    assert response.status_code == 400
    assert named in response.get_data(as_text=True)
    assert set(all_keys(aviso)) == before


@pytest.mark.parametrize("body", ["x" * 10_000, "🙂" * 2000, "😀 hola 🇲🇽 ¿qué? " * 100])
def test_huge_or_emoji_bodies_get_a_normal_reply(phone, body):
    replies = phone.text(body)
    assert len(replies) == 1 and replies[0]


def test_empty_body_with_media_says_aviso_cannot_open_it(phone, shipped_content):
    phone.text("DERECHOS")
    replies = phone.text("", NumMedia="1", MediaUrl0="https://api.twilio.com/media/x")
    assert replies == [for_sms(shipped_content.text("es", "media"), "es")]


def test_twilio_retry_of_the_same_message_gets_the_same_answer_and_no_second_effect(phone, aviso, shipped_content):
    phone.text("FORGET")
    sid = "SM" + "a" * 32
    first = phone.text("FORGET", sid=sid)
    assert first == [shipped_content.text("en", "forget.done")]
    assert contact_keys(aviso) == []
    again = phone.text("FORGET", sid=sid)
    assert again == first
    assert contact_keys(aviso) == []  # the retry did not start a new conversation


def test_retry_of_a_language_choice_does_not_apply_twice(phone, aviso, shipped_content):
    phone.text("hola")
    sid = "SM" + "b" * 32
    assert phone.text("2", sid=sid) == phone.text("2", sid=sid)
    stats = aviso.connection.hgetall(next(iter(aviso.connection.scan_iter("aviso:stats:keywords:*"))))
    assert stats[b"language_set:es"] == b"1"


def _append_only_file(connection) -> bytes:
    """What the Redis server has appended to its AOF (6.2: one file; 7: the files of its AOF folder)."""
    folder = Path(connection.config_get("dir")["dir"])
    subfolder = connection.config_get("appenddirname").get("appenddirname")
    if subfolder:
        return b"".join(path.read_bytes() for path in sorted((folder / subfolder).glob("*.aof")))
    return (folder / connection.config_get("appendfilename")["appendfilename"]).read_bytes()


def test_a_message_claim_stays_out_of_the_aof_and_its_answer_goes_in(phone, aviso):
    sid = "SM" + "c" * 32
    replies = phone.text("DERECHOS", sid=sid)
    key = keys.INBOUND_MESSAGE.format(sid=sid).encode()
    written = _append_only_file(aviso.connection)
    pending = keys.INBOUND_PENDING.encode()
    assert b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(pending), pending) not in written
    assert written.count(key) == 1 and replies[0].encode() in written  # the answer kept for Twilio's retries
    assert phone.text("DERECHOS", sid=sid) == replies


def test_stop_on_sms_answers_empty_twiml_and_opts_out(phone, aviso):
    phone.text("DERECHOS")
    assert phone.text("STOP") == []
    assert phone.text("DERECHOS") == []
    (key,) = contact_keys(aviso)
    assert aviso.connection.hget(key, "opted_out") == b"1"


def test_stop_on_whatsapp_is_confirmed_by_aviso(whatsapp, shipped_content):
    whatsapp.text("DERECHOS")
    assert whatsapp.text("STOP") == [shipped_content.text("es", "stop.done")]
    assert whatsapp.text("START") == [shipped_content.text("es", "start.done")]


def test_forget_deletes_the_contact_after_confirmation(phone, aviso):
    phone.text("DERECHOS")
    assert len(contact_keys(aviso)) == 1
    phone.text("BORRAR")
    assert len(contact_keys(aviso)) == 1
    phone.text("BORRAR")
    assert contact_keys(aviso) == []


def test_contacts_expire_when_inactive(phone, aviso, settings):
    phone.text("RIGHTS")
    (key,) = contact_keys(aviso)
    ttl = aviso.connection.ttl(key)
    assert 0 < ttl <= settings.contact_ttl_days * 24 * 3600


def test_each_message_of_a_known_contact_renews_its_expiry(phone, aviso, settings):
    phone.text("RIGHTS")
    (key,) = contact_keys(aviso)
    aviso.connection.expire(key, 60)  # as if the family had been quiet for almost the whole period
    phone.text("MENU")
    assert aviso.connection.ttl(key) > settings.contact_ttl_days * 24 * 3600 - 60


def test_keyword_counts_are_kept_by_language_and_day_only(phone, aviso):
    phone.text("DERECHOS")
    Phone(phone.client, "+13105550188").text("DERECHOS")
    Phone(phone.client, "+13105550189").text("RIGHTS")
    (stats_key,) = aviso.connection.scan_iter("aviso:stats:keywords:*")
    assert aviso.connection.hgetall(stats_key) == {b"rights:es": b"2", b"rights:en": b"1"}
    assert 0 < aviso.connection.ttl(stats_key) <= keys.KEYWORD_STATS_TTL_SECONDS  # a day's counts expire too


def test_status_callback_accepts_signed_updates_and_rejects_malformed(phone):
    params = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "delivered", "AccountSid": "AC" + "1" * 32}
    assert phone.post(params, path="/twilio/status").status_code == 204
    assert phone.post({"MessageStatus": "delivered"}, path="/twilio/status").status_code == 400
    assert phone.post(params, path="/twilio/status", signature="wrong").status_code == 403


def test_every_reply_is_logged_with_the_content_version(phone, shipped_content, caplog):
    caplog.set_level("INFO", logger="bot.services.conversations")
    phone.text("DERECHOS")
    assert f"content={shipped_content.version}" in caplog.text


def subscribers(aviso, school):
    return aviso.connection.smembers(f"aviso:school:{school}:subscribers")


def test_following_a_school_adds_the_contact_to_its_subscribers_and_keeps_it(phone, aviso):
    for body in ("ALERTAS", "Belmont", "1"):
        phone.text(body)
    (key,) = contact_keys(aviso)
    assert subscribers(aviso, "BELMONT") == {key.decode().rsplit(":", 1)[1].encode()}
    assert aviso.connection.ttl(key) == -1  # a subscriber does not expire


def test_leaving_removes_the_contact_and_lets_it_expire_again(phone, aviso):
    for body in ("ALERTAS", "Belmont", "1", "SALIR"):
        phone.text(body)
    (key,) = contact_keys(aviso)
    assert subscribers(aviso, "BELMONT") == set()
    assert aviso.connection.ttl(key) > 0


def test_forget_removes_the_contact_from_every_school(phone, aviso):
    for body in ("ALERTS", "Belmont", "1", "ALERTS", "Venice", "1", "FORGET", "FORGET"):
        phone.text(body)
    assert subscribers(aviso, "BELMONT") == set() and subscribers(aviso, "VENICE") == set()
    assert contact_keys(aviso) == []


def test_stop_then_start_before_choosing_a_language_is_answered_normally(phone, aviso):
    assert phone.text("STOP") == [] and phone.text("START") == []
    (key,) = contact_keys(aviso)
    assert aviso.connection.hget(key, "opted_out") is None and aviso.connection.hget(key, "num")
    assert phone.text("DERECHOS")  # and the conversation goes on


@pytest.mark.parametrize("answers", [(), ("one",), ("a <b> & \"c\" 'd'", "ñ 😀\nline two"), ("&amp; already",)])
def test_twiml_is_written_exactly_as_twilios_messaging_response_writes_it(answers):
    reference = MessagingResponse()
    for answer in answers:
        reference.message(answer)
    assert render_twiml(answers) == str(reference)


def test_twiml_drops_control_characters_xml_cannot_carry():
    twiml = render_twiml(("bell\x07 and\x0b tab\tend",))
    assert ElementTree.fromstring(twiml).find("Message").text == "bell and tab\tend"


def test_first_message_on_an_empty_redis_publishes_the_shipped_content_and_is_answered(phone, aviso, shipped_content):
    aviso.connection.flushdb()
    assert aviso.content.active_version() is None
    assert phone.text("DERECHOS") == [for_sms(submenu_text(shipped_content, "es", "rights"), "es")]
    assert aviso.content.active_version() == shipped_content.version
