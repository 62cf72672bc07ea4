"""Content budgets: what each text and composed message costs by SMS, as sent and as written, against its budget."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.content import encoding, segments
from bot.content.model import LANGUAGES_DIR, Content
from bot.conversation.engine import (
    interpreters_text,
    language_lines,
    main_menu_text,
    submenu_text,
    welcome_text,
    workshops_text,
)

DEFAULT_BUDGET = 3


class Findings(Protocol):
    """Where problems and rows go (content_check.Report)."""

    rows: list

    def error(self, where: str, message: str) -> None: ...  # noqa: D102


@dataclass(frozen=True)
class SegmentRow:
    """The SMS cost of one text in one language."""

    key: str
    language: str
    count: segments.SegmentCount  # as sent by SMS (folded to GSM-7 where that saves a segment)
    budget: int
    written: segments.SegmentCount | None = None  # as written, when folding changed the cost


def budget_of(content: Content, key: str, encoding: str) -> int:
    """A text's segment budget: [budgets] for GSM-7, [budgets.ucs2] (when given) for UCS-2."""
    budgets = content.tree["manifest"].get("budgets", {})
    if encoding == segments.UCS2 and "ucs2" in budgets:
        budgets = budgets["ucs2"]
    for pattern, value in budgets.get("keys", {}).items():
        if fnmatch.fnmatchcase(key, pattern):
            return int(value)
    return int(budgets.get("default", DEFAULT_BUDGET))


ALERT_KINDS = ("update", "verified", "all_clear", "correction")


def _alert_samples(content: Content, code: str) -> dict[str, str]:
    """Every alert template framed as a family receives it, with the manifest's sample values."""
    samples = {k: str(v) for k, v in content.tree["manifest"].get("samples", {}).items()}
    texts = content.language(code).get("texts", {})
    framed = {}
    for key in sorted(k for k in texts if k.startswith("template.")):
        body = content.text(code, key, **samples)
        for kind in ALERT_KINDS:
            status = content.text(code, f"status.{kind}", **samples)
            framed[f"(alert) {key} {kind}"] = content.text(code, "alert.frame", **{**samples, "status": status,
                                                                                   "body": body})
    return framed


def _rendered(content: Content, code: str) -> dict[str, str]:
    """The composite messages the engine builds, as a family receives them."""
    every_workshop = datetime.min.replace(tzinfo=content.workshops[0].starts.tzinfo) if content.workshops else None
    composed = {
        "(menu) main": main_menu_text(content, code),
        "(menu) language": "\n".join([content.text(code, "language.prompt"), language_lines(content)]),
        "(menu) language.set": "\n".join([content.text(code, "language.set"), main_menu_text(content, code)]),
        "(first contact) welcome": welcome_text(content),
    }
    for menu_id in content.menus:
        composed[f"(menu) {menu_id}"] = submenu_text(content, code, menu_id)
    if every_workshop is not None:
        composed["(list) workshops"] = workshops_text(content, code, every_workshop)
    if content.interpreters:
        composed["(language menu) interpreters"] = interpreters_text(content)
    if "alert.frame" in content.language(code).get("texts", {}):
        composed.update(_alert_samples(content, code))
    return composed


def check(report: Findings, content: Content) -> None:
    """Record every text's SMS cost per language; a text over its budget is an error."""
    for code in content.languages:
        texts = dict(content.language(code).get("texts", {}))
        texts.update(_rendered(content, code))
        for key in sorted(texts):
            written = segments.count(texts[key])
            count = encoding.sms_cost(texts[key], code)  # the budget is what a family's SMS costs
            budget = budget_of(content, key, count.encoding)
            report.rows.append(SegmentRow(key, code, count, budget, written if written != count else None))
            if count.segments > budget:
                extra = segments.non_gsm7_characters(encoding.for_sms(texts[key], code))
                hint = f"; UCS-2 because of {''.join(extra[:8])!r}" if extra else ""
                report.error(
                    f"{LANGUAGES_DIR}/{code}.toml [texts] {key}",
                    f"{count} is over its budget of {budget} segment(s){hint}",
                )
