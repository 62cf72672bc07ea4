"""Workshop conversations: WORKSHOPS / TALLERES, signing up, the waitlist, MY WORKSHOPS, freeing a seat."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from rq import Queue

from bot.content import segments
from bot.content.encoding import for_sms
from bot.content.matching import fold_case
from bot.conversation.engine import (
    CARRIER_WORDS,
    MAIN,
    CancelRegistration,
    ContactState,
    Inbound,
    OptOut,
    Register,
    respond,
)
from bot.conversation.workshops import FREE, MINE, PICK, WAITLIST, describe, format_when, workshops_text
from bot.people import contacts
from bot.people.identity import SMS, WHATSAPP, Address
from bot.publishing.budgets import budget_of
from bot.services import jobs as job_functions
from bot.store import keys, queues
from bot.workshops import registrations

from .conftest import PARENT, Phone
from .workshops_support import NOW, content_with, in_days, publish, workshop

KYR = workshop("kyr", "2026-12-03T18:00", title="Know your rights")
PLAN = workshop("plan", "2026-12-10T18:00", title="Family plan")
ONLINE = workshop("online", "2026-12-16T18:30", online=True, link="https://lausd.zoom.us/j/123", title="Online")
PAST = workshop("past", "2026-11-01T18:00", title="Past")
SPANISH = ContactState(language="es", at=MAIN, is_new=False)
ENGLISH = ContactState(language="en", at=MAIN, is_new=False)


@pytest.fixture(scope="module")
def content(shipped_content):
    return content_with(shipped_content, PAST, KYR, PLAN, ONLINE)


def say(content, text, state=SPANISH, channel=SMS, now=NOW, **inbound):
    return respond(state, Inbound(text=text, channel=channel, now=now, **inbound), content)


def run(content, texts, state=SPANISH, **inbound):
    effects, outcome = [], None
    for text in texts:
        outcome = say(content, text, state, **inbound)
        effects.extend(outcome.effects)
        state = outcome.state
    return outcome, effects


def test_talleres_lists_upcoming_workshops_numbered_and_waits_for_a_number(content):
    outcome = say(content, "TALLERES", ContactState())
    assert outcome.state.language == "es"
    assert outcome.state.pending == PICK and outcome.state.choices == ("kyr", "plan", "online")
    assert outcome.replies == (workshops_text(content, "es", NOW),)
    text = outcome.replies[0]
    assert "1. Know your rights (es)" in text and "Past" not in text
    assert content.text("es", "workshops.footer") in text and "Pronto" not in text


def test_a_number_signs_up_and_confirms_date_time_and_place(content):
    outcome, effects = run(content, ["TALLERES", "2"])
    assert effects == [Register("plan")]
    assert outcome.state.workshops == ("plan",) and outcome.state.pending is None
    plan = content.workshop("plan")
    assert outcome.replies == (content.text("es", "workshops.confirmed", **describe(content, "es", plan)),)
    assert "jue 10 dic, 6:00 pm" in outcome.replies[0] and "Belmont High School" in outcome.replies[0]


def test_english_dates_and_the_online_link_in_the_confirmation(content):
    outcome, effects = run(content, ["WORKSHOPS", "3"], ENGLISH)
    assert effects == [Register("online")]
    assert "Wed Dec 16, 6:30 pm" in outcome.replies[0]
    assert "Online https://lausd.zoom.us/j/123" in outcome.replies[0]
    assert "https://" not in workshops_text(content, "en", NOW)  # the list stays short


def test_a_full_workshop_offers_the_waitlist(content):
    listed = say(content, "TALLERES").state
    full = say(content, "1", listed, seats_left={"kyr": 0})
    assert full.effects == () and full.state.pending == WAITLIST and full.state.choices == ("kyr",)
    assert full.replies == (content.text("es", "workshops.full_waitlist", title="Know your rights (es)"),)
    joined = say(content, "1", full.state)
    assert joined.effects == (Register("kyr", waitlist=True),)
    assert joined.state.waitlisted == ("kyr",) and joined.state.workshops == ()
    assert joined.replies == (content.text("es", "workshops.waitlisted", title="Know your rights (es)"),)
    declined = say(content, "0", full.state)
    assert declined.effects == () and declined.state.pending is None
    assert declined.replies == (content.text("es", "workshops.no_change"),)


def test_joining_the_waitlist_when_a_seat_just_freed_confirms_the_seat(content):
    full = say(content, "1", say(content, "TALLERES").state, seats_left={"kyr": 0}).state
    outcome = say(content, "1", full, seats_left={"kyr": 1})
    assert outcome.effects == (Register("kyr", waitlist=True),)
    assert outcome.state.workshops == ("kyr",)
    assert outcome.replies[0].startswith("Listo, ya está inscrito")


def test_signing_up_twice_says_so_without_a_second_effect(content):
    state = replace(SPANISH, workshops=("kyr",))
    outcome, effects = run(content, ["TALLERES", "1"], state)
    assert effects == []
    assert outcome.replies == (content.text("es", "workshops.already", **describe(content, "es",
                                                                                 content.workshop("kyr"))),)


def test_zero_goes_to_the_menu_and_a_number_out_of_range_shows_the_list_again(content):
    listed = say(content, "TALLERES").state
    assert say(content, "0", listed).command == "menu"
    again = say(content, "9", listed)
    assert again.command == "workshops" and again.state.pending == PICK


def test_a_workshop_that_started_since_the_list_was_shown_is_closed(content):
    listed = say(content, "TALLERES").state
    late = say(content, "1", listed, now=content.workshop("kyr").starts + timedelta(minutes=1))
    assert late.effects == () and late.replies == (content.text("es", "workshops.gone"),)


def test_main_menu_number_three_lists_workshops_for_sign_up(content):
    outcome = say(content, "3")
    assert outcome.state.pending == PICK and outcome.replies == (workshops_text(content, "es", NOW),)


def test_my_workshops_lists_seats_and_waitlist_then_frees_one_after_a_confirmation(content):
    state = replace(SPANISH, workshops=("plan", "past"), waitlisted=("kyr",))
    mine = say(content, "MIS TALLERES", state)
    assert mine.state.pending == MINE and mine.state.choices == ("kyr", "plan")  # in date order, past left out
    lines = mine.replies[0].split("\n")
    assert lines[0] == content.text("es", "workshops.mine")
    assert lines[1] == "1. Know your rights (es) - jue 3 dic, 6:00 pm (lista de espera)"
    assert lines[2] == "2. Family plan (es) - jue 10 dic, 6:00 pm, Belmont High School"
    asked = say(content, "2", mine.state)
    assert asked.state.pending == FREE and asked.effects == ()
    assert asked.replies == (content.text("es", "workshops.free_confirm", title="Family plan (es)",
                                          when="jue 10 dic, 6:00 pm"),)
    freed = say(content, "1", asked.state)
    assert freed.effects == (CancelRegistration("plan"),)
    assert freed.state.workshops == ("past",) and freed.state.waitlisted == ("kyr",)
    assert freed.replies == (content.text("es", "workshops.cancelled_by_you", title="Family plan (es)"),)
    kept = say(content, "0", asked.state)
    assert kept.effects == () and kept.state.workshops == ("plan", "past")


def test_my_workshops_in_english_and_when_there_are_none(content):
    assert say(content, "MY WORKSHOPS", ENGLISH).replies == (content.text("en", "workshops.none_mine"),)
    outcome = say(content, "my workshops", replace(ENGLISH, workshops=("kyr",)))
    assert outcome.command == "my_workshops" and "1. Know your rights (en) - Thu Dec 3, 6:00 pm" in outcome.replies[0]


@pytest.mark.parametrize("word", ["CANCEL", "cancel", "STOP", "QUIT"])
def test_carrier_words_keep_their_meaning_even_while_freeing_a_seat(content, word):
    asked = run(content, ["MIS TALLERES", "1"], replace(SPANISH, workshops=("kyr",)))[0].state
    outcome = say(content, word, asked, channel=WHATSAPP)
    assert outcome.effects == (OptOut(),) and outcome.state.opted_out


def test_no_language_uses_a_carrier_word_as_a_workshop_keyword(shipped_content):
    for code in shipped_content.languages:
        words = shipped_content.language(code)["keywords"].get("my_workshops", [])
        assert words, f"{code} has no MY WORKSHOPS keyword"
        assert not {fold_case(w) for w in words} & CARRIER_WORDS


NEW_TEXTS = ["workshops.confirmed", "workshops.already", "workshops.promoted", "reminder.day", "reminder.hours",
             "workshops.changed", "workshops.cancelled", "workshops.full_waitlist", "workshops.waitlisted",
             "workshops.free_confirm", "workshops.cancelled_by_you"]


def test_every_workshop_message_fits_its_budget_with_long_real_values(shipped_content):
    long_place = "Miguel Contreras Learning Complex"
    for code in shipped_content.languages:
        for key in NEW_TEXTS:
            longest = max((w.title.get(code) or w.title["en"] for w in shipped_content.workshops), key=len)
            moment = max((w.starts for w in shipped_content.workshops), key=lambda m: len(
                format_when(shipped_content, code, m)))
            text = shipped_content.text(code, key, title=longest, when=format_when(shipped_content, code, moment),
                                        place=long_place)
            count = segments.count(text)
            assert count.segments <= budget_of(shipped_content, key, count.encoding), (code, key, count)


# --- through the webhook: Redis, the waitlist, promotion, FORGET ---

@pytest.fixture
def small(aviso, shipped_content):
    """Content whose first workshop has one seat."""
    return publish(aviso, shipped_content, workshop("kyr", in_days(30), capacity=1, title="Rights"),
                   workshop("plan", in_days(37), title="Plan"))


def contact_key(aviso, number: str, channel: str = SMS) -> str:
    return aviso.keyring.contact_key(Address(channel, number))


def test_signing_up_by_text_takes_a_seat_and_keeps_the_contact(phone, aviso, small):
    phone.text("TALLERES")
    reply = phone.text("1")
    assert reply[0].startswith("Listo, ya esta inscrito: Rights (es)")
    key = contact_key(aviso, PARENT)
    assert registrations.registrants(aviso.connection, "kyr") == [key]
    assert aviso.connection.hget(contacts.contact_redis_key(key), "workshops") == b"kyr"
    assert aviso.connection.ttl(contacts.contact_redis_key(key)) == -1  # a registrant stays
    assert phone.text("MIS TALLERES")[0].split("\n")[1].startswith("1. Rights (es)")


def test_the_last_seat_taken_meanwhile_gets_the_waitlist_offer_not_a_false_confirmation(client, aviso, small):
    first, second = Phone(client, "+12135550001"), Phone(client, "+12135550002")
    first.text("TALLERES")
    second.text("TALLERES")
    assert first.text("1")[0].startswith("Listo")
    offer = second.text("1")
    assert offer == [for_sms(small.text("es", "workshops.full_waitlist", title="Rights (es)"), "es")]
    assert second.text("1") == [for_sms(small.text("es", "workshops.waitlisted", title="Rights (es)"), "es")]
    waiting = contact_key(aviso, "+12135550002")
    assert aviso.connection.zrange(registrations.waitlist_key("kyr"), 0, -1) == [waiting.encode()]


def test_freeing_a_seat_promotes_the_first_on_the_waitlist_with_a_message(app, client, aviso, small):
    first, second = Phone(client, "+12135550001"), Phone(client, "+12135550002")
    for texts, phone_ in ((["TALLERES", "1"], first), (["WORKSHOPS", "1", "1"], second)):
        for text in texts:
            phone_.text(text)
    first.text("MIS TALLERES")
    first.text("1")
    assert first.text("1") == [for_sms(small.text("es", "workshops.cancelled_by_you", title="Rights (es)"), "es")]
    promoted = contact_key(aviso, "+12135550002")
    assert registrations.registrants(aviso.connection, "kyr") == [promoted]
    assert aviso.connection.hget(contacts.contact_redis_key(promoted), "workshops") == b"kyr"
    assert aviso.connection.hget(contacts.contact_redis_key(promoted), "waitlisted") is None
    jobs = Queue(queues.DEFAULT, connection=aviso.connection).jobs
    assert [j.func_name for j in jobs if "promo" in j.id] == ["bot.services.jobs.send_promotions"]
    with app.app_context():
        assert job_functions.send_promotions("kyr") == "promotions for kyr: 1 sent"
        assert job_functions.send_promotions("kyr") == "nobody to tell"
    sent = aviso.sender.messages_for(Address(SMS, "+12135550002"))
    assert sent[-1]["body"].startswith("Good news: a seat opened for Rights (en)")  # it texted WORKSHOPS: English
    assert sent[-1]["content_version"] == small.version


def test_forget_gives_the_seat_to_the_waitlist_and_erases_every_registration_key(client, aviso, small):
    first, second = Phone(client, "+12135550001"), Phone(client, "+12135550002")
    for text in ("TALLERES", "1"):
        first.text(text)
    for text in ("TALLERES", "1", "1"):
        second.text(text)
    gone = contact_key(aviso, "+12135550001")
    aviso.connection.hset(registrations.registration_key("kyr", gone), "rem:1d:1", "sent:SMx")
    first.text("BORRAR")
    first.text("BORRAR")
    assert registrations.registrants(aviso.connection, "kyr") == [contact_key(aviso, "+12135550002")]
    for name in aviso.connection.scan_iter():
        if name != keys.OUTBOX.encode():  # the development outbox logs what was sent, by contact key
            assert gone.encode() not in name and gone.encode() not in (aviso.connection.dump(name) or b""), name
    assert aviso.connection.scard(keys.WORKSHOP_PROMOTED.format(id="kyr")) == 1


@pytest.mark.parametrize("stray", ["2", "7", "Sí", "ok"])
def test_a_stray_answer_to_a_yes_or_no_workshop_question_asks_it_again(content, stray):
    listed = say(content, "TALLERES", replace(SPANISH, at="rights")).state  # a menu left behind
    full = say(content, "1", listed, seats_left={"kyr": 0})
    again = say(content, stray, full.state)
    assert again.effects == () and again.state.pending == WAITLIST
    assert again.replies == full.replies
    mine = say(content, "MIS TALLERES", replace(SPANISH, at="rights", workshops=("plan",))).state
    asked = say(content, "1", mine)
    again = say(content, stray, asked.state)
    assert again.effects == () and again.state.pending == FREE and again.replies == asked.replies
