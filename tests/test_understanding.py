"""Families write sentences: the engine's answers to free text, as tables of (state, text) -> answer."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.content.language_id import LanguageIndex
from bot.conversation.engine import main_menu_text, respond, submenu_text, welcome_text
from bot.conversation.offline import respond_offline
from bot.conversation.turn import Forget, Inbound, OptOut, Policy
from bot.people.identity import SMS, WHATSAPP
from bot.people.state import ContactState

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
NEW = ContactState()
HOTLINE = "888-624-4752"


def known(language: str) -> ContactState:
    """A contact who chose a language before."""
    return ContactState(language=language, at="main", is_new=False)


def say(content, text, state=NEW, channel=SMS, **inbound):
    """Run the engine once."""
    return respond(state, Inbound(text=text, channel=channel, now=NOW, **inbound), content, Policy())


SITUATIONS = [
    # (first message, answer, language)
    ("ICE at my door what do I do", "rights.home", "en"),
    ("hay agentes de ICE en la escuela que hago", "rights.school", "es"),
    ("se llevaron a mi esposo esta mañana, que hago", "rights.detained", "es"),
    ("stopped by police while driving, what do I say", "rights.public", "en"),
    ("there is a raid at my job", "rights.work", "en"),
    ("what happens to my kids if I'm deported", "rights.plan", "en"),
    ("necesito un abogado", "resources.legal", "es"),
    ("lawyer", "resources.legal", "en"),
    ("I'm so anxious I can't sleep", "resources.wellness", "en"),
    ("emergencia", "resources.hotlines", "es"),
    ("집 앞에 이민국 요원들이 왔어요", "rights.home", "ko"),
    ("我老公被抓了", "rights.detained", "zh-Hant"),
    ("мужа забрали", "rights.detained", "ru"),
    ("hinuli ang asawa ko", "rights.detained", "tl"),
    ("chong toi bi ICE bat", "rights.detained", "vi"),
    ("شوهرم را گرفتند", "rights.detained", "fa"),
    ("اعتقلوا زوجي", "rights.detained", "ar"),
    ("ICE-ը մեր դռան մոտ է", "rights.home", "hy"),
]


@pytest.mark.parametrize(("text", "answer", "language"), SITUATIONS)
def test_a_sentence_describing_a_situation_gets_its_answer_in_its_language(shipped_content, text, answer, language):
    result = say(shipped_content, text)
    assert (result.command, result.language) == (answer, language)
    assert shipped_content.text(language, answer) in result.replies


@pytest.mark.parametrize("state", [NEW, known("en"), known("es")])
def test_a_situation_is_understood_later_in_a_conversation_too(shipped_content, state):
    result = say(shipped_content, "detuvieron a mi hijo, como lo encuentro", state=state)
    assert (result.command, result.language) == ("rights.detained", "es")


@pytest.mark.parametrize(("text", "answer"), [
    ("ICE at my door what do I do", "rights.home"),
    ("hay agentes de ICE en la escuela que hago", "rights.school"),
    ("they arrested my husband", "rights.detained"),
])
def test_urgent_situations_lead_with_what_to_do_now_and_the_hotline(shipped_content, text, answer):
    first, rest = say(shipped_content, text).replies[0], say(shipped_content, text).replies[1:]
    assert HOTLINE in first
    assert rest == (shipped_content.text(say(shipped_content, text).language, answer),)


def test_when_unsure_aviso_asks_with_numbered_choices_and_the_hotline_first(shipped_content):
    asked = say(shipped_content, "ICE agents near my house and the school")
    assert asked.command == "clarify"
    assert HOTLINE in asked.replies[0]
    assert "1 " in asked.replies[0] and "2 " in asked.replies[0]
    chosen = say(shipped_content, "2", state=asked.state)
    assert chosen.command == asked.state.choices[1]
    assert chosen.state.pending is None


def test_a_number_not_offered_asks_again_and_zero_leaves(shipped_content):
    asked = say(shipped_content, "ICE agents near my house and the school")
    assert say(shipped_content, "7", state=asked.state).command == "clarify"
    assert say(shipped_content, "0", state=asked.state).command == "menu"


def test_a_word_arabic_and_farsi_share_asks_which_language_naming_both(shipped_content):
    asked = say(shipped_content, "حقوق")
    assert asked.command == "which_language"
    assert shipped_content.language_name("ar") in asked.replies[0]
    assert shipped_content.language_name("fa") in asked.replies[0]
    arabic = asked.state.choices.index("ar:rights") + 1
    chosen = say(shipped_content, str(arabic), state=asked.state)
    assert chosen.replies == (submenu_text(shipped_content, "ar", "rights"),)
    assert chosen.language == "ar"


def test_a_saved_language_answers_a_shared_word_without_asking(shipped_content):
    assert say(shipped_content, "حقوق", state=known("ar")).replies == (submenu_text(shipped_content, "ar", "rights"),)


@pytest.mark.parametrize(("text", "state", "command", "language"), [
    ("Derechos por favor", known("es"), "rights", "es"),
    ("derechos porfa", NEW, "rights", "es"),
    ("RIGHTS please", NEW, "rights", "en"),
    ("ALERTS Garfield High School please", NEW, "alerts_confirm", "en"),
    ("MIGRA", NEW, "rights", "es"),
])
def test_keywords_with_extra_words_and_words_like_them_work(shipped_content, text, state, command, language):
    result = say(shipped_content, text, state=state)
    assert (result.command, result.language) == (command, language)


@pytest.mark.parametrize(("text", "language"), [("AYUDA", "es"), ("HELP", "en"), ("TULONG", "tl"), ("ПОМОЩЬ", "ru")])
def test_help_in_each_language_adds_the_hotline_and_a_person_to_the_carrier_text(shipped_content, text, language):
    result = say(shipped_content, text)
    assert result.replies == (shipped_content.text(language, "help"), shipped_content.text(language, "help.more"))
    assert HOTLINE in result.replies[1] and "213-443-1300" in result.replies[1]


@pytest.mark.parametrize(("state", "expected"), [(known("es"), "es"), (known("ko"), "ko")])
def test_a_picture_or_voice_note_without_text_says_aviso_cannot_open_it(shipped_content, state, expected):
    result = say(shipped_content, "", state=state, has_media=True)
    assert result.replies == (shipped_content.text(expected, "media"),)


def test_a_picture_from_a_new_contact_is_answered_in_the_welcome_languages(shipped_content):
    (reply,) = say(shipped_content, "", has_media=True).replies
    assert shipped_content.text("en", "media") in reply and shipped_content.text("es", "media") in reply


@pytest.mark.parametrize(("text", "state", "language"), [
    ("gracias", known("es"), "es"), ("ok", known("en"), "en"), ("sí", known("es"), "es"), ("👍", known("es"), "es"),
    ("🙏", known("ko"), "ko"), ("muchas gracias", known("en"), "es"), ("спасибо", known("en"), "ru"),
])
def test_thanks_ok_yes_and_emoji_get_a_short_friendly_answer(shipped_content, text, state, language):
    result = say(shipped_content, text, state=state)
    assert result.replies == (shipped_content.text(language, "thanks"),)


@pytest.mark.parametrize("text", ["hola buenos dias", "gracias", "👍", "what is this", "안녕하세요"])
def test_a_first_greeting_or_thanks_gets_the_welcome_with_the_language_menu(shipped_content, text):
    assert say(shipped_content, text).replies == (welcome_text(shipped_content),)


@pytest.mark.parametrize(("text", "language"), [
    ("PARAR", "es"), ("BAJA", "es"), ("no quiero más mensajes", "es"), ("메시지 그만 보내세요", "ko"),
    ("больше не присылайте сообщения", "ru"), ("ayoko na ng mensahe", "tl"), ("停止", "zh-Hant"),
])
@pytest.mark.parametrize("channel", [SMS, WHATSAPP])
def test_each_languages_ways_of_saying_stop_opt_out_and_aviso_confirms(shipped_content, text, language, channel):
    result = say(shipped_content, text, channel=channel)
    assert result.effects == (OptOut(),) and result.state.opted_out
    assert result.replies == (shipped_content.text(language, "stop.done"),)


def test_forget_after_stop_deletes_at_once_silently_on_sms_and_confirmed_on_whatsapp(shipped_content):
    stopped = ContactState(language="es", opted_out=True, is_new=False)
    sms = say(shipped_content, "BORRAR", state=stopped)
    assert sms.effects == (Forget(),) and sms.replies == ()
    whatsapp = say(shipped_content, "BORRAR", state=stopped, channel=WHATSAPP)
    assert whatsapp.effects == (Forget(),)
    assert whatsapp.replies == (shipped_content.text("es", "forget.done"),)


@pytest.mark.parametrize(("text", "language"), [("ALERTS Lincoln High", "en"), ("ALERTAS Escuela Lincoln", "es")])
def test_a_school_aviso_does_not_cover_gets_no_alerts_yet_and_what_to_do(shipped_content, text, language):
    result = say(shipped_content, text)
    assert result.replies == (shipped_content.text(language, "alerts.unknown_school"),)
    assert result.state.pending is None


@pytest.mark.parametrize(("text", "answer"), [("ICE is knocking at my door right now", "rights.home"),
                                              ("ICE agents at the school", "rights.school")])
def test_agents_at_the_door_or_school_beat_an_open_question(shipped_content, text, answer):
    asking = say(shipped_content, "ALERTS")
    assert asking.state.pending
    result = say(shipped_content, text, state=asking.state)
    assert result.command == answer and result.state.pending is None


def test_a_greeting_from_a_known_contact_gets_the_menu_in_its_language(shipped_content):
    result = say(shipped_content, "hola buenos dias", state=known("en"))
    assert result.replies == (main_menu_text(shipped_content, "es"),)


def test_gibberish_from_a_new_contact_still_gets_the_welcome(shipped_content):
    assert say(shipped_content, "xqzt vvk").command == "welcome"


@pytest.mark.parametrize(("text", "language"), [
    ("hola necesito ayuda con mi caso", "es"), ("ICE at my door", "en"), ("toi can luat su", "vi"),
    ("kailangan ko ng abogado", "tl"), ("нужен адвокат", "ru"), ("변호사 필요해요", "ko"), ("我需要律師", "zh-Hant"),
    ("փաստաբան է պետք", "hy"), ("وکیل می‌خواهم", "fa"), ("أحتاج محاميا", "ar"), ("pizarra rapida", "es"),
])
def test_language_is_identified_from_script_and_words(shipped_content, text, language):
    assert shipped_content.understanding.language_index.guess(text).best == language


def test_a_saved_language_is_kept_unless_the_text_is_clearly_another(shipped_content):
    assert say(shipped_content, "ok", state=known("vi")).language == "vi"
    assert say(shipped_content, "necesito un abogado", state=known("en")).language == "es"


def test_language_index_learns_romanised_words_from_examples():
    index = LanguageIndex({"en": ["help me"], "fa": ["کمک"]}, ("en", "fa"))
    index.add_romanised("fa", ["komak lazem daram"])
    assert index.guess("komak").best == "fa"


@pytest.mark.parametrize(("text", "command"), [
    ("ICE at my door what do I do", "rights.home"), ("necesito un abogado", "resources.legal"),
    ("👍", "welcome"), ("ALERTS Lincoln High", "alerts_unknown_school"), ("PARAR", "unavailable"),
])
def test_sentences_are_understood_from_memory_when_redis_is_down(shipped_content, text, command):
    assert respond_offline(Inbound(text=text, channel=SMS, now=NOW), shipped_content).command == command


def test_naming_a_school_aviso_does_not_cover_after_alerts_does_not_loop(shipped_content):
    asked = say(shipped_content, "ALERTS")
    result = say(shipped_content, "Lincoln High School", state=asked.state)
    assert result.replies == (shipped_content.text("en", "alerts.unknown_school"),)
    assert result.state.pending is None
    assert say(shipped_content, "Hogwarts", state=asked.state).state.pending == "school"  # a typo? ask again
