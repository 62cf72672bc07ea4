"""The voice line through Flask: signed Twilio calls, TwiML parsed, every keypad path, the hotline, memory."""

from __future__ import annotations

import os
import signal
import uuid
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest

from bot import create_app, services
from bot.content.encoding import for_sms
from bot.content.model import Content
from bot.content.voice import VoiceContent
from bot.conversation.engine import main_menu_text
from bot.store import embedded_redis

from .conftest import ACCOUNT_SID, PARENT, PUBLIC_BASE_URL, Phone, sign

HOTLINE = "+18886244752"
KEYS = [*"0123456789*#", ""]  # "" is silence: Twilio calls back with no Digits


@pytest.fixture
def voice(shipped_content) -> VoiceContent:
    return VoiceContent.of(shipped_content)


class Caller:
    """A family's phone calling Aviso, each request signed like Twilio's."""

    def __init__(self, client, number: str = PARENT):
        self.client = client
        self.number = number
        self.sid = "CA" + uuid.uuid4().hex

    def post(self, path: str, digits: str | None = None, signature: str | None = None, **fields: str):
        params = {"CallSid": self.sid, "AccountSid": ACCOUNT_SID, "From": self.number, "To": "+12135550100",
                  "CallStatus": "in-progress", **fields}
        if digits is not None:
            params["Digits"] = digits
        signature = sign(PUBLIC_BASE_URL + path, params) if signature is None else signature
        return self.client.post(path, data=params, headers={"X-Twilio-Signature": signature})

    def twiml(self, path: str, digits: str | None = None) -> ElementTree.Element:
        response = self.post(path, digits)
        assert response.status_code == 200, response.data
        assert response.mimetype == "text/xml"
        root = ElementTree.fromstring(response.data)
        assert root.tag == "Response"
        return root

    def call(self) -> ElementTree.Element:
        return self.twiml("/twilio/voice")

    def press(self, root: ElementTree.Element, digits: str) -> ElementTree.Element:
        """Press keys (or stay silent) at the Gather of a TwiML answer, following its action URL."""
        return self.twiml(action_path(root), digits)


def action_path(root: ElementTree.Element) -> str:
    gather = root.find("Gather")
    assert gather is not None, ElementTree.tostring(root)
    url = urlsplit(gather.get("action"))
    assert f"{url.scheme}://{url.netloc}" == PUBLIC_BASE_URL
    assert gather.get("method") == "POST" and gather.get("numDigits") == "1"
    assert gather.get("actionOnEmptyResult") == "true"
    return f"{url.path}?{url.query}"


def said(root: ElementTree.Element) -> list[tuple[str, str, str]]:
    """Every <Say> in order: (voice, locale, text)."""
    return [(say.get("voice"), say.get("language"), say.text) for say in root.iter("Say")]


@pytest.fixture
def caller(client) -> Caller:
    return Caller(client)


def test_a_call_hears_a_greeting_and_each_language_offered_in_its_own_voice(caller, voice):
    root = caller.call()
    voices = [(name, locale) for name, locale, _ in said(root)]
    assert voices == [("Polly.Joanna", "en-US"), ("Polly.Lupe", "es-US")] * 3
    assert [text for _, _, text in said(root)[2:4]] == ["For English, press 1.", "Para español, oprima 2."]
    assert [text for _, _, text in said(root)[:2]] == [voice.say("en", "greeting"), voice.say("es", "greeting")]


@pytest.mark.parametrize("key, language, voice_name, locale", [("1", "en", "Polly.Joanna", "en-US"),
                                                               ("2", "es", "Polly.Lupe", "es-US")])
def test_each_language_menu_is_spoken_in_that_language_by_its_voice(caller, voice, key, language, voice_name, locale):
    main = caller.press(caller.call(), key)
    assert said(main) == [(voice_name, locale, voice.say(language, "menu.main"))]


def test_a_family_can_choose_spanish_hear_their_rights_at_home_and_reach_the_hotline(caller, voice):
    main = caller.press(caller.call(), "2")
    rights = caller.press(main, "1")
    assert said(rights)[0][2] == voice.say("es", "menu.rights")
    home = caller.press(rights, "1")
    assert [text for _, _, text in said(home)] == [voice.say("es", "rights.home"), voice.say("es", "after")]
    connected = caller.press(home, "0")
    assert [dial.text for dial in connected.iter("Dial")] == [HOTLINE]
    assert said(connected)[0] == ("Polly.Lupe", "es-US", voice.say("es", "connecting"))
    assert connected.find("Gather") is None and connected.find("Hangup") is not None


def test_the_hotline_dialled_is_the_verified_rapid_response_number(shipped_content):
    entry = next(r for r in shipped_content.tree["resources"] if r["id"] == "chirla-rapid-response")
    assert entry["verified"] is True and entry["phone"] == "888-624-4752"
    assert VoiceContent.of(shipped_content).hotline == HOTLINE


@pytest.mark.parametrize("language_key", ["1", "2"])
def test_every_keypad_path_answers_valid_twiml_in_the_callers_voice(caller, voice, language_key):
    """Walk the whole menu through the endpoint: every key (and silence) at every menu and text."""
    language = voice.heard_languages[int(language_key) - 1]
    spoken = voice.voice(language)
    start = caller.press(caller.call(), language_key)
    seen, queue, texts_heard = set(), [start], set()
    while queue:
        root = queue.pop()
        path = action_path(root)
        if urlsplit(path).query in seen:
            continue
        seen.add(urlsplit(path).query)
        for key in KEYS:
            answer = caller.twiml(path, key)
            voices = {(name, locale) for name, locale, _ in said(answer)}
            if answer.find("Gather") is not None and "at=language" in action_path(answer):
                assert key == "#" and len(said(answer)) == len(voice.heard_languages) + 2  # the language menu again
            elif answer.find("Gather") is not None:
                assert voices == {(spoken.name, spoken.locale)}
                texts_heard.update(text for _, _, text in said(answer))
                queue.append(answer)
            elif answer.find("Dial") is not None:
                assert key == "0" and answer.find("Dial").text == HOTLINE
            else:
                assert answer.find("Hangup") is not None and key == ""  # goodbye after the hotline offer
    every_key = (*voice.menus["rights"], *voice.menus["resources"], "alerts.signup")
    every_text = {voice.say(language, key) for key in every_key}
    assert every_text <= texts_heard


def test_a_caller_whose_language_is_known_from_texts_starts_in_it(client, voice):
    assert Phone(client).text("DERECHOS")  # texting in Spanish sets the language
    root = Caller(client).call()
    assert said(root) == [("Polly.Lupe", "es-US", voice.say("es", "greeting")),
                          ("Polly.Lupe", "es-US", voice.say("es", "menu.main"))]


def test_a_language_chosen_on_a_call_is_used_for_the_next_call_and_for_texts(client, shipped_content, voice):
    first = Caller(client)
    first.press(first.call(), "2")
    assert said(Caller(client).call())[-1][2] == voice.say("es", "menu.main")
    assert Phone(client).text("MENU") == [for_sms(main_menu_text(shipped_content, "es"), "es")]


def test_a_call_keeps_no_plaintext_number_and_no_keys_pressed(caller, aviso):
    rights = caller.press(caller.press(caller.call(), "2"), "1")
    caller.press(rights, "5")
    digits = PARENT.lstrip("+")
    for key in aviso.connection.scan_iter("*"):
        assert digits.encode() not in key
        if aviso.connection.type(key) == b"hash":
            fields = aviso.connection.hgetall(key)
            assert all(digits.encode() not in value for value in fields.values())
            assert b"rights" not in b"".join(fields.values())
        elif aviso.connection.type(key) == b"string":
            assert digits.encode() not in aviso.connection.get(key)


def test_a_withheld_caller_id_still_gets_the_menu(client):
    root = Caller(client, number="Anonymous").call()
    assert root.find("Gather") is not None


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"])
def test_unsigned_or_wrongly_signed_calls_are_refused(caller, signature):
    assert caller.post("/twilio/voice", signature=signature).status_code == 403
    assert caller.post("/twilio/voice/menu?at=main&lang=es&quiet=0", "1", signature=signature).status_code == 403


def test_a_menu_state_changed_after_signing_is_refused(caller):
    params = {"CallSid": caller.sid, "From": PARENT, "Digits": "1"}
    signature = sign(PUBLIC_BASE_URL + "/twilio/voice/menu?at=main&lang=es&quiet=0", params)
    response = caller.client.post("/twilio/voice/menu?at=rights&lang=es&quiet=0", data=params,
                                  headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


@pytest.mark.parametrize("path, digits, fields", [
    ("/twilio/voice", None, {"CallSid": ""}),
    ("/twilio/voice", None, {"CallSid": "SM" + "0" * 32}),
    ("/twilio/voice/menu?at=main&lang=es&quiet=0", "abc", {}),
    ("/twilio/voice/menu?at=../etc&quiet=0", "1", {}),
    ("/twilio/voice/menu?at=main&lang=es&quiet=12", "1", {}),
    ("/twilio/voice/menu?at=main&lang=<es>&quiet=0", "1", {}),
    ("/twilio/voice/menu?quiet=0", "1", {}),
])
def test_malformed_voice_requests_get_a_400_not_a_500(caller, path, digits, fields):
    response = caller.post(path, digits, **fields)
    assert response.status_code == 400
    assert b"bad request" in response.data


def test_while_redis_is_gone_a_call_still_walks_the_menu_from_memory(settings, tmp_path, voice):
    app = create_app(settings.with_overrides(redis_url=f"unix://{tmp_path}/nothing.sock"))
    caller = Caller(app.test_client())
    main = caller.press(caller.call(), "2")  # the choice cannot be kept, but this call goes on in Spanish
    home = caller.press(caller.press(main, "1"), "1")
    assert said(home)[0] == ("Polly.Lupe", "es-US", voice.say("es", "rights.home"))
    assert [dial.text for dial in caller.press(home, "0").iter("Dial")] == [HOTLINE]


def test_while_redis_is_frozen_a_call_is_still_answered_in_the_language_chosen(settings, tmp_path, voice):
    data_dir = tmp_path / "redis"
    url = embedded_redis.ensure_running(data_dir)
    pid = int((data_dir / embedded_redis.PID_NAME).read_text())
    app = create_app(settings.with_overrides(redis_url=url))
    services.current_from(app).ensure_content()
    caller = Caller(app.test_client())
    language_menu = caller.call()
    os.kill(pid, signal.SIGSTOP)
    try:
        main = caller.press(language_menu, "2")
        assert said(main) == [("Polly.Lupe", "es-US", voice.say("es", "menu.main"))]
    finally:
        os.kill(pid, signal.SIGCONT)
        embedded_redis.stop(data_dir)


def test_a_content_version_from_before_the_voice_line_still_answers_calls_from_the_files(aviso, client, voice,
                                                                                        shipped_content):
    tree = {key: value for key, value in shipped_content.tree.items() if key != "voice"}
    old = Content({**tree, "manifest": {**tree["manifest"], "version": "2026.12.04.2"}})
    aviso.content.publish(old, by="rollback test")
    caller = Caller(client)
    main = caller.press(caller.call(), "2")
    assert said(main) == [("Polly.Lupe", "es-US", voice.say("es", "menu.main"))]


def test_forget_by_text_also_forgets_the_language_chosen_on_a_call(client, aviso):
    first = Caller(client)
    first.press(first.call(), "2")
    phone = Phone(client)
    phone.text("BORRAR")
    phone.text("BORRAR")
    assert list(aviso.connection.scan_iter("aviso:contact:*")) == []
    again = Caller(client).call()
    assert "at=language" in action_path(again)  # a new caller again: greeting and the language menu


def test_pressing_1_in_the_alerts_menu_asks_for_calls_for_urgent_alerts(client, aviso, voice):
    from bot.people.contacts import contact_redis_key
    from bot.people.identity import SMS, Address

    caller = Caller(client)
    main = caller.press(caller.call(), "2")
    alerts = caller.press(main, "3")
    assert said(alerts)[0][2] == voice.say("es", "alerts.signup")
    done = caller.press(alerts, "1")
    assert said(done)[0][2] == voice.say("es", "alerts.calls_on")
    contact = contact_redis_key(aviso.keyring.contact_key(Address(SMS, caller.number)))
    assert aviso.connection.hmget(contact, "voice", "lang") == [b"1", b"es"]

