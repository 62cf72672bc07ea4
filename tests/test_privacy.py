"""Privacy: a copy of Redis or of the logs must not reveal which numbers use Aviso."""

from __future__ import annotations

import io
import json
import re

import pytest

from bot.observability import logs
from bot.people import contacts

from .conftest import Phone

NUMBERS = ["+12135550123", "+13105550177", "+525512345678", "+447700900123"]
# WhatsApp users who hide their number: business-scoped user ids and the usernames shown for them.
USER_IDS = ["US.13491208655302741918", "MX.8817263544190283746", "GB.Ab3dE5fG7hJ9kL1mN3pQ5rS7tU9"]
USERNAMES = ["maria.lopez.la", "papa_de_sofi"]
BODIES = ("hola", "2", "DERECHOS", "1", "ALERTAS Belmont", "1", "FORGET", "STOP", "START", "MENU")


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


def user_id_forms(user_id: str) -> list[str]:
    """Ways a WhatsApp user id could leak: whole, and the part after the country code."""
    return [user_id, user_id.split(".", 1)[1]]


def converse(client):
    for number in NUMBERS:
        for channel_number in (number, f"whatsapp:{number}"):
            phone = Phone(client, channel_number)
            for body in BODIES:
                phone.text(body)
    for user_id, username in zip(USER_IDS, USERNAMES, strict=False):  # a user id alone (the number hidden)
        phone = Phone(client, f"whatsapp:{user_id}")
        for body in BODIES:
            phone.text(body, ExternalUserId=f"whatsapp:{user_id}", ProfileName=username)
    both = Phone(client, f"whatsapp:{NUMBERS[0]}")  # a number with its user id, then the user id alone
    for body in BODIES[:6]:
        both.text(body, ExternalUserId=f"whatsapp:{USER_IDS[2]}", ProfileName=USERNAMES[0])
    alone = Phone(client, f"whatsapp:{USER_IDS[2]}")
    for body in ("MIS ALERTAS", "DERECHOS"):
        alone.text(body, ExternalUserId=f"whatsapp:{USER_IDS[2]}")


def leaks() -> list[str]:
    """Every form of every number, user id and username that must stay out of Redis and the logs."""
    return ([form for number in NUMBERS for form in number_forms(number)]
            + [form for user_id in USER_IDS for form in user_id_forms(user_id)] + USERNAMES)


def test_no_plaintext_number_user_id_or_username_anywhere_in_redis(client, aviso):
    converse(client)
    data = dump(aviso.connection)
    assert data, "the conversation stored something"
    assert list(aviso.connection.scan_iter("aviso:alias:*")), "the number with a user id left an alias"
    for form in leaks():
        assert form.encode() not in data, f"{form} found in Redis"


@pytest.fixture
def json_log():
    """Aviso's log as production writes it: one JSON object per line, everything from DEBUG up."""
    stream = io.StringIO()
    logs.configure("json", stream, level=10)
    yield stream
    logs.configure("console")


def test_no_number_user_id_username_or_body_in_the_json_log_lines(client, json_log):
    converse(client)
    Phone(client, NUMBERS[1]).text("me llamo Xochiquetzal, soy indocumentada, vivo en 123 Calle Falsa")
    text = json_log.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON event
    inbound = [line for line in lines if line["event"] == "inbound"]
    assert len(inbound) > 100 and all(line["level"] == "info" and line["request_id"] for line in inbound)
    assert {"contact", "channel", "command", "lang", "content"} <= set(inbound[0])
    assert len({line["request_id"] for line in inbound}) == len(inbound)  # one per webhook request
    for form in [*leaks(), "Xochiquetzal", "indocumentada", "Calle Falsa", "ALERTAS Belmont"]:
        assert form not in text, f"{form} found in the logs"


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
