"""The voice menu engine, as tables: (state, keys pressed) -> what the caller hears and where the call goes."""

from __future__ import annotations

import pytest

from bot.content.model import Content
from bot.content.voice import VoiceContent, spoken_number
from bot.conversation.voice_menu import INTERPRETERS, LANGUAGE, MAIN, CallState, start, step

from .conftest import CONTENT_DIR

HOTLINE = "+18886244752"  # chirla-rapid-response in resources.toml, verified


@pytest.fixture(scope="module")
def voice() -> VoiceContent:
    return VoiceContent.of(Content.from_dir(CONTENT_DIR))


def texts(turn) -> list[str]:
    return [line.text for line in turn.lines]


def test_english_and_spanish_can_be_heard_in_language_menu_order(voice):
    assert voice.heard_languages == ("en", "es")


def test_a_new_caller_hears_a_greeting_then_each_language_offered_in_itself(voice):
    turn = start(None, voice)
    assert turn.state == CallState(LANGUAGE)
    assert [(line.language, line.text) for line in turn.lines] == [
        ("en", voice.say("en", "greeting")),
        ("es", voice.say("es", "greeting")),
        ("en", "For English, press 1."),
        ("es", "Para español, oprima 2."),
        ("en", "If you speak Zapotec, Mixtec, K'iche', Mam or another indigenous language, press 3."),
        ("es", "Si habla zapoteco, mixteco, k'iche', mam u otra lengua originaria, oprima 3."),
    ]


@pytest.mark.parametrize("known, heard", [("es", "es"), ("en", "en"), ("ko", None), (None, None)])
def test_a_caller_whose_language_is_known_starts_at_the_main_menu_in_it(voice, known, heard):
    turn = start(known, voice)
    if heard is None:  # a language with no voice texts yet, or none known: the language menu
        assert turn.state == CallState(LANGUAGE)
    else:
        assert turn.state == CallState(MAIN, heard)
        assert texts(turn) == [voice.say(heard, "greeting"), voice.say(heard, "menu.main")]


KEYPAD = [
    # state (at, language), keys -> next (at, language), what is said first (a voice text key)
    ((LANGUAGE, None), "1", (MAIN, "en"), "menu.main"),
    ((LANGUAGE, None), "2", (MAIN, "es"), "menu.main"),
    ((LANGUAGE, None), "3", (INTERPRETERS, None), "resources.interpreters"),
    ((LANGUAGE, None), "4", (LANGUAGE, None), "invalid"),
    ((INTERPRETERS, None), "*", (INTERPRETERS, None), "resources.interpreters"),
    ((INTERPRETERS, None), "#", (LANGUAGE, None), "language.option"),
    ((INTERPRETERS, None), "1", (INTERPRETERS, None), "invalid"),
    ((LANGUAGE, None), "*", (LANGUAGE, None), "language.option"),
    ((LANGUAGE, None), "#", (LANGUAGE, None), "language.option"),
    ((MAIN, "es"), "1", ("rights", "es"), "menu.rights"),
    ((MAIN, "es"), "2", ("resources", "es"), "menu.resources"),
    ((MAIN, "es"), "3", ("alerts.signup", "es"), "alerts.signup"),
    ((MAIN, "es"), "4", (MAIN, "es"), "invalid"),
    (("alerts.signup", "es"), "#", (MAIN, "es"), "menu.main"),
    (("alerts.signup", "es"), "*", ("alerts.signup", "es"), "alerts.signup"),
    (("alerts.signup", "es"), "1", ("alerts.signup", "es"), "alerts.calls_on"),  # be called for urgent alerts
    (("alerts.signup", "en"), "2", ("alerts.signup", "en"), "invalid"),
    ((MAIN, "es"), "*", (MAIN, "es"), "menu.main"),
    ((MAIN, "es"), "#", (LANGUAGE, "es"), "language.option"),
    ((MAIN, "en"), "12", ("rights", "en"), "menu.rights"),  # only the first key counts
    *[(("rights", "es"), str(n), (key, "es"), key) for n, key in enumerate(
        ["rights.home", "rights.public", "rights.work", "rights.school", "rights.detained", "rights.card",
         "rights.plan", "rights.caregiver"], 1)],
    (("rights", "es"), "9", ("rights", "es"), "invalid"),
    (("rights", "es"), "#", (MAIN, "es"), "menu.main"),
    (("rights", "en"), "*", ("rights", "en"), "menu.rights"),
    *[(("resources", "en"), str(n), (key, "en"), key) for n, key in enumerate(
        ["resources.hotlines", "resources.legal", "resources.district", "resources.wellness",
         "resources.interpreters"], 1)],
    (("resources", "en"), "6", ("resources", "en"), "invalid"),
    (("resources", "en"), "#", (MAIN, "en"), "menu.main"),
    (("rights.home", "es"), "*", ("rights.home", "es"), "rights.home"),
    (("rights.home", "es"), "#", ("rights", "es"), "menu.rights"),
    (("rights.home", "es"), "1", ("rights.home", "es"), "invalid"),
    (("resources.legal", "en"), "#", ("resources", "en"), "menu.resources"),
    # the content changed under the call: a language no longer heard, a text that is gone
    ((MAIN, "ko"), "1", (MAIN, "en"), "menu.main"),
    (("rights.nowhere", "es"), "*", (LANGUAGE, None), "language.option"),
]


@pytest.mark.parametrize("at, keys, after, first", KEYPAD, ids=[f"{r[0][0]}-{r[0][1]}-{r[1]}" for r in KEYPAD])
def test_each_key_leads_where_the_menu_says(voice, at, keys, after, first):
    turn = step(CallState(*at), keys, voice)
    assert (turn.state.at, turn.state.language) == after
    assert turn.gather and turn.dial is None
    language = turn.lines[0].language
    expected = voice.say(language, first, key="1") if first == "language.option" else voice.say(language, first)
    assert turn.lines[0].text == expected


def test_a_text_heard_is_followed_by_how_to_repeat_go_back_or_call(voice):
    turn = step(CallState("rights", "es"), "1", voice)
    assert texts(turn) == [voice.say("es", "rights.home"), voice.say("es", "after")]


@pytest.mark.parametrize("at", [(LANGUAGE, None), (MAIN, "es"), ("rights", "en"), ("rights.detained", "es")])
def test_zero_connects_to_the_verified_hotline_from_anywhere(voice, at):
    turn = step(CallState(*at), "0", voice)
    assert turn.dial == HOTLINE and not turn.gather
    language = at[1] or "en"
    assert texts(turn) == [voice.say(language, "connecting")]


def test_choosing_a_language_is_remembered_and_nothing_else_is(voice):
    assert step(CallState(), "2", voice).remember_language == "es"
    assert step(CallState(MAIN, "es"), "1", voice).remember_language is None
    assert step(CallState(MAIN, "es"), "#", voice).remember_language is None


SILENCE = [
    # silences so far -> silences after, what is said, still listening
    (0, 1, "menu.rights", True),
    (1, 2, "menu.rights", True),
    (2, 3, "silence.offer", True),
    (3, 4, "goodbye", False),
]


@pytest.mark.parametrize("quiet, after, said, listening", SILENCE)
def test_silence_repeats_twice_then_offers_the_hotline_then_says_goodbye(voice, quiet, after, said, listening):
    turn = step(CallState("rights", "es", quiet), "", voice)
    assert turn.state.silences == after
    assert texts(turn)[0] == voice.say("es", said)
    assert turn.gather is listening and turn.dial is None


def test_after_the_offer_zero_still_connects_and_star_hears_the_menu_again(voice):
    offered = CallState("rights", "es", 3)
    assert step(offered, "0", voice).dial == HOTLINE
    again = step(offered, "*", voice)
    assert again.state == CallState("rights", "es", 0)
    assert texts(again) == [voice.say("es", "menu.rights")]


def test_numbers_are_read_digit_by_digit_and_twice(voice):
    assert spoken_number("888-624-4752") == "8 8 8, 6 2 4, 4 7 5 2"
    for language in voice.heard_languages:
        assert voice.say(language, "resources.hotlines").count("8 8 8, 6 2 4, 4 7 5 2") == 2


def test_the_interpreters_option_explains_in_english_and_spanish_and_remembers_no_language(voice):
    turn = step(CallState(), "3", voice)
    assert [(line.language, line.text) for line in turn.lines] == [
        ("en", voice.say("en", "resources.interpreters")), ("es", voice.say("es", "resources.interpreters")),
        ("en", voice.say("en", "after")), ("es", voice.say("es", "after")),
    ]
    assert turn.remember_language is None
    assert step(turn.state, "0", voice).dial == HOTLINE


def test_content_with_no_voice_at_all_ends_the_call_rather_than_failing():
    silent = VoiceContent({}, ("en", "es"), [], {})
    assert start("es", silent) == step(CallState(MAIN, "es"), "1", silent)
    assert not start("es", silent).gather and not start("es", silent).lines


def test_a_draft_language_this_deployment_does_not_serve_is_not_offered_on_the_phone():
    shipped = Content.from_dir(CONTENT_DIR)
    withheld = VoiceContent.of(Content(shipped.tree, withheld=frozenset({"en", "es"})))
    assert withheld.heard_languages == ("en",)  # the default language is always served
    assert [line.text for line in start(None, withheld).lines][-2:] == [
        "For English, press 1.", "If you speak Zapotec, Mixtec, K'iche', Mam or another indigenous language, press 2."]
