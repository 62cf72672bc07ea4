"""Segment budgets: what each text may cost, and the composite messages the engine builds, as families get them."""

from __future__ import annotations

import fnmatch
from datetime import datetime

from bot.content import segments
from bot.content.model import Content
from bot.conversation.engine import (
    interpreters_text,
    language_lines,
    main_menu_text,
    submenu_text,
    welcome_text,
    workshops_text,
)

DEFAULT_BUDGET = 3


def budget(content: Content, key: str, encoding: str) -> int:
    """A text's segment budget: [budgets] for GSM-7, [budgets.ucs2] (when given) for UCS-2."""
    budgets = content.tree["manifest"].get("budgets", {})
    if encoding == segments.UCS2 and "ucs2" in budgets:
        budgets = budgets["ucs2"]
    for pattern, value in budgets.get("keys", {}).items():
        if fnmatch.fnmatchcase(key, pattern):
            return int(value)
    return int(budgets.get("default", DEFAULT_BUDGET))


ALERT_KINDS = ("update", "verified", "all_clear", "correction")


def alert_samples(content: Content, code: str) -> dict[str, str]:
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


def rendered(content: Content, code: str) -> dict[str, str]:
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
        composed.update(alert_samples(content, code))
    return composed
