"""Audience counts stay equal to a full recount whatever families do through the real webhook (follow,
leave, stop, start, forget, change language, on SMS and WhatsApp), and `aviso counts rebuild` restores
them from the data; the home page and the preview read them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from bot.broadcasts.store import Broadcast, new_id
from bot.cli.main import cli
from bot.people import audience_counts, contacts
from bot.people.identity import Address
from bot.store import keys

from .conftest import Phone

# What families text, in any order: following and leaving schools, the language menu and its numbers,
# carrier words, FORGET (twice confirms), keywords in two languages.
WORDS = ("ALERTAS", "ALERTS", "Belmont", "Venice", "Garfield", "1", "1", "2", "3", "0", "SALIR", "LEAVE",
         "MIS ALERTAS", "STOP", "START", "BORRAR", "FORGET", "IDIOMA", "LANGUAGE", "DERECHOS", "RIGHTS", "hola")
NUMBERS = ("+12135550131", "+12135550132", "whatsapp:+12135550133", "whatsapp:+12135550134")


def same_as_recount(connection) -> bool:
    return audience_counts.stored(connection) == audience_counts.recount(connection)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counts_equal_a_full_recount_after_any_sequence_through_the_webhook(client, aviso, seed):
    chooser = random.Random(seed)
    phones = [Phone(client, number) for number in NUMBERS]
    most = 0
    for step in range(160):
        phone = chooser.choice(phones)
        phone.text(chooser.choice(WORDS))
        if step % 40 == 39:  # a family follows for sure now and then, so the counts have something to hold
            for body in ("ALERTAS", chooser.choice(("Belmont", "Venice")), "1"):
                phone.text(body)
        counts, _ = audience_counts.stored(aviso.connection)
        most = max(most, sum(counts.get(None, {}).values()))
        assert same_as_recount(aviso.connection), f"drift after step {step}"
    assert most >= 1


def test_a_carrier_opt_out_and_forget_stop_counting(phone, aviso):
    for body in ("ALERTAS", "Belmont", "1"):
        phone.text(body)
    assert audience_counts.per_language(aviso.connection, "BELMONT") == {"es": 1}
    key = aviso.keyring.contact_key(Address("sms", phone.number))
    aviso.connection.eval(audience_counts.MARK_OPTED_OUT, 1, contacts.contact_redis_key(key), key)
    assert audience_counts.per_language(aviso.connection, "BELMONT") == {}
    assert same_as_recount(aviso.connection)
    phone.text("START")
    assert audience_counts.per_language(aviso.connection, "BELMONT") == {"es": 1}
    contacts.forget(aviso.connection, key)
    assert audience_counts.per_language(aviso.connection, "BELMONT") == {}
    assert same_as_recount(aviso.connection)


def test_a_whatsapp_familys_later_message_moves_its_window_and_keeps_the_counts(whatsapp, aviso):
    for body in ("ALERTAS", "Belmont", "1", "ALERTAS", "Venice", "1"):  # two schools: three window sets
        whatsapp.text(body)
    counts, windows = audience_counts.stored(aviso.connection)
    assert len(windows) == 3 and same_as_recount(aviso.connection)
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=20), tick=True):
        whatsapp.text("DERECHOS")
    later_counts, later_windows = audience_counts.stored(aviso.connection)
    assert later_counts == counts
    assert later_windows.keys() == windows.keys()
    for name, members in later_windows.items():
        (member, seen), = members.items()
        assert seen - windows[name][member] >= 20 * 3600 - 60  # the 24-hour window opened again
    assert same_as_recount(aviso.connection)


def test_rebuild_restores_counts_from_the_data(phone, whatsapp, aviso):
    for device in (phone, whatsapp):
        for body in ("ALERTAS", "Belmont", "1"):
            device.text(body)
    before = audience_counts.stored(aviso.connection)
    for name in list(aviso.connection.scan_iter(match=keys.PREFIX + ":counts:*")):
        aviso.connection.delete(name)
    assert audience_counts.per_language(aviso.connection, "BELMONT") == {}
    assert audience_counts.rebuild(aviso.connection) == 2
    assert audience_counts.stored(aviso.connection) == before
    assert audience_counts.rebuild(aviso.connection) == 2  # twice is the same


def test_the_preview_of_one_school_reads_the_counts_with_the_whatsapp_window(phone, whatsapp, aviso):
    for device in (phone, whatsapp):
        for body in ("ALERTAS", "Belmont", "1"):
            device.text(body)
    draft = Broadcast(id=new_id(), schools=("BELMONT",), kind="update", texts={"es": "Hola", "en": "Hi"},
                      code="PLAN1", created_by="s")
    now = float(aviso.connection.time()[0])
    plan = aviso.broadcasts.plan(draft, now=now)
    (row,) = plan.languages
    assert (row.language, row.sms, row.whatsapp, row.whatsapp_unreachable) == ("es", 1, 1, 0)
    later = aviso.broadcasts.plan(draft, now=now + 2 * 24 * 3600)  # two days on, the window has closed
    assert later.languages[0].whatsapp_unreachable == 1 and later.messages == 1


def test_aviso_counts_rebuild_recounts_from_the_command_line(phone, aviso, runner, cli_env):
    for body in ("ALERTAS", "Belmont", "1"):
        phone.text(body)
    aviso.connection.delete(audience_counts.scope("BELMONT"))
    result = runner.invoke(cli, ["counts", "rebuild"], env=cli_env)
    assert result.exit_code == 0 and "counted 1 families" in result.output
    assert audience_counts.per_language(aviso.connection, "BELMONT") == {"es": 1}


def _meanwhile(monkeypatch, change):
    """Run change between the webhook's read of the contact and its write (where another process could)."""
    from bot.services import conversations

    apply = conversations.registrations.apply

    def apply_after_change(*args, **kwargs):
        change()
        return apply(*args, **kwargs)

    monkeypatch.setattr(conversations.registrations, "apply", apply_after_change)


def test_a_carrier_opt_out_while_a_message_is_answered_is_not_written_over(phone, aviso, monkeypatch):
    for body in ("ALERTAS", "Belmont", "1"):
        phone.text(body)
    key = aviso.keyring.contact_key(Address("sms", phone.number))
    name = contacts.contact_redis_key(key)
    _meanwhile(monkeypatch, lambda: aviso.connection.eval(audience_counts.MARK_OPTED_OUT, 1, name, key))
    assert phone.text("DERECHOS")  # answered, and only the fields this message changed are written
    assert aviso.connection.hget(name, "opted_out") == b"1"
    assert audience_counts.per_language(aviso.connection, "BELMONT") == {}
    assert same_as_recount(aviso.connection)


def test_a_contact_forgotten_while_its_message_is_answered_is_not_brought_back(phone, aviso, monkeypatch):
    for body in ("ALERTAS", "Belmont", "1"):
        phone.text(body)
    key = aviso.keyring.contact_key(Address("sms", phone.number))
    _meanwhile(monkeypatch, lambda: contacts.forget(aviso.connection, key))
    assert phone.text("MENU")
    assert not aviso.connection.exists(contacts.contact_redis_key(key))
    assert audience_counts.per_language(aviso.connection, "BELMONT") == {}
    assert same_as_recount(aviso.connection)
