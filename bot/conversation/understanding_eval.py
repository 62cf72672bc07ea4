"""How well Aviso understands: accuracy of the engine on labelled messages, per language, and urgent misses.

Used by `aviso content check` (each example phrase read with itself left out), by the labelled corpus test
and by scripts/understanding_accuracy.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.content.model import Content
from bot.content.understanding import URGENT
from bot.conversation.engine import COMMAND_NAMES, respond
from bot.conversation.free_text import CLARIFY, WELCOMED, answerable
from bot.conversation.turn import Inbound, Policy, Turn
from bot.people.identity import SMS
from bot.people.state import ContactState

ANY_LANGUAGE = "any"  # rows in no particular language: sent by a contact whose language is saved
_NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # any time: understanding does not depend on it
_POLICY = Policy()


@dataclass(frozen=True)
class Row:
    """A labelled message: its language section, text and the command it should get."""

    language: str
    text: str
    expected: str


@dataclass
class Tally:
    """Right answers per language, and the urgent messages answered with a non-urgent text."""

    right: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    misses: list[tuple[Row, str, str]] = field(default_factory=list)  # row, command got, language got
    urgent_misses: list[tuple[Row, str]] = field(default_factory=list)

    def add(self, row: Row, got: str, language: str | None, right: bool) -> None:
        """Count one row."""
        self.total[row.language] = self.total.get(row.language, 0) + 1
        if right:
            self.right[row.language] = self.right.get(row.language, 0) + 1
        else:
            self.misses.append((row, got, language or "-"))

    def accuracy(self, language: str | None = None) -> float:
        """Share of rows answered right (in one language, or overall)."""
        codes = [language] if language else list(self.total)
        total = sum(self.total.get(c, 0) for c in codes)
        return sum(self.right.get(c, 0) for c in codes) / total if total else 1.0

    def lines(self) -> list[str]:
        """A printable table: accuracy per language, overall, urgent misses."""
        out = [f"{code:8} {self.right.get(code, 0):4}/{self.total[code]:<4} {self.accuracy(code):6.1%}"
               for code in self.total]
        out.append(f"{'overall':8} {sum(self.right.values()):4}/{sum(self.total.values()):<4} {self.accuracy():6.1%}")
        out.append(f"urgent situations answered with a non-urgent text: {len(self.urgent_misses)}")
        return out


def evaluate(content: Content, rows: Iterable[Row], policy: Policy = _POLICY) -> Tally:
    """Run each row through the engine as a first message (or, for ANY_LANGUAGE rows, from a contact with a
    saved language) and count answers with the expected command in the row's language."""
    tally = Tally()
    for row in rows:
        # A first "hi" or "thanks" gets the welcome (as it should): those are read from a known contact.
        saved = content.default_language if row.language == ANY_LANGUAGE or row.expected in WELCOMED else None
        state = ContactState(language=saved, at="main" if saved else None, is_new=saved is None)
        result = respond(state, Inbound(text=row.text, channel=SMS, now=_NOW), content, policy)
        language_ok = row.language in (ANY_LANGUAGE, result.language)
        tally.add(row, result.command, result.language, result.command == row.expected and language_ok)
        if row.expected in URGENT and not _urgent_answer(result.command, result.state.choices):
            tally.urgent_misses.append((row, result.command))
    return tally


def held_out(content: Content, rows: Iterable[Row]) -> list[Row]:
    """The rows whose text is none of the content's example phrases (accuracy on these is honest)."""
    from bot.content.matching import normalize

    examples = {normalize(phrase) for phrase, _, _ in content.understanding.pairs}
    return [row for row in rows if normalize(row.text) not in examples]


def _urgent_answer(command: str, choices: tuple[str, ...]) -> bool:
    """An urgent answer, or a question that offers one (it leads with what to do now and the hotline)."""
    return command in URGENT or (command == CLARIFY and any(c in URGENT for c in choices))


def examples_tally(content: Content) -> Tally:
    """Each shipped example phrase read with itself left out of the index: would it still be understood?"""
    understanding = content.understanding
    allowed = answerable(Turn(ContactState(), Inbound("", SMS, _NOW), content, _POLICY), COMMAND_NAMES)
    tally = Tally()
    for doc_id, (phrase, answer, code) in enumerate(understanding.pairs):
        reading = understanding.read(phrase, allowed, exclude=doc_id)
        tally.add(Row(code, phrase, answer), reading.answer or "-", code, reading.answer == answer)
    return tally
