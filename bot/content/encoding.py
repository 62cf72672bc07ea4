"""Send-time encoding: content is written correctly; an SMS is folded to GSM-7 only where that saves a segment."""

from __future__ import annotations

from bot.content import segments
from bot.people.identity import WHATSAPP

# Typography any language may carry that GSM-7 lacks: curly quotes, long dashes, the ellipsis, a hard space.
COMMON = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...", "\u00a0": " ", "\u202f": " ",
}
# Spanish-alphabet accents outside GSM-7 (é ñ ü ¿ ¡ are in it). A Spanish reader still reads "informacion";
# the same fold in Vietnamese would change words, so a language only gets a table its readers can bear.
LATIN_ACCENTS = {
    "á": "a", "í": "i", "ó": "o", "ú": "u", "Á": "A", "Í": "I", "Ó": "O", "Ú": "U",
    "â": "a", "ê": "e", "î": "i", "ô": "o", "û": "u", "ã": "a", "õ": "o", "ç": "c", "Ê": "E",
}
# Per language: what may be replaced. Korean, Chinese, Armenian, Farsi, Russian, Arabic and Vietnamese
# cannot reach GSM-7 by folding (their letters have no GSM-7 form), so they get only the common table,
# which never saves a segment for them and leaves their text as written.
TABLES: dict[str, dict[str, str]] = {
    "en": {**COMMON, **LATIN_ACCENTS},
    "es": {**COMMON, **LATIN_ACCENTS},
    "tl": {**COMMON, **LATIN_ACCENTS},
}


def fold(text: str, language: str | None) -> str:
    """text with the language's replacements applied (whether or not that reaches GSM-7)."""
    # No language yet: the first-contact welcome, written in English and Spanish.
    table = TABLES.get(language or "es", COMMON)
    return text.translate(str.maketrans(table))


def for_sms(text: str, language: str | None) -> str:
    """What an SMS carries: the folded text when it costs fewer segments, else the text as written."""
    if segments.is_gsm7(text):
        return text
    folded = fold(text, language)
    if segments.is_gsm7(folded) and segments.count(folded).segments < segments.count(text).segments:
        return folded
    return text


def for_channel(text: str, channel: str, language: str | None) -> str:
    """What a message on this channel carries: WhatsApp never folds (it has no segments)."""
    return text if channel == WHATSAPP else for_sms(text, language)


def sms_cost(text: str, language: str | None) -> segments.SegmentCount:
    """The segments an SMS of this text costs as sent (after folding where that saves a segment)."""
    return segments.count(for_sms(text, language))
