"""Keyword matching: the typo index finds exactly what comparing with every keyword would find."""

from __future__ import annotations

import pytest

from bot.content.matching import MATCHABLE_LENGTH, TYPO_MIN_LENGTH, KeywordIndex, Match, _single, within_one_edit


def scan_every_keyword(index: KeywordIndex, text: str) -> Match | None:
    """The slow reference: a typo compared with every keyword (what the index must agree with)."""
    from bot.content.matching import fold_case, strip_accents

    folded = fold_case(text[: MATCHABLE_LENGTH * 4])
    plain = strip_accents(folded)
    if not folded or folded in index._exact or plain in index._plain:
        return index.lookup(text)  # exact forms do not go through the typo search
    if len(plain) < TYPO_MIN_LENGTH or len(plain) > MATCHABLE_LENGTH:
        return None
    commands: dict[str, set[str]] = {}
    for key, found in index._plain.items():
        if len(key) >= TYPO_MIN_LENGTH - 1 and within_one_edit(plain, key):
            for command, languages in found.items():
                commands.setdefault(command, set()).update(languages)
    return _single(commands, exact=False)


def one_edit_away(word: str) -> set[str]:
    """Every deletion, transposition, and substitution or insertion of a few letters, of a word."""
    letters = sorted(set(word)) + ["a", "z", "ñ", "x"]
    edits = {word[:i] + word[i + 1:] for i in range(len(word))}
    edits |= {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}
    for i in range(len(word) + 1):
        for letter in letters:
            edits.add(word[:i] + letter + word[i:])
            if i < len(word):
                edits.add(word[:i] + letter + word[i + 1:])
    return edits


def test_every_one_letter_typo_of_every_shipped_keyword_matches_as_a_full_scan_would(shipped_content):
    index = shipped_content.keywords
    keywords = [key for key in index._plain if len(key) >= TYPO_MIN_LENGTH]
    tried = 0
    for keyword in keywords:
        for typo in one_edit_away(keyword):
            assert index.lookup(typo) == scan_every_keyword(index, typo), typo
            tried += 1
    assert tried > 10_000


@pytest.mark.parametrize(("text", "command"), [
    ("derechoz", "rights"), ("rigths", "rights"), ("recursoss", "resources"), ("talleers", "workshops"),
    ("hello there", None), ("derechos humanos para todos", None)])
def test_typos_find_their_keyword_and_sentences_find_none(shipped_content, text, command):
    match = shipped_content.keywords.lookup(text)
    assert (match.command if match else None) == command
