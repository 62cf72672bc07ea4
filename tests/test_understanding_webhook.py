"""Every row of issue 12's table, through the real webhook (signed like Twilio, real Redis), and privacy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.content.encoding import for_sms
from bot.conversation.engine import submenu_text
from bot.store import keys

from .conftest import Phone

HOTLINE = "888-624-4752"


@pytest.mark.parametrize(("text", "expected_key", "language"), [
    ("ICE at my door what do I do", "rights.home", "en"),
    ("hay agentes de ICE en la escuela que hago", "rights.school", "es"),
    ("necesito un abogado", "resources.legal", "es"),
    ("lawyer", "resources.legal", "en"),
    ("emergencia", "resources.hotlines", "es"),
])
def test_a_first_message_describing_a_situation_gets_its_answer(phone, shipped_content, text, expected_key, language):
    replies = phone.text(text)  # on SMS, folded to GSM-7 where that saves a segment
    assert for_sms(shipped_content.text(language, expected_key), language) in replies


def test_urgent_first_messages_lead_with_the_hotline(phone):
    assert HOTLINE in phone.text("ICE at my door what do I do")[0]
    assert HOTLINE in phone.text("hay agentes de ICE en la escuela que hago")[0]


def test_migra_gets_the_rights_menu_in_spanish_with_the_hotline(phone, shipped_content):
    (reply,) = phone.text("MIGRA")
    assert reply == for_sms(submenu_text(shipped_content, "es", "rights"), "es") and HOTLINE in reply


def test_derechos_por_favor_from_a_known_contact_gets_the_rights(phone, shipped_content):
    phone.text("ESPAÑOL")
    assert phone.text("Derechos por favor") == [for_sms(submenu_text(shipped_content, "es", "rights"), "es")]


def test_ayuda_adds_the_hotline_and_a_person(phone, shipped_content):
    replies = phone.text("AYUDA")
    assert replies == [for_sms(shipped_content.text("es", key), "es") for key in ("help", "help.more")]


def test_an_arabic_speakers_shared_word_asks_arabic_or_farsi_then_answers_in_arabic(phone, shipped_content):
    (question,) = phone.text("حقوق")
    assert shipped_content.language_name("ar") in question and shipped_content.language_name("fa") in question
    number = next(line.split()[0] for line in question.splitlines()
                  if line.endswith(shipped_content.language_name("ar")))
    assert phone.text(number) == [for_sms(submenu_text(shipped_content, "ar", "rights"), "ar")]


def test_a_photo_or_voice_note_with_no_text_says_aviso_cannot_open_it(phone, shipped_content):
    phone.text("ESPAÑOL")
    replies = phone.text("", NumMedia="1", MediaContentType0="audio/ogg")
    assert replies == [for_sms(shipped_content.text("es", "media"), "es")]


@pytest.mark.parametrize("text", ["gracias", "ok", "sí", "👍"])
def test_thanks_ok_yes_and_emoji_get_a_friendly_answer(phone, shipped_content, text):
    phone.text("ESPAÑOL")
    assert phone.text(text) == [for_sms(shipped_content.text("es", "thanks"), "es")]


@pytest.mark.parametrize("text", ["PARAR", "no quiero más mensajes"])
def test_ways_of_saying_stop_opt_out_confirmed_by_aviso_even_on_sms(phone, aviso, shipped_content, text):
    phone.text("ESPAÑOL")
    assert phone.text(text) == [for_sms(shipped_content.text("es", "stop.done"), "es")]
    assert phone.text("DERECHOS") == []  # nothing is sent until START


def test_forget_after_stop_deletes_everything(whatsapp, aviso, shipped_content):
    whatsapp.text("ESPAÑOL")
    whatsapp.text("PARAR")
    assert whatsapp.text("BORRAR") == [shipped_content.text("es", "forget.done")]
    assert list(aviso.connection.scan_iter("aviso:contact:*")) == []


def test_alerts_for_a_school_aviso_does_not_cover_says_so_and_what_to_do(phone, shipped_content):
    assert phone.text("ALERTS Lincoln High") == [for_sms(shipped_content.text("en", "alerts.unknown_school"), "en")]


def test_nothing_a_family_writes_is_kept_only_counts_of_what_was_not_understood(phone, aviso):
    written = ["mi esposo Ramiro fue detenido en Pico Union", "xqzt vvk blorp", "necesito abogado para Ramiro"]
    phone.text("ESPAÑOL")
    for text in written:
        phone.text(text)
    stored = _everything(aviso.connection)
    for word in ("Ramiro", "Pico", "blorp", "xqzt"):
        assert word.encode() not in stored
    day = datetime.now(UTC).astimezone(aviso.settings.timezone).date().isoformat()
    counts = aviso.connection.hgetall(keys.KEYWORD_STATS.format(day=day))
    assert counts[b"unknown:es"] == b"1"


def _everything(connection) -> bytes:
    """Every key and value in Redis, as one byte string."""
    out = []
    for key in connection.scan_iter("*"):
        kind = connection.type(key)
        out.append(key)
        if kind == b"string":
            out.append(connection.get(key) or b"")
        elif kind == b"hash":
            for field, value in connection.hgetall(key).items():
                out += [field, value]
        elif kind in (b"set",):
            out += list(connection.smembers(key))
        elif kind == b"list":
            out += connection.lrange(key, 0, -1)
        elif kind == b"zset":
            out += [m for m, _ in connection.zrange(key, 0, -1, withscores=True)]
    return b"\n".join(out)


def test_the_webhook_answers_free_text_in_every_language_without_errors(client, shipped_content):
    for n, text in enumerate(["집 앞에 이민국", "我需要律師", "ICE-ը դպրոցում է", "нужен адвокат", "وکیل", "محامي"]):
        assert Phone(client, f"+1213555{n:04d}").text(text)
