"""The conversation engine, as a table of (state, text) -> what the family gets."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.content import encoding
from bot.conversation.engine import (
    LANGUAGE_MENU,
    MAIN,
    AlertFacts,
    ContactState,
    Forget,
    Inbound,
    OptIn,
    OptOut,
    Policy,
    Subscribe,
    Unsubscribe,
    format_when,
    main_menu_text,
    respond,
    submenu_text,
    welcome_text,
    workshops_text,
)
from bot.people.identity import SMS, WHATSAPP

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
NEW = ContactState()
ENGLISH = ContactState(language="en", at=MAIN, is_new=False)
SPANISH = ContactState(language="es", at=MAIN, is_new=False)


DEFAULT_POLICY = Policy()


def say(content, text, state=NEW, channel=SMS, policy=DEFAULT_POLICY, **inbound):
    """Run the engine once."""
    return respond(state, Inbound(text=text, channel=channel, now=NOW, **inbound), content, policy)


KEYWORDS = [
    # (text, state, expected command, expected language)
    ("RIGHTS", NEW, "rights", "en"),
    ("DERECHOS", NEW, "rights", "es"),
    ("RESOURCES", NEW, "resources", "en"),
    ("RECURSOS", NEW, "resources", "es"),
    ("WORKSHOPS", NEW, "workshops", "en"),
    ("TALLERES", NEW, "workshops", "es"),
    ("ALERTS", NEW, "alerts", "en"),
    ("ALERTAS", NEW, "alerts", "es"),
    ("MENU", ENGLISH, "menu", "en"),
    ("MENÚ", NEW, "menu", "es"),
    ("MENU", SPANISH, "menu", "es"),
    ("AYUDA", NEW, "help", "es"),
    ("LANGUAGE", ENGLISH, "language", "en"),
    ("IDIOMA", NEW, "language", "es"),
    ("FORGET", ENGLISH, "forget_confirm", "en"),
    ("BORRAR", SPANISH, "forget_confirm", "es"),
    # case, accents, punctuation and spaces are forgiven
    ("  derechos!! ", NEW, "rights", "es"),
    ("Derechos.", NEW, "rights", "es"),
    ("menú", NEW, "menu", "es"),
    ("¿recursos?", NEW, "resources", "es"),
    ("rights", SPANISH, "rights", "es"),  # an English keyword keeps a Spanish speaker in Spanish
    ("DERECHOS", ENGLISH, "rights", "es"),  # a Spanish keyword is a clear wish for Spanish
    # one-letter typos
    ("derechoz", NEW, "rights", "es"),
    ("rigths", NEW, "rights", "en"),
    ("recurso", NEW, "resources", "es"),
    ("taleres", NEW, "workshops", "es"),
    ("alertss", NEW, "alerts", "en"),
]


@pytest.mark.parametrize(("text", "state", "command", "language"), KEYWORDS)
def test_keyword_gets_its_answer_in_the_keywords_language(shipped_content, text, state, command, language):
    outcome = say(shipped_content, text, state)
    assert outcome.command == command
    assert outcome.language == language
    assert len(outcome.replies) == (2 if command == "help" else 1) and outcome.replies[0].strip()


@pytest.mark.parametrize("language", ["en", "es"])
def test_rights_keyword_answers_with_the_rights_menu_in_that_language(shipped_content, language):
    word = {"en": "RIGHTS", "es": "DERECHOS"}[language]
    outcome = say(shipped_content, word)
    assert outcome.replies == (submenu_text(shipped_content, language, "rights"),)
    assert outcome.state.at == "rights"


def test_first_message_without_keyword_gets_bilingual_welcome_with_language_menu(shipped_content):
    outcome = say(shipped_content, "hola, que es esto")
    assert outcome.replies == (welcome_text(shipped_content),)
    assert shipped_content.text("en", "welcome") in outcome.replies[0]
    assert shipped_content.text("es", "welcome") in outcome.replies[0]
    assert "1 English" in outcome.replies[0] and "2 Español" in outcome.replies[0]
    assert outcome.state.at == LANGUAGE_MENU and outcome.state.language is None


@pytest.mark.parametrize(("choice", "language"), [("1", "en"), ("2", "es"), ("español", "es"), ("english", "en")])
def test_choosing_from_the_welcome_sets_the_language_and_shows_the_menu(shipped_content, choice, language):
    welcomed = say(shipped_content, "hello?").state
    outcome = say(shipped_content, choice, welcomed)
    assert outcome.state.language == language
    assert main_menu_text(shipped_content, language) in outcome.replies[0]
    assert outcome.replies[0].startswith(shipped_content.text(language, "language.set"))


def test_chosen_language_sticks_for_later_messages(shipped_content):
    state = say(shipped_content, "2", say(shipped_content, "hi").state).state
    outcome = say(shipped_content, "MENU", state)
    assert outcome.replies == (main_menu_text(shipped_content, "es"),)


def test_unknown_text_from_a_known_contact_gets_didnt_understand_in_their_language(shipped_content):
    outcome = say(shipped_content, "asdfgh qwerty", SPANISH)
    assert outcome.replies == (shipped_content.text("es", "unknown"),)
    assert outcome.command == "unknown"


@pytest.mark.parametrize("body", ["", "x" * 10_000, "🙂🙂🙂🙂" * 500, "¿¿¿???", "9" * 5000, "٣" * 16_000])
def test_odd_bodies_get_a_normal_reply_never_silence(shipped_content, body):
    for state in (NEW, SPANISH):
        outcome = say(shipped_content, body, state, has_media=True)
        assert len(outcome.replies) == 1 and outcome.replies[0]


@pytest.mark.parametrize("pending", ["school_choice", "school_confirm", "leave_choice", "ws_pick", "ws_waitlist",
                                     "ws_mine", "ws_free"])
def test_thousands_of_digits_at_an_open_question_ask_it_again_never_fail(shipped_content, pending):
    state = ContactState(language="es", at=MAIN, is_new=False, pending=pending, choices=("BELMONT",))
    outcome = say(shipped_content, "7" * 5000, state)
    assert len(outcome.replies) == 1 and outcome.replies[0]


NAVIGATION = [
    # (state at, number, expected text key or composite)
    (MAIN, "1", ("menu", "rights")),
    (MAIN, "2", ("menu", "resources")),
    (MAIN, "3", ("command", "workshops")),
    (MAIN, "4", ("text", "alerts.info")),
    (MAIN, "6", ("text", "help")),
    ("rights", "1", ("text", "rights.home")),
    ("rights", "2", ("text", "rights.public")),
    ("rights", "3", ("text", "rights.work")),
    ("rights", "4", ("text", "rights.school")),
    ("rights", "5", ("text", "rights.detained")),
    ("rights", "6", ("text", "rights.card")),
    ("rights", "7", ("text", "rights.plan")),
    ("rights", "8", ("text", "rights.caregiver")),
    ("resources", "1", ("text", "resources.hotlines")),
    ("resources", "2", ("text", "resources.legal")),
    ("resources", "3", ("text", "resources.district")),
    ("resources", "4", ("text", "resources.wellness")),
    ("resources", "5", ("text", "resources.interpreters")),
    ("rights", "0", ("main", None)),
    ("rights", "9", ("menu", "rights")),  # out of range: the same menu again
    (MAIN, "42", ("main", None)),
    (LANGUAGE_MENU, "0", ("main", None)),  # back from the language menu
]


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize(("at", "number", "expected"), NAVIGATION)
def test_numbers_navigate_the_menu_they_answer(shipped_content, language, at, number, expected):
    state = ContactState(language=language, at=at, is_new=False)
    outcome = say(shipped_content, number, state)
    kind, key = expected
    wanted = {
        "menu": lambda: submenu_text(shipped_content, language, key),
        "text": lambda: shipped_content.text(language, key),
        "main": lambda: main_menu_text(shipped_content, language),
        "command": lambda: workshops_text(shipped_content, language, NOW),
    }[kind]()
    if key == "help":  # HELP is the carrier text, then the hotline and how to reach a person
        assert outcome.replies == (wanted, shipped_content.text(language, "help.more"))
        return
    assert outcome.replies == (wanted,)


def test_a_page_keeps_its_menu_so_the_next_number_picks_a_sibling(shipped_content):
    state = say(shipped_content, "DERECHOS").state
    first = say(shipped_content, "1", state)
    second = say(shipped_content, "5", first.state)
    assert second.replies == (shipped_content.text("es", "rights.detained"),)


@pytest.mark.parametrize("word", ["STOP", "stop", "StopAll", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                                  "OPTOUT", " Stop. "])
def test_carrier_opt_out_words_opt_out_of_everything(shipped_content, word):
    outcome = say(shipped_content, word, SPANISH, channel=WHATSAPP)
    assert outcome.state.opted_out
    assert outcome.effects == (OptOut(),)
    assert outcome.replies == (shipped_content.text("es", "stop.done"),)


def test_stop_on_sms_with_advanced_opt_out_is_answered_by_twilio_not_aviso(shipped_content):
    outcome = say(shipped_content, "STOP", SPANISH, channel=SMS)
    assert outcome.state.opted_out and outcome.replies == ()


def test_stop_on_sms_without_advanced_opt_out_is_confirmed_by_aviso(shipped_content):
    policy = Policy(carrier_answers_sms_keywords=False)
    outcome = say(shipped_content, "STOP", ENGLISH, channel=SMS, policy=policy)
    assert outcome.replies == (shipped_content.text("en", "stop.done"),)


def test_twilio_opt_out_type_is_honoured_even_for_a_custom_word(shipped_content):
    outcome = say(shipped_content, "BAJA", SPANISH, opt_out_type="STOP")
    assert outcome.state.opted_out


def test_opted_out_contact_gets_nothing_until_start(shipped_content):
    stopped = replace(SPANISH, opted_out=True)
    assert say(shipped_content, "DERECHOS", stopped, channel=WHATSAPP).replies == ()
    assert say(shipped_content, "hola", stopped, channel=WHATSAPP).replies == ()
    started = say(shipped_content, "START", stopped, channel=WHATSAPP)
    assert not started.state.opted_out and started.effects == (OptIn(),)
    assert started.replies == (shipped_content.text("es", "start.done"),)
    assert say(shipped_content, "DERECHOS", started.state, channel=WHATSAPP).replies


@pytest.mark.parametrize("word", ["START", "UNSTOP", "YES"])
def test_carrier_opt_in_words_opt_back_in(shipped_content, word):
    outcome = say(shipped_content, word, replace(ENGLISH, opted_out=True), channel=WHATSAPP)
    assert not outcome.state.opted_out


@pytest.mark.parametrize(("word", "state", "language"), [("HELP", ENGLISH, "en"), ("INFO", SPANISH, "es"),
                                                          ("AYUDA", NEW, "es"), ("HELP", NEW, "en")])
def test_help_says_who_sends_and_how_to_stop(shipped_content, word, state, language):
    outcome = say(shipped_content, word, state)
    assert outcome.replies == (shipped_content.text(language, "help"), shipped_content.text(language, "help.more"))
    assert "STOP" in outcome.replies[0]


def test_help_is_answered_even_after_stop(shipped_content):
    outcome = say(shipped_content, "HELP", replace(ENGLISH, opted_out=True))
    assert outcome.replies == (shipped_content.text("en", "help"), shipped_content.text("en", "help.more"))
    assert outcome.state.opted_out


def test_yes_is_never_a_confirmation_for_forget(shipped_content):
    asked = say(shipped_content, "FORGET", ENGLISH).state
    outcome = say(shipped_content, "YES", asked)
    assert Forget() not in outcome.effects


def test_forget_needs_a_confirmation_and_then_forgets_everything(shipped_content):
    asked = say(shipped_content, "BORRAR", SPANISH)
    assert asked.effects == () and asked.state.pending == "forget"
    assert asked.replies == (shipped_content.text("es", "forget.confirm"),)
    confirmed = say(shipped_content, "borrar", asked.state)
    assert confirmed.effects == (Forget(),)
    assert confirmed.replies == (shipped_content.text("es", "forget.done"),)
    assert confirmed.state == ContactState()


def test_forget_confirmation_expires(shipped_content):
    asked = say(shipped_content, "FORGET", ENGLISH).state
    late = respond(asked, Inbound("FORGET", SMS, NOW + timedelta(minutes=11)), shipped_content)
    assert late.effects == () and late.state.pending == "forget"


def test_anything_else_cancels_a_pending_forget(shipped_content):
    asked = say(shipped_content, "FORGET", ENGLISH).state
    other = say(shipped_content, "RIGHTS", asked)
    assert other.state.pending is None and other.command == "rights"
    assert say(shipped_content, "FORGET", other.state).effects == ()


def test_workshops_list_upcoming_workshops_in_the_family_language(shipped_content):
    outcome = say(shipped_content, "TALLERES")
    upcoming = [w for w in shipped_content.workshops if w.starts > NOW and "es" in w.languages]
    assert upcoming, "the shipped content lists workshops in Spanish"
    assert upcoming[0].title["es"] in outcome.replies[0]


def test_workshops_none_when_all_are_past(shipped_content):
    later = NOW.replace(year=2030)
    outcome = respond(SPANISH, Inbound("TALLERES", SMS, later), shipped_content)
    assert outcome.replies == (shipped_content.text("es", "workshops.none"),)


# --- safety alerts: follow a school (double opt-in), list, leave, VERIFY ---

def run(content, texts, state=NEW, channel=SMS, **inbound):
    """Send several messages in a row; return the last outcome and every effect on the way."""
    effects = []
    outcome = None
    for text in texts:
        outcome = say(content, text, state, channel=channel, **inbound)
        effects.extend(outcome.effects)
        state = outcome.state
    return outcome, effects


@pytest.mark.parametrize(
    ("named", "code"),
    [("Belmont High", "BELMONT"), ("belmont", "BELMONT"), ("BELMNT", "BELMONT"), ("mclc", "MCLC"),
     ("Miguel Contreras", "MCLC"), ("escuela garfield", "GARFIELD"), ("Roosvelt High School", "ROOSEVELT")],
)
def test_family_names_a_school_then_confirms_and_follows_it(shipped_content, named, code):
    last, effects = run(shipped_content, ["ALERTAS", named, "1"])
    assert effects == [Subscribe(code)]
    assert last.state.schools == (code,)
    name = shipped_content.school_names([code])
    assert last.replies == (shipped_content.text("es", "alerts.subscribed", school=name),)


def test_alerts_starts_with_what_alerts_are_and_asks_for_the_school(shipped_content):
    outcome = say(shipped_content, "ALERTS")
    assert outcome.replies == (shipped_content.text("en", "alerts.info"),)
    assert outcome.state.pending == "school"


def test_several_matches_give_a_numbered_choice(shipped_content):
    asked, _ = run(shipped_content, ["ALERTS", "elementary"])
    assert asked.state.pending == "school_choice" and len(asked.state.choices) >= 3
    assert "1 " in asked.replies[0] and shipped_content.text("en", "alerts.choose_school") in asked.replies[0]
    last, effects = run(shipped_content, ["2", "1"], asked.state)
    assert effects == [Subscribe(asked.state.choices[1])]


def test_unknown_school_keeps_asking_and_a_keyword_leaves_the_question(shipped_content):
    asked, _ = run(shipped_content, ["ALERTAS", "Hogwarts"])
    assert asked.replies == (shipped_content.text("es", "alerts.no_school"),)
    assert asked.state.pending == "school"
    moved = say(shipped_content, "DERECHOS", asked.state)
    assert moved.command == "rights" and moved.state.pending is None


def test_zero_cancels_and_nothing_is_followed(shipped_content):
    last, effects = run(shipped_content, ["ALERTS", "Venice", "0"])
    assert effects == [] and last.state.schools == ()
    assert last.replies == (shipped_content.text("en", "alerts.cancelled"),)


def test_family_follows_several_schools_lists_them_and_leaves_one(shipped_content):
    state, effects = run(shipped_content, ["ALERTS", "Venice", "1", "ALERTS", "Garfield", "1"])
    assert state.state.schools == ("VENICE", "GARFIELD")
    listed = say(shipped_content, "MY ALERTS", state.state)
    assert "Venice High School" in listed.replies[0] and "Garfield High School" in listed.replies[0]
    last, effects = run(shipped_content, ["LEAVE", "2"], state.state)
    assert effects == [Unsubscribe("GARFIELD")] and last.state.schools == ("VENICE",)
    assert last.replies == (shipped_content.text("en", "alerts.left", school="Garfield High School"),)


def test_leave_with_one_school_leaves_it_and_with_none_says_so(shipped_content):
    state, _ = run(shipped_content, ["ALERTAS", "Venice", "1"])
    left = say(shipped_content, "SALIR", state.state)
    assert left.effects == (Unsubscribe("VENICE"),)
    again = say(shipped_content, "SALIR", left.state)
    assert again.replies == (shipped_content.text("es", "alerts.none"),)


def test_stop_keeps_schools_but_silences_everything_until_start(shipped_content):
    state, _ = run(shipped_content, ["ALERTS", "Venice", "1", "STOP"], channel=WHATSAPP)
    assert state.state.opted_out and state.state.schools == ("VENICE",)


GENUINE = AlertFacts("K7P2Q", "verified", ("BELMONT",), NOW - timedelta(hours=1), "LAUSD School Police")


@pytest.mark.parametrize("text", ["VERIFY K7P2Q", "verificar k7p2q", "Verify: K7P2Q", "VERIFICAR  K7P2Q"])
def test_verify_confirms_a_genuine_alert_with_school_time_and_status(shipped_content, text):
    outcome = say(shipped_content, text, SPANISH, verification=GENUINE)
    assert outcome.command == "verify_genuine"
    assert "K7P2Q" in outcome.replies[0] and "Belmont High School" in outcome.replies[0]
    assert "LAUSD School Police" in outcome.replies[0]


def test_verify_of_an_unknown_code_says_it_may_be_false(shipped_content):
    outcome = say(shipped_content, "VERIFY ZZZZ9", ENGLISH, verification=None)
    assert outcome.replies == (shipped_content.text("en", "verify.unknown", code="ZZZZ9"),)


def test_verify_without_a_code_explains_how(shipped_content):
    outcome = say(shipped_content, "VERIFICAR", NEW)
    assert outcome.replies == (shipped_content.text("es", "verify.usage"),)


def test_language_menu_ends_with_the_indigenous_languages_entry_in_spanish_and_english(shipped_content):
    welcomed = say(shipped_content, "hola").state
    last_entry = len(shipped_content.languages) + 1
    assert f"{last_entry} {shipped_content.interpreters['label']}" in welcome_text(shipped_content)
    outcome = say(shipped_content, str(last_entry), welcomed)
    assert shipped_content.interpreters["texts"]["es"] in outcome.replies[0]
    assert shipped_content.interpreters["texts"]["en"] in outcome.replies[0]


@pytest.mark.parametrize("text", ["VERIFY ۷K۷P", "VERIFY ٧K٧P"])
def test_persian_and_arabic_keyboard_digits_count_as_digits(shipped_content, text):
    facts = AlertFacts("7K7P", "update", ("BELMONT",), NOW - timedelta(hours=1))
    assert say(shipped_content, text, ENGLISH, verification=facts).command == "verify_genuine"
    assert say(shipped_content, "۲", ContactState(language="fa", at=MAIN, is_new=False)).command == "resources"


def test_a_verify_keyword_in_a_script_without_spaces_may_touch_the_code(shipped_content):
    facts = AlertFacts("K7P2Q", "update", ("BELMONT",), NOW - timedelta(hours=1))
    korean = ContactState(language="ko", at=MAIN, is_new=False)
    assert say(shipped_content, "확인K7P2Q", korean, verification=facts).command == "verify_genuine"
    assert say(shipped_content, "VERIFYK7P2Q", ENGLISH, verification=facts).command != "verify_genuine"


# --- a question stays open until it is answered: stray numbers and words ask it again ---

RIGHTS_PAGE = ContactState(language="es", at="rights", is_new=False)  # a menu left behind by ALERTAS


@pytest.mark.parametrize(("texts", "pending", "asked"), [
    (["ALERTAS", "high", "9"], "school_choice", "alerts.choose_school"),  # out of the list: the list again
    (["ALERTAS", "Venice", "2"], "school_confirm", "alerts.confirm"),  # neither 1 nor 0: confirm again
    (["ALERTAS", "Venice", "Sí"], "school_confirm", "alerts.confirm"),
    (["ALERTAS", "Venice", "ok 👍"], "school_confirm", "alerts.confirm"),
    (["ALERTAS", "7"], "school", "alerts.no_school"),  # a number is no school: ask for the school again
])
def test_a_stray_answer_asks_the_alert_question_again_and_runs_no_menu_entry(shipped_content, texts, pending,
                                                                              asked):
    last, effects = run(shipped_content, texts, RIGHTS_PAGE)
    assert effects == [] and last.state.pending == pending
    assert shipped_content.text("es", asked, school="Venice High School") in last.replies[0]


def test_zero_cancels_a_school_list_too(shipped_content):
    last, effects = run(shipped_content, ["ALERTS", "high", "0"])
    assert effects == [] and last.replies == (shipped_content.text("en", "alerts.cancelled"),)


def test_korean_families_confirm_with_1_and_the_prompt_does_not_say_the_verify_word(shipped_content):
    korean = ContactState(language="ko", at=MAIN, is_new=False)
    asked, _ = run(shipped_content, ["알림", "Venice"], korean)
    verify_words = shipped_content.language("ko")["keywords"]["verify"]
    assert not any(word in asked.replies[0] for word in verify_words)
    last, effects = run(shipped_content, ["1"], asked.state)
    assert effects == [Subscribe("VENICE")]


def test_the_leave_list_asks_again_keeps_everything_on_zero_and_takes_a_school_name(shipped_content):
    state = ContactState(language="en", at=MAIN, is_new=False, schools=("VENICE", "GARFIELD"))
    asked, _ = run(shipped_content, ["LEAVE", "5"], state)
    assert asked.state.pending == "leave_choice"
    assert shipped_content.text("en", "alerts.leave_which") in asked.replies[0]
    kept, effects = run(shipped_content, ["0"], asked.state)
    assert effects == [] and kept.state.schools == ("VENICE", "GARFIELD") and "Venice High School" in kept.replies[0]
    named, effects = run(shipped_content, ["LEAVE", "garfield"], state)
    assert effects == [Unsubscribe("GARFIELD")] and named.state.schools == ("VENICE",)


def test_leaving_a_school_says_how_to_follow_it_again(shipped_content):
    state = ContactState(language="es", at=MAIN, is_new=False, schools=("VENICE",))
    left = say(shipped_content, "SALIR", state)
    alerts_word = shipped_content.language("es")["keywords"]["alerts"][0]
    assert left.effects == (Unsubscribe("VENICE"),) and alerts_word in left.replies[0]


@pytest.mark.parametrize("text", ["VERIFICAR 7W37D por favor", "verify 7w37d please", "核實７Ｗ３７Ｄ",
                                  "核實 ７Ｗ３７Ｄ", "ＶＥＲＩＦＹ ７Ｗ３７Ｄ"])
def test_verify_takes_the_first_word_as_the_code_in_any_width(shipped_content, text):
    facts = AlertFacts("7W37D", "update", ("BELMONT",), NOW - timedelta(hours=1))
    assert say(shipped_content, text, SPANISH, verification=facts).command == "verify_genuine"


def test_verify_followed_by_words_that_are_no_code_explains_how_instead_of_calling_it_false(shipped_content):
    outcome = say(shipped_content, "check my alerts", ENGLISH, verification=None)
    assert outcome.replies == (shipped_content.text("en", "verify.usage"),)


def test_full_width_school_names_are_found(shipped_content):
    last, effects = run(shipped_content, ["警報", "Ｂｅｌｍｏｎｔ", "1"])
    assert effects == [Subscribe("BELMONT")]


@pytest.mark.parametrize("language", ["en", "es", "ko", "ar"])
def test_verify_of_a_corrected_alert_names_the_correction(shipped_content, language):
    facts = AlertFacts("K7P2Q", "update", ("BELMONT",), NOW - timedelta(hours=1), corrected_by="UYCM7")
    state = ContactState(language=language, at=MAIN, is_new=False)
    outcome = say(shipped_content, "VERIFY K7P2Q", state, verification=facts)
    assert outcome.command == "verify_genuine"
    assert shipped_content.text(language, "verify.corrected", correction="UYCM7") in outcome.replies[0]


def test_spanish_updates_do_not_repeat_the_product_name(shipped_content):
    frame = shipped_content.text("es", "alert.frame", status=shipped_content.text("es", "status.update"),
                                 school="Belmont", body="x", code="K7P2Q", sent_on="jue 3 dic")
    assert not frame.startswith("AVISO AVISO")


@pytest.mark.parametrize(("text", "language"), [("ALERTAS Garfield", "es"), ("alerts garfeild", "en"),
                                                ("SAFE PASSAGE Garfield High", "en"), ("알림 Garfield", "ko")])
def test_the_alerts_keyword_and_the_school_may_come_in_one_message(shipped_content, text, language):
    asked = say(shipped_content, text)
    assert asked.state.pending == "school_confirm" and asked.state.choices == ("GARFIELD",)
    assert asked.replies == (shipped_content.text(language, "alerts.confirm", school="Garfield High School"),)


def test_a_sentence_that_starts_with_the_alerts_word_but_names_no_school_is_not_a_sign_up(shipped_content):
    outcome = say(shipped_content, "alerta hay agentes cerca", SPANISH)
    assert outcome.effects == () and outcome.state.pending not in ("school", "school_choice", "school_confirm")
    assert outcome.command != "alerts_unknown_school"  # agents nearby: understood as a sentence, not a school


def test_leave_and_a_followed_schools_name_in_one_message_leaves_that_school(shipped_content):
    state = ContactState(language="es", at=MAIN, is_new=False, schools=("VENICE", "GARFIELD"))
    left = say(shipped_content, "SALIR Garfield", state)
    assert left.effects == (Unsubscribe("GARFIELD"),) and left.state.schools == ("VENICE",)
    assert say(shipped_content, "SALIR Belmont", state).effects == ()  # not followed: nothing to leave


@pytest.mark.parametrize("text", ["VERIFCAR 7W37D", "verifica 7W37D", "VERIFYY 7w37d"])
def test_a_one_letter_typo_in_the_verify_word_is_forgiven_when_a_code_follows(shipped_content, text):
    facts = AlertFacts("7W37D", "update", ("BELMONT",), NOW - timedelta(hours=1))
    assert say(shipped_content, text, SPANISH, verification=facts).command == "verify_genuine"
    assert say(shipped_content, text.split()[0], SPANISH).command == "verify_usage"  # alone: how to verify


# --- VERIFY quotes the genuine alert, so a real code under a doctored text does not check out ---
SAID = {
    "en": "Immigration enforcement activity was confirmed near 3rd St & Loma Dr at 7:45 am. Avoid the area.",
    "es": "Se confirmó actividad de agentes de inmigración cerca de 3rd St & Loma Dr a las 7:45 am. Evite la zona.",
    "ko": "7:45 am에 3rd St & Loma Dr 근처에서 이민 단속 활동이 확인되었습니다. 그 지역을 피하세요.",
}
QUOTED = AlertFacts("K7P2Q", "verified", ("BELMONT",), NOW - timedelta(days=8), "LAUSD School Police", said=SAID)


@pytest.mark.parametrize(
    ("language", "said_in"),
    [("en", "en"), ("es", "es"), ("ko", "ko"), ("vi", "en")],  # no Vietnamese text: the default language's
)
def test_verify_quotes_what_the_genuine_alert_said_in_the_askers_language(shipped_content, language, said_in):
    state = ContactState(language=language, at=MAIN, is_new=False)
    answer = say(shipped_content, "VERIFY K7P2Q", state, verification=QUOTED).replies[0]
    assert shipped_content.text(language, "verify.said", text=SAID[said_in]) in answer


def test_verify_says_the_day_the_alert_went_out_so_an_old_forward_shows_its_age(shipped_content):
    answer = say(shipped_content, "VERIFY K7P2Q", ENGLISH, verification=QUOTED).replies[0]
    sent = format_when(shipped_content, "en", QUOTED.sent_at.astimezone(NOW.tzinfo))
    assert f"sent {sent}" in answer and sent.split(",")[0] != format_when(shipped_content, "en", NOW).split(",")[0]


def test_verify_quotes_the_text_a_family_without_a_translation_received(shipped_content):
    facts = replace(QUOTED, said={"es": SAID["es"], "en": SAID["en"]}, fallback_language="es")
    state = ContactState(language="ru", at=MAIN, is_new=False)
    answer = say(shipped_content, "VERIFY K7P2Q", state, verification=facts).replies[0]
    assert SAID["es"] in answer


@pytest.mark.parametrize(("language", "channel"), [("en", SMS), ("es", SMS), ("ko", SMS), ("en", WHATSAPP)])
def test_a_long_alert_is_quoted_shortened_at_a_word_to_fit_an_alert_budget_on_sms(shipped_content, language,
                                                                                   channel):
    long = {lang: " ".join([text] * 6) for lang, text in SAID.items()}
    facts = replace(QUOTED, said=long, corrected_by="UYCM7")
    state = ContactState(language=language, at=MAIN, is_new=False)
    answer = say(shipped_content, "VERIFY K7P2Q", state, channel=channel, verification=facts).replies[0]
    assert shipped_content.text(language, "verify.corrected", correction="UYCM7") in answer  # never cut
    if channel == WHATSAPP:
        assert long[language] in answer
        return
    cost = encoding.sms_cost(answer, language)
    assert cost.segments <= {"GSM-7": 3, "UCS-2": 5}[cost.encoding]
    quoted = answer.split("\n")[1]
    assert " ..." in quoted and SAID[language].split()[0] in quoted


def test_verify_of_a_correction_names_the_alert_it_corrects(shipped_content):
    facts = AlertFacts("UYCM7", "correction", ("BELMONT",), NOW, corrects="K7P2Q", said={"en": "It was not ICE."})
    answer = say(shipped_content, "VERIFY UYCM7", ENGLISH, verification=facts).replies[0]
    assert "CORRECTION of alert K7P2Q" in answer and 'It said: "It was not ICE."' in answer


def test_a_long_chinese_alert_is_quoted_shortened_to_fit(shipped_content):
    facts = replace(QUOTED, said={"zh-Hant": "已證實在 3rd St 附近有移民執法活動。請避開該區。" * 8})
    state = ContactState(language="zh-Hant", at=MAIN, is_new=False)
    answer = say(shipped_content, "VERIFY K7P2Q", state, verification=facts).replies[0]
    assert encoding.sms_cost(answer, "zh-Hant").segments <= 5 and answer.endswith(" ...」")


# --- SOURCES / FUENTES: where the last rights or resources text comes from ---
LEGINFO = "leginfo.legislature.ca.gov/faces/"


@pytest.mark.parametrize(
    ("texts", "language", "topic", "expected"),
    [
        (["DERECHOS", "1", "FUENTES"], "es", "rights.home",
         ["aclu.org/know-your-rights/immigrants-rights", "ilrc.org/red-cards"]),
        (["RIGHTS", "4", "SOURCES"], "en", "rights.school", [LEGINFO + "billNavClient.xhtml?bill_id=202520260AB49"]),
        (["RIGHTS", "SOURCES"], "en", "rights", ["ilrc.org/red-cards", "aclu.org/know-your-rights/immigrants-rights"]),
        (["권리", "8", "출처"], "ko", "rights.caregiver",
         [LEGINFO + "codes_displaySection.xhtml?lawCode=FAM&sectionNum=6550"]),
    ],
)
def test_sources_lists_the_public_addresses_of_the_last_text_read(shipped_content, texts, language, topic, expected):
    last, _ = run(shipped_content, texts)
    lines = last.replies[0].split("\n")
    assert last.command == "sources"
    assert lines[0] == shipped_content.text(language, "sources.intro", topic=shipped_content.label(language, topic),
                                            checked="2026-12-04")
    assert all(address in lines[1:] for address in expected)


def test_sources_before_any_rights_text_says_how_to_use_it(shipped_content):
    assert say(shipped_content, "FUENTES", SPANISH).replies == (shipped_content.text("es", "sources.none"),)


def test_sources_on_sms_lists_four_addresses_and_on_whatsapp_all(shipped_content):
    sms, _ = run(shipped_content, ["RIGHTS", "4", "SOURCES"])
    whatsapp, _ = run(shipped_content, ["RIGHTS", "4", "SOURCES"], channel=WHATSAPP)
    assert len(sms.replies[0].split("\n")) == 1 + 4
    assert len(whatsapp.replies[0].split("\n")) == 1 + 6
