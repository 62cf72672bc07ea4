"""Intents: which answer a family's sentence asks for, learnt from the content authors' example phrases.

A small TF-IDF index over character n-grams (three letters inside words, so typos and missing accents
still share most of their features; one and two characters for Chinese and Korean, written without
spaces or as syllables) and whole words. An example scores by how much of it the message contains and
by cosine similarity; an answer scores as its best example. Built once per content version.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.content.matching import fold_case, strip_accents

SUPPORT_SHARE = 0.3  # how much a second matching example of the same answer adds
CONTAINMENT_SHARE = 0.6  # the rest is cosine: a long message that holds a short example still scores high
_WORD = re.compile(r"\w+", re.UNICODE)
_SYLLABIC = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_EMOJI_WORD = "emoji"  # emoji are features too: 👍 and 🙏 say thanks in every language


def features(text: str) -> dict[str, float]:
    """The n-gram and word features of a text, with their counts."""
    found: dict[str, float] = {}
    plain = strip_accents(fold_case(text[:600]))
    for word in _WORD.findall(plain):
        if _SYLLABIC.search(word):
            grams = [*word, *(word[i:i + 2] for i in range(len(word) - 1))]
        else:
            padded = f" {word} "
            grams = [padded[i:i + 3] for i in range(len(padded) - 2)] if len(word) > 1 else []
            grams.append("w:" + word)
        for gram in grams:
            found[gram] = found.get(gram, 0.0) + 1.0
    for ch in text[:600]:
        if is_symbol(ch):
            found["s:" + ch] = found.get("s:" + ch, 0.0) + 1.0
    return found


def is_symbol(ch: str) -> bool:
    """Whether ch is an emoji or pictograph (they say thanks or yes in every language)."""
    return ord(ch) >= 0x2600 and not ch.isalnum() and not ch.isspace() and ch not in "\ufe0f\u200d"


@dataclass(frozen=True)
class Scored:
    """An answer and how well a text matches it (0 to 1)."""

    answer: str
    score: float


class IntentIndex:
    """Answers scored against a text, from (phrase, answer) examples."""

    def __init__(self, examples: Iterable[tuple[str, str, str]], whole: frozenset[str] = frozenset()):
        """Build from (example phrase, answer, language) triples; answers in whole must match most of a message
        ("ok", "thanks" inside a sentence about an arrest are not thanks)."""
        self._whole = whole
        examples = list(examples)
        docs = [(features(phrase), answer) for phrase, answer, _ in examples]  # ids follow the examples' order
        self._languages = [language for _, _, language in examples]
        frequency: dict[str, int] = {}
        for found, _ in docs:
            for gram in found:
                frequency[gram] = frequency.get(gram, 0) + 1
        total = len(docs) + 1
        self._idf = {gram: math.log(total / n) + 1.0 for gram, n in frequency.items()}
        self.answers: list[str] = []
        self._norms: list[float] = []
        # Per language, then per feature: (example id, weight, weight squared). A message clearly in one
        # language walks that language's lists (and English's) only: a fifth of the work.
        self._postings: dict[str, dict[str, list[tuple[int, float, float]]]] = {}
        for (found, answer), language in zip(docs, self._languages, strict=True):
            weights = {g: (1.0 + math.log(c)) * self._idf[g] for g, c in found.items()}
            doc_id = len(self.answers)
            self.answers.append(answer)
            self._norms.append(math.sqrt(sum(w * w for w in weights.values())))
            postings = self._postings.setdefault(language, {})
            for gram, weight in weights.items():
                postings.setdefault(gram, []).append((doc_id, weight, weight * weight))

    def __len__(self) -> int:
        return len(self.answers)

    def rank(self, text: str, exclude: int | None = None, languages: frozenset[str] | None = None) -> list[Scored]:
        """Every answer the text shares features with, best first (exclude: an example to leave out;
        languages: only examples written in these)."""
        query = {g: (1.0 + math.log(c)) * self._idf[g] for g, c in features(text).items() if g in self._idf}
        if not query:
            return []
        query_norm = math.sqrt(sum(w * w for w in query.values()))
        sums: dict[int, list[float]] = {}  # per example: its dot product with the text, its shared weight
        get = sums.get
        for language, postings in self._postings.items():
            if languages is not None and language not in languages:
                continue
            for gram, q in query.items():
                for doc_id, weight, squared in postings.get(gram, ()):
                    found = get(doc_id)
                    if found is None:
                        sums[doc_id] = [q * weight, squared]
                    else:
                        found[0] += q * weight
                        found[1] += squared
        sums.pop(exclude, None)
        best: dict[str, tuple[float, float]] = {}
        norms, answers = self._norms, self.answers
        for doc_id, (dot, shared) in sums.items():
            norm, answer = norms[doc_id], answers[doc_id]
            cosine = dot / (norm * query_norm)
            if answer in self._whole:
                score = cosine
            else:  # how much of the example the message holds, and how alike the two are
                score = CONTAINMENT_SHARE * shared / (norm * norm) + (1 - CONTAINMENT_SHARE) * cosine
            first, second = best.get(answer, (0.0, 0.0))
            if score > first:
                best[answer] = (score, first)
            elif score > second:
                best[answer] = (first, score)
        # An answer that several examples point to is surer than one a single shared word points to.
        scored = {a: first + SUPPORT_SHARE * second * (1 - first) for a, (first, second) in best.items()}
        return [Scored(a, s) for a, s in sorted(scored.items(), key=lambda item: -item[1])]
