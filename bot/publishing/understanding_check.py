"""The understanding part of `aviso content check`: every answer has example phrases in every language,
names an answer Aviso can give, and how well the shipped examples are understood."""

from __future__ import annotations

from bot.content.model import UNDERSTANDING_DIR, Content
from bot.content.understanding import SPECIAL
from bot.conversation.engine import COMMAND_NAMES
from bot.conversation.understanding_eval import examples_tally


def _file(code: str) -> str:
    return f"{UNDERSTANDING_DIR}/{code}.toml"


def check(report, content: Content) -> None:
    """Record errors in report (a content_check.Report) and add the understanding summary to its notes."""
    texts = set(content.language(content.default_language).get("texts", {}))
    known = COMMAND_NAMES | set(SPECIAL) | texts
    found = {code: content.tree.get("understanding", {}).get(code, {}) for code in content.languages}
    answers = set().union(*(data.get("examples", {}).keys() for data in found.values()))
    for code, data in found.items():
        if not data:
            report.error(_file(code), "file is missing: families writing this language would not be understood")
            continue
        examples = data.get("examples", {})
        for answer in sorted(answers):
            phrases = examples.get(answer)
            if not phrases or not all(isinstance(p, str) and p.strip() for p in phrases):
                report.error(f"{_file(code)} [examples] {answer}", "no example phrases in this language")
        for answer in sorted(set(examples) - known):
            report.error(f"{_file(code)} [examples] {answer}", "not an answer Aviso can give (a command or a text)")
        if "forget" in examples:
            report.error(f"{_file(code)} [examples] forget", "FORGET is never guessed from a sentence: keyword only")
    if report.errors:
        return
    tally = examples_tally(content)
    report.notes.append("understanding: each example phrase read with itself left out (answered right / examples)")
    report.notes.extend(tally.lines()[:-1])
