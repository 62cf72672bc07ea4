"""Understanding: what a family's free text asks for and in which language, built from the content.

Computed once per content version from the language files and the content authors' example phrases
(content/understanding/<code>.toml), then handed to the pure engine with the content: no I/O when a
message is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.content.intents import IntentIndex, Scored
from bot.content.language_id import Guess, LanguageIndex
from bot.content.matching import fold_case, strip_accents

# Situations where someone may be in danger now: the answer leads with what to do now and the hotline.
URGENT = {"rights.home": "now.home", "rights.school": "now.school", "rights.detained": "now.detained"}
# Answers that are not a text or a command of their own.
STOP, THANKS, GREETING = "stop", "thanks", "greeting"
SPECIAL = (STOP, THANKS, GREETING)
ANSWER_AT = 0.5  # an answer this sure, and clear of the next one by MARGIN, is given without asking
MARGIN = 0.08
ASK_AT = 0.3  # below this nothing is understood; between, Aviso asks which answer was meant
STOP_AT = 0.6  # opting out of everything takes a surer reading than any other answer
URGENT_WINDOW = 0.15  # an urgent answer this close to the best one is offered, never passed over
MAX_CHOICES = 3


@dataclass(frozen=True)
class Reading:
    """What a text was understood to ask: one answer, or answers to ask between; and its languages."""

    answer: str | None
    choices: tuple[str, ...]
    guess: Guess


class Understanding:
    """The language and intent indexes of one content version."""

    def __init__(self, languages: tuple[str, ...], words: Mapping[str, list[str]],
                 examples: Mapping[str, Mapping[str, list[str]]], fillers: Mapping[str, list[str]],
                 default_language: str = "en"):
        """Build from each language's texts (words), its example phrases per answer, and its filler words."""
        self.examples = examples
        self.language_index = LanguageIndex(
            {code: [*words.get(code, ()), *_phrases(examples.get(code, {}))] for code in languages}, languages)
        for code in languages:
            self.language_index.add_romanised(code, _phrases(examples.get(code, {})))
        self.pairs = [(phrase, answer, code) for code in languages
                      for answer, phrases in examples.get(code, {}).items() for phrase in phrases]
        self.default_language = default_language
        self.intent_index = IntentIndex(self.pairs,
                                        whole=frozenset({THANKS, GREETING}))
        self._fillers = sorted({strip_accents(fold_case(f)) for code in languages for f in fillers.get(code, ())},
                               key=len, reverse=True)

    def read(self, text: str, answerable: frozenset[str], exclude: int | None = None) -> Reading:
        """What text asks, among the answers Aviso can give (exclude: an example to leave out, for checks)."""
        guess = self.language_index.guess(text)
        # A text clearly in one language is read against that language's examples (and English, which
        # families mix in: "ICE at my casa"), so that a word another language shares does not mislead.
        languages = frozenset({guess.best, self.default_language}) if guess.clear and guess.best else None
        ranked = [s for s in self.intent_index.rank(text, exclude, languages) if s.answer in answerable]
        return Reading(*decide(ranked), guess)

    def without_fillers(self, text: str) -> str:
        """The text without politeness words ("Derechos por favor" -> "derechos"), folded."""
        plain = f" {strip_accents(fold_case(text))} "
        for filler in self._fillers:
            plain = plain.replace(f" {filler} ", " ")
        return plain.strip()


def decide(ranked: list[Scored]) -> tuple[str | None, tuple[str, ...]]:
    """(answer, ()) when sure; (None, choices) to ask; (None, ()) when nothing was understood."""
    if ranked and ranked[0].answer == STOP and ranked[0].score < STOP_AT:
        ranked = ranked[1:]
    if not ranked or ranked[0].score < ASK_AT:
        return None, ()
    top = ranked[0]
    rest = [s for s in ranked[1:] if s.answer != STOP]
    runner_up = rest[0].score if rest else 0.0
    # Someone may be in danger: a strong urgent reading is never passed over for another answer without asking.
    urgent_close = top.answer not in URGENT and any(
        s.answer in URGENT and s.score >= max(ASK_AT, top.score - URGENT_WINDOW) for s in rest)
    if top.score >= ANSWER_AT and top.score - runner_up >= MARGIN and not urgent_close:
        return top.answer, ()
    if top.answer in URGENT and top.score >= ANSWER_AT and not any(s.answer in URGENT for s in rest[:1]):
        return top.answer, ()  # an urgent answer over a general one: its first line is what to do now
    if top.answer in SPECIAL and top.score - runner_up >= MARGIN:
        return top.answer, ()
    floor = max(ASK_AT, top.score - 1.5 * MARGIN)
    close = [s.answer for s in ranked if s.answer not in SPECIAL
             and (s.score >= floor or (s.answer in URGENT and s.score >= top.score - URGENT_WINDOW))]
    return None, tuple(close[:MAX_CHOICES])


def _phrases(examples: Mapping[str, list[str]]) -> list[str]:
    return [phrase for phrases in examples.values() for phrase in phrases]
