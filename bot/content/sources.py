"""Content sources: where each rights and resources text comes from, with an address and a check date."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from bot.content.model import Content

SOURCES_FILE = "sources.toml"
RESOURCES_FILE = "resources.toml"
SOURCED_EXTRA = ("rights.intro",)  # the first rights message carries facts too


class Findings(Protocol):
    """Where problems go (content_check.Report)."""

    def error(self, where: str, message: str) -> None: ...  # noqa: D102

    def warn(self, where: str, message: str) -> None: ...  # noqa: D102


def as_date(value) -> date | None:
    """A TOML date, or a YYYY-MM-DD string, as a date (None when it is neither)."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def sourced_keys(content: Content) -> list[str]:
    """The texts that must name their sources: every item of a submenu (rights, resources) and the intro."""
    return sorted({item for menu in content.menus.values() for item in menu.get("items", [])} | set(SOURCED_EXTRA))


def sources_of(content: Content, key: str) -> list[dict]:
    """The sources of one text ({name, url, checked_on}), in the order listed; unknown ids are left out."""
    catalog = content.tree.get("source_list", {})
    ids = content.tree.get("sources", {}).get(key, {}).get("sources", [])
    return [catalog[i] for i in ids if isinstance(i, str) and i in catalog]


def check(report: Findings, content: Content, today: date, window_days: int) -> None:
    """Every sourced text lists sources; each has an https address and a date; old checks are flagged."""
    catalog = content.tree.get("source_list", {})
    stale: dict[str, date] = {}
    for source_id, source in sorted(catalog.items()):
        where = f"{SOURCES_FILE} [sources.{source_id}]"
        if not source.get("name"):
            report.error(where, "name is missing")
        if not str(source.get("url", "")).startswith("https://"):
            report.error(where, "url must be a public https:// address a family or reviewer can open")
        checked = as_date(source.get("checked_on"))
        if checked is None:
            report.error(where, "checked_on must be a date (YYYY-MM-DD)")
        elif (today - checked).days > window_days:
            stale[source_id] = checked
            report.warn(where, f"stale: last checked {checked}, over {window_days} days ago: re-check it")
    texts = content.tree.get("sources", {})
    for key in sourced_keys(content):
        ids = texts.get(key, {}).get("sources", [])
        where = f'{SOURCES_FILE} [texts."{key}"]'
        if not ids:
            report.error(where, "no sources recorded")
        for source_id in ids:
            if source_id not in catalog:
                report.error(where, f"{source_id!r} is not a source listed under [sources]")
            elif source_id in stale:
                report.warn(where, f"uses {source_id}, last checked {stale[source_id]}: re-check before relying on it")
    _check_resources(report, content, today, window_days)


def _check_resources(report: Findings, content: Content, today: date, window_days: int) -> None:
    """A resource a text may quote, last checked longer ago than the review window, is flagged."""
    for index, resource in enumerate(content.tree.get("resources", [])):
        checked = as_date(resource.get("checked_on"))
        if resource.get("verified") is True and checked is not None and (today - checked).days > window_days:
            report.warn(f"{RESOURCES_FILE} [[resources]] #{index + 1} {resource.get('id', '?')}",
                        f"stale: last checked {checked}, over {window_days} days ago: re-check it before launch")
