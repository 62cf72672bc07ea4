"""Keyword matching that forgives case, accents, punctuation, spacing and a one-letter typo."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

MATCHABLE_LENGTH = 60  # longer texts are sentences, not keywords: only their exact form is tried
TYPO_MIN_LENGTH = 5  # shorter words are too close to each other to guess at
_PUNCTUATION = re.compile(r"[^\w\s]+", re.UNICODE)
_SPACES = re.compile(r"\s+")


def ascii_digits(text: str) -> str:
    """Persian, Arabic and other decimal digits as ASCII ones (menu numbers and codes are typed back)."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if not ch.isascii() and ch.isdecimal() else ch for ch in text)


MENU_NUMBER_DIGITS = 6  # longer runs of digits are not a menu choice (and int() refuses over 4,300 digits)


def menu_number(word: str) -> int | None:
    """The number a folded word is, when it could be a menu choice (1 to 6 ASCII digits); else None."""
    if word.isascii() and word.isdigit() and len(word) <= MENU_NUMBER_DIGITS:
        return int(word)
    return None


def fold_case(text: str) -> str:
    """Lowercase, ASCII digits, punctuation dropped, whitespace collapsed; accents kept.

    NFKC, not NFC: full-width letters and digits (Chinese, Japanese and Korean keyboards type "７Ｗ３７Ｄ"
    and "ＢＥＬＭＯＮＴ") are the plain ones to a family, and must be to the matcher too."""
    text = ascii_digits(unicodedata.normalize("NFKC", text).casefold())
    text = _PUNCTUATION.sub(" ", text).replace("_", " ")
    return _SPACES.sub(" ", text).strip()


def strip_accents(text: str) -> str:
    """Remove combining marks from Latin letters (é→e, ñ→n) and leave other scripts whole."""
    if text.isascii():  # no marks to remove (most keywords and menu numbers)
        return text
    decomposed = unicodedata.normalize("NFD", text)
    kept = [ch for ch in decomposed if not _is_accent(ch)]
    return unicodedata.normalize("NFC", "".join(kept))


def _is_accent(ch: str) -> bool:
    # Only the generic combining accents go; Arabic or Hangul marks carry meaning and stay.
    return unicodedata.combining(ch) > 0 and unicodedata.name(ch, "").startswith("COMBINING")


def normalize(text: str) -> str:
    """The form keywords are compared in: folded case, no punctuation, no accents."""
    return strip_accents(fold_case(text))


def within_one_edit(a: str, b: str) -> bool:
    """True when a and b differ by at most one insertion, deletion, substitution or transposition."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    short, long_ = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


@dataclass(frozen=True)
class Match:
    """What a text matched: a command and the languages whose keyword it was."""

    command: str
    languages: frozenset[str]
    exact: bool


class KeywordIndex:
    """All keywords of all languages, looked up exactly, then without accents, then with one typo."""

    def __init__(self, entries: Iterable[tuple[str, str, str]]):
        """Build from (phrase, command, language) triples."""
        self._exact: dict[str, dict[str, set[str]]] = {}
        self._plain: dict[str, dict[str, set[str]]] = {}
        for phrase, command, language in entries:
            folded = fold_case(phrase)
            if not folded:
                continue
            self._exact.setdefault(folded, {}).setdefault(command, set()).add(language)
            self._plain.setdefault(strip_accents(folded), {}).setdefault(command, set()).add(language)
        # Symmetric-delete index: every key under itself and under each one-letter deletion of it. Two
        # words within one edit share an entry, so a typo is looked up in as many probes as it has
        # letters instead of by comparing it with every keyword of every language.
        self._near: dict[str, set[str]] = {}
        # A text longer than every key by two letters or more is within one edit of none (a family's sentence).
        self._longest = max(map(len, self._plain), default=0)
        for key in self._plain:
            if len(key) >= TYPO_MIN_LENGTH - 1:
                for variant in _deletions(key):
                    self._near.setdefault(variant, set()).add(key)

    def lookup(self, text: str) -> Match | None:
        """The single command text means, or None when it means none or is ambiguous."""
        folded = fold_case(text[: MATCHABLE_LENGTH * 4])
        if not folded:
            return None
        found = self._exact.get(folded)
        if found and len(found) == 1:
            return _single(found, exact=True)
        plain = strip_accents(folded)
        found = self._plain.get(plain)
        if found:
            return _single(found, exact=True) if len(found) == 1 else None
        if len(plain) < TYPO_MIN_LENGTH or len(plain) > min(MATCHABLE_LENGTH, self._longest + 1):
            return None
        commands: dict[str, set[str]] = {}
        candidates = set().union(*(self._near.get(variant, ()) for variant in _deletions(plain)))
        for key in candidates:
            if within_one_edit(plain, key):
                for command, languages in self._plain[key].items():
                    commands.setdefault(command, set()).update(languages)
        return _single(commands, exact=False) if len(commands) == 1 else None


def _deletions(word: str) -> set[str]:
    """The word and every word one deletion away from it."""
    return {word, *(word[:i] + word[i + 1:] for i in range(len(word)))}


def _single(found: dict[str, set[str]], exact: bool) -> Match | None:
    if len(found) != 1:
        return None
    ((command, languages),) = found.items()
    return Match(command, frozenset(languages), exact)
