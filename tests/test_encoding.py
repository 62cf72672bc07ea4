"""Send-time encoding: a text is written correctly and folded to GSM-7 on SMS only where that saves a segment."""

import pytest

from bot.content import encoding, segments

LONG_SPANISH = ("Información general, no asesoría legal. Pida un abogado; no firme nada. " * 2).strip()


@pytest.mark.parametrize(
    ("language", "written", "folded"),
    [
        ("es", "Información, ningún país, Última", "Informacion, ningun pais, Ultima"),
        ("es", "¿Puede irse? ¡Sí! Niño, pingüino, café", "¿Puede irse? ¡Si! Niño, pingüino, café"),
        ("en", "“Quoted” – and … done", '"Quoted" - and ... done'),
        ("tl", "Karapatán “mo”", 'Karapatan "mo"'),
        ("vi", "Quyền của bạn", "Quyền của bạn"),  # Vietnamese letters are never stripped of their marks
        ("ru", "Ваши права — «здесь»", "Ваши права - «здесь»"),
    ],
)
def test_each_language_folds_only_what_its_table_allows(language, written, folded):
    assert encoding.fold(written, language) == folded


def test_a_long_spanish_sms_is_folded_when_that_saves_a_segment():
    assert segments.count(LONG_SPANISH).segments == 3  # UCS-2 as written
    sent = encoding.for_sms(LONG_SPANISH, "es")
    assert sent == LONG_SPANISH.replace("ó", "o").replace("í", "i")
    assert (segments.count(sent).encoding, segments.count(sent).segments) == ("GSM-7", 1)


def test_a_short_spanish_sms_keeps_its_accents_when_folding_saves_nothing():
    text = "Sí, está inscrito."
    assert encoding.for_sms(text, "es") == text


def test_whatsapp_is_never_folded():
    assert encoding.for_channel(LONG_SPANISH, "whatsapp", "es") == LONG_SPANISH
    assert encoding.for_channel(LONG_SPANISH, "sms", "es") != LONG_SPANISH


def test_a_text_that_folding_cannot_bring_to_gsm7_is_sent_as_written():
    text = "Llame al 911 😀 " + "información " * 20
    assert encoding.for_sms(text, "es") == text


def test_korean_is_sent_as_written_on_sms():
    text = "권리 안내 — " * 20
    assert encoding.for_sms(text, "ko") == text


def test_the_cost_counts_what_is_sent():
    assert encoding.sms_cost(LONG_SPANISH, "es").segments == 1
