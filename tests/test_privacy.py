"""Privacy: a copy of Redis or of the logs must not reveal which numbers use Aviso."""

from __future__ import annotations

import re

from bot import contacts

from .conftest import Phone

NUMBERS = ["+12135550123", "+13105550177", "+525512345678", "+447700900123"]


def number_forms(e164: str) -> list[str]:
    """Ways a number could leak: E.164, bare digits, and its national significant part."""
    digits = e164.lstrip("+")
    return [e164, digits, digits[-10:], digits[-7:]]


def dump(connection) -> bytes:
    """Every key and every value in Redis, as bytes."""
    out = []
    for key in connection.scan_iter("*"):
        out.append(key)
        kind = connection.type(key)
        if kind == b"string":
            out.append(connection.get(key))
        elif kind == b"hash":
            for field, value in connection.hgetall(key).items():
                out += [field, value]
        elif kind == b"list":
            out += connection.lrange(key, 0, -1)
        elif kind == b"set":
            out += list(connection.smembers(key))
        elif kind == b"zset":
            out += [member for member, _ in connection.zrange(key, 0, -1, withscores=True)]
    return b"\n".join(out)


def converse(client):
    for number in NUMBERS:
        for channel_number in (number, f"whatsapp:{number}"):
            phone = Phone(client, channel_number)
            for body in ("hola", "2", "DERECHOS", "1", "FORGET", "STOP", "START", "MENU"):
                phone.text(body)


def test_no_plaintext_number_anywhere_in_redis(client, aviso):
    converse(client)
    data = dump(aviso.connection)
    assert data, "the conversation stored something"
    for number in NUMBERS:
        for form in number_forms(number):
            assert form.encode() not in data, f"{form} found in Redis"


def test_no_number_in_logs(client, caplog):
    caplog.set_level("DEBUG")
    converse(client)
    assert "inbound contact=" in caplog.text
    for number in NUMBERS:
        for form in number_forms(number):
            assert form not in caplog.text, f"{form} found in the logs"


def test_contacts_are_keyed_by_a_keyed_hash_and_the_number_is_recoverable_only_with_the_key(client, aviso):
    Phone(client, NUMBERS[0]).text("DERECHOS")
    (key,) = aviso.connection.scan_iter("aviso:contact:*")
    contact_key = key.decode().rsplit(":", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{32}", contact_key)
    assert contacts.number_of(aviso.connection, aviso.keyring, contact_key) == NUMBERS[0]


def test_nothing_about_immigration_status_or_message_bodies_is_stored(client, aviso):
    Phone(client, NUMBERS[1]).text("me llamo Xochiquetzal, soy indocumentada, vivo en 123 Calle Falsa")
    data = dump(aviso.connection).lower()
    for word in (b"xochiquetzal", b"indocumentada", b"calle falsa"):
        assert word not in data
