"""Language identification: which of the content's languages a family's text is written in.

Script first (Hangul, Han, Armenian, Cyrillic each belong to one language), then words: every word the
content's texts, keywords and example phrases use, per language. Measured against lingua-language-detector
(docs/understanding.md): lingua adds 114-262 MB per web process for these ten languages and calls
unaccented Vietnamese English and romanised Farsi Tagalog; this index is built from the content in
milliseconds, weighs well under a megabyte, and knows the words families actually write to Aviso.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.content.matching import fold_case, strip_accents

# Scripts that name their language outright, by the first code point name word of their letters.
_SCRIPT_LANGUAGE = {"HANGUL": "ko", "CJK": "zh-Hant", "ARMENIAN": "hy", "CYRILLIC": "ru"}
_ARABIC_SCRIPT = ("fa", "ar")
# Letters only one of two languages of a script writes: Persian's four letters and its own kaf and yeh,
# Arabic's teh marbuta, alef maksura, yeh and kaf; Vietnamese vowels and d-stroke; Spanish's ñ ¿ ¡.
_MARKERS = {
    "fa": "پچژگکی",
    "ar": "ةىيكأإؤ",
    "vi": "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ",
    "es": "ñ¿¡",
}
_MARKER_LANGUAGE = {mark: code for code, marks in _MARKERS.items() for mark in marks}
assert len(_MARKER_LANGUAGE) == sum(map(len, _MARKERS.values())), "a marker letter names one language"
MARKER_WEIGHT = 2.0
CLEAR_RATIO = 2.0  # the best language scores at least this many times the next one to count as clear
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Guess:
    """The languages a text may be in, best first, and whether the best one is clear."""

    languages: tuple[str, ...]
    clear: bool

    @property
    def best(self) -> str | None:
        """The most likely language, or None when nothing in the text points to one."""
        return self.languages[0] if self.languages else None


NO_GUESS = Guess((), False)


def script_of(ch: str) -> str:
    """The script of a letter as the first word of its Unicode name (LATIN, ARABIC, HANGUL, CJK...)."""
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


class LanguageIndex:
    """Which language a text is in, from its script and the words each language's content uses."""

    def __init__(self, words: Mapping[str, Iterable[str]], languages: Iterable[str]):
        """Build from each language's texts and phrases (any number of strings per language)."""
        self.languages = tuple(languages)
        self._owners: dict[str, set[str]] = {}
        for code, texts in words.items():
            for text in texts:
                for word in _words(text):
                    if _latin_only(word) and code in _ARABIC_SCRIPT + tuple(_SCRIPT_LANGUAGE.values()):
                        continue  # English names inside a Korean text are not Korean words
                    self._owners.setdefault(word, set()).add(code)

    def add_romanised(self, code: str, phrases: Iterable[str]) -> None:
        """Latin-script words families use for a language written in another script ("komak", "hoghugh")."""
        for phrase in phrases:
            for word in _words(phrase):
                if _latin_only(word):
                    self._owners.setdefault(word, set()).add(code)

    def guess(self, text: str) -> Guess:
        """The languages text may be in, best first."""
        letters: dict[str, int] = {}
        for ch in text[:400]:
            if ch.isalpha():
                script = "LATIN" if ch < "\x80" else script_of(ch)  # an ASCII letter: no name to look up
                letters[script] = letters.get(script, 0) + 1
        if not letters:
            return NO_GUESS
        script = max(letters, key=letters.__getitem__)
        if script in _SCRIPT_LANGUAGE and _SCRIPT_LANGUAGE[script] in self.languages:
            return Guess((_SCRIPT_LANGUAGE[script],), True)
        scores: dict[str, float] = {}
        for ch in text:
            code = _MARKER_LANGUAGE.get(ch)
            if code is not None and code in self.languages:
                scores[code] = scores.get(code, 0.0) + MARKER_WEIGHT
        for word in _words(text[:400]):
            owners = self._owners.get(word)
            if owners:
                for code in owners:
                    scores[code] = scores.get(code, 0.0) + 1.0 / len(owners)
        if script == "ARABIC":
            scores = {code: scores.get(code, 0.0) for code in _ARABIC_SCRIPT if code in self.languages}
        ranked = sorted((code for code in scores if scores[code] > 0), key=lambda c: -scores[c])
        if script == "ARABIC" and not ranked:
            ranked = [code for code in _ARABIC_SCRIPT if code in self.languages]
        if not ranked:
            return NO_GUESS
        best = scores.get(ranked[0], 0.0)
        runner_up = scores.get(ranked[1], 0.0) if len(ranked) > 1 else 0.0
        clear = best >= 1.0 and best >= CLEAR_RATIO * runner_up
        return Guess(tuple(ranked), clear)


def _latin_only(word: str) -> bool:
    return all(script_of(ch) == "LATIN" for ch in word if ch.isalpha())


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(strip_accents(fold_case(text))) if not w.isdigit()]
