"""The content validator behind `aviso content check`: every problem, with its file and key."""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from bot.broadcasts import variables as template_variables
from bot.content import sources as content_sources
from bot.content.matching import fold_case, strip_accents
from bot.content.model import (
    COMMANDS,
    LANGUAGE_CHOICE,
    LANGUAGES_DIR,
    LOCK,
    MANIFEST,
    Content,
    ContentError,
    read_tree,
)
from bot.conversation.engine import CARRIER_WORDS
from bot.publishing import budgets as content_budgets
from bot.publishing import reviews, understanding_check
from bot.publishing.budgets import SegmentRow
from bot.publishing.lock import bump, fingerprint, next_version, read_lock, write_lock  # noqa: F401  (the check's API)
from bot.publishing.voice_check import check_voice

DEFAULT_REVIEW_WINDOW_DAYS = 365
REVIEW_STATES = ("draft", "reviewed")
DIRECTIONS = ("ltr", "rtl")
# US-style numbers as texts write them: 888-624-4752, (213) 443-1300, 1-800-593-8222.
PHONE_PATTERN = re.compile(r"(?<!\d)(?:1[-. ])?\(?\d{3}\)?[-. ]\d{3}[-. ]\d{4}(?!\d)")


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a look) in the content."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Report:
    """Errors fail the check; warnings are printed; rows show every text's SMS cost."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    rows: list[SegmentRow] = field(default_factory=list)
    version: str | None = None
    notes: list[str] = field(default_factory=list)  # facts worth printing, neither errors nor warnings

    def error(self, where: str, message: str) -> None:
        """Record an error."""
        self.errors.append(Problem(where, message))

    def warn(self, where: str, message: str) -> None:
        """Record a warning."""
        self.warnings.append(Problem(where, message))


def check(content_dir: Path, today: date | None = None) -> Report:
    """Validate a content directory."""
    report = Report()
    content_dir = Path(content_dir)
    try:
        tree = read_tree(content_dir)
    except ContentError as exc:
        report.error(str(exc).split(":")[0], str(exc).split(": ", 1)[-1])
        return report
    manifest = tree["manifest"]
    report.version = str(manifest.get("version", ""))
    if not _check_manifest(report, manifest):
        return report
    content = Content(tree)
    _check_languages(report, content, today or date.today())
    _check_keys_and_placeholders(report, content)
    _check_keywords(report, content)
    _check_menu(report, content)
    _check_resources_and_numbers(report, content)
    _check_workshops(report, content)
    _check_interpreters(report, content)
    _check_variables(report, content)
    window = int(manifest.get("review_window_days", DEFAULT_REVIEW_WINDOW_DAYS))
    content_sources.check(report, content, today or date.today(), window)
    _check_direction(report, content)
    check_voice(report, content, content_dir)
    understanding_check.check(report, content)
    if not report.errors:
        content_budgets.check(report, content)
    _check_lock_and_changelog(report, content_dir, report.version)
    return report


def _check_manifest(report: Report, manifest: dict) -> bool:
    languages = manifest.get("languages")
    if not manifest.get("version"):
        report.error(MANIFEST, "version is missing")
    if not languages or not isinstance(languages, list):
        report.error(MANIFEST, "languages must list at least one language code")
        return False
    default = manifest.get("default_language", languages[0])
    if default not in languages:
        report.error(MANIFEST, f"default_language {default!r} is not in languages")
    for code in manifest.get("welcome_languages", []):
        if code not in languages:
            report.error(MANIFEST, f"welcome_languages names {code!r}, which is not in languages")
    return not report.errors


def _check_variables(report: Report, content: Content) -> None:
    """Every template variable is declared in [variables] with a kind staff can give it as."""
    declared = template_variables.declared(content)
    for name, kind in declared.items():
        if kind not in template_variables.KINDS:
            report.error(MANIFEST, f"[variables] {name} = {kind!r}: one of {', '.join(template_variables.KINDS)}")
    texts = content.language(content.default_language).get("texts", {})
    for key, text in texts.items():
        for name in sorted(_placeholders(text) or ()) if key.startswith("template.") else ():
            if name not in declared:
                report.error(MANIFEST, f"{key} uses {{{name}}}, which [variables] does not declare")


def _language_file(code: str) -> str:
    return f"{LANGUAGES_DIR}/{code}.toml"


def _check_languages(report: Report, content: Content, today: date) -> None:
    window = int(content.tree["manifest"].get("review_window_days", DEFAULT_REVIEW_WINDOW_DAYS))
    for code in content.languages:
        data, where = content.language(code), _language_file(code)
        meta = data.get("language", {})
        if meta.get("code") != code:
            report.error(where, f"[language] code must be {code!r}")
        if not meta.get("name"):
            report.error(where, "[language] name is missing")
        if meta.get("direction", "ltr") not in DIRECTIONS:
            report.error(where, f"[language] direction must be one of {', '.join(DIRECTIONS)}")
        review = data.get("review", {})
        state = review.get("state")
        if state not in REVIEW_STATES:
            report.error(where, f"[review] state must be one of {', '.join(REVIEW_STATES)}")
        elif state == "draft":
            report.warn(where, "draft: no fluent human reviewer has approved these texts yet")
        elif (found := reviews.review_of(content, code)).state == reviews.CHANGED:
            report.warn(where, f"draft again: the texts changed after {found.reviewer} reviewed them on "
                        f"{found.reviewed_on} (version {found.version or '?'}); ask for a new review")
        else:
            reviewed_on = _date(review.get("reviewed_on"))
            if not review.get("reviewer") or reviewed_on is None:
                report.error(where, "[review] a reviewed language needs reviewer and reviewed_on (YYYY-MM-DD)")
            elif (today - reviewed_on).days > window:
                report.warn(where, f"stale: last reviewed {reviewed_on}, over {window} days ago")
        if not data.get("calendar", {}).get("months") or len(data["calendar"]["months"]) != 12:
            report.error(where, "[calendar] months must list 12 month names")
        if len(data.get("calendar", {}).get("weekdays", [])) != 7:
            report.error(where, "[calendar] weekdays must list 7 day names, Monday first")


def _date(value) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _placeholders(text: str) -> set[str] | None:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        return None


def _check_keys_and_placeholders(report: Report, content: Content) -> None:
    reference = content.default_language
    for section in ("labels", "texts"):
        all_keys = set().union(*(content.language(c).get(section, {}).keys() for c in content.languages))
        for key in sorted(all_keys):
            expected = None
            ref_text = content.language(reference).get(section, {}).get(key)
            if ref_text is not None:
                expected = _placeholders(ref_text)
            for code in content.languages:
                text = content.language(code).get(section, {}).get(key)
                where = f"{_language_file(code)} [{section}] {key}"
                if text is None:
                    report.error(where, "missing translation")
                    continue
                if not isinstance(text, str) or not text.strip():
                    report.error(where, "must be a non-empty text")
                    continue
                found = _placeholders(text)
                if found is None:
                    report.error(where, "has an unbalanced { or }")
                elif expected is not None and found != expected:
                    report.error(
                        where,
                        f"placeholders {sorted(found)} differ from {reference}'s {sorted(expected)}",
                    )


def _check_keywords(report: Report, content: Content) -> None:
    owners: dict[str, tuple[str, str]] = {}
    for code in content.languages:
        keywords = content.language(code).get("keywords", {})
        where = f"{_language_file(code)} [keywords]"
        for command in (*COMMANDS, LANGUAGE_CHOICE):
            if not keywords.get(command) and command != "help":
                report.warn(where, f"{command}: no keyword in this language")
        for command, phrases in keywords.items():
            if command not in (*COMMANDS, LANGUAGE_CHOICE):
                report.error(where, f"{command}: not a command Aviso knows")
                continue
            for phrase in phrases:
                folded = strip_accents(fold_case(phrase))
                if fold_case(phrase) in CARRIER_WORDS:
                    report.error(where, f"{command}: {phrase!r} is a carrier word and keeps its carrier meaning")
                owner = owners.get(folded)
                if owner and owner[0] != command:
                    report.error(
                        where, f"{command}: {phrase!r} is already a keyword for {owner[0]} ({owner[1]})"
                    )
                owners.setdefault(folded, (command, code))


def _check_menu(report: Report, content: Content) -> None:
    known = set(COMMANDS) | set(content.menus)
    labels = content.language(content.default_language).get("labels", {})
    texts = content.language(content.default_language).get("texts", {})
    for node in content.main_menu:
        if node not in known:
            report.error("menu.toml main", f"{node!r} is neither a command nor a menu")
        if node not in labels:
            report.error("menu.toml main", f"{node!r} has no label")
    for menu_id, menu in content.menus.items():
        if menu.get("intro") not in texts:
            report.error(f"menu.toml menus.{menu_id}", f"intro {menu.get('intro')!r} is not a text")
        for item in menu.get("items", []):
            if item not in texts:
                report.error(f"menu.toml menus.{menu_id}", f"item {item!r} is not a text")
            if item not in labels:
                report.error(f"menu.toml menus.{menu_id}", f"item {item!r} has no label")


def _digits(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


def _check_resources_and_numbers(report: Report, content: Content) -> None:
    verified, unverified = set(), set()
    for index, resource in enumerate(content.tree["resources"]):
        where = f"resources.toml [[resources]] #{index + 1} {resource.get('id', '?')}"
        for name in ("id", "name", "source"):
            if not resource.get(name):
                report.error(where, f"{name} is missing")
        if _date(resource.get("checked_on")) is None:
            report.error(where, "checked_on must be a date (YYYY-MM-DD)")
        if not isinstance(resource.get("verified"), bool):
            report.error(where, "verified must be true or false")
        if resource.get("phone"):
            (verified if resource.get("verified") is True else unverified).add(_digits(resource["phone"]))
    places = [
        (f"{_language_file(code)} [texts] {key}", text)
        for code in content.languages
        for key, text in content.language(code).get("texts", {}).items()
    ]
    places += [(f"interpreters.toml [texts] {code}", text)
               for code, text in content.interpreters.get("texts", {}).items()]
    for where, text in places:
        for number in PHONE_PATTERN.findall(text if isinstance(text, str) else ""):
            if _digits(number) in unverified - verified:
                report.error(where, f"{number} is marked unverified in resources.toml")
            elif _digits(number) not in verified:
                report.error(where, f"{number} is not a verified number in resources.toml")


def _check_workshops(report: Report, content: Content) -> None:
    for index, workshop in enumerate(content.tree["workshops"]):
        where = f"workshops.toml [[workshops]] #{index + 1} {workshop.get('id', '?')}"
        if not workshop.get("id"):
            report.error(where, "id is missing")
        try:
            datetime.fromisoformat(str(workshop.get("starts")))
        except ValueError:
            report.error(where, "starts must be a local date and time like 2026-12-03T18:00")
        if not workshop.get("online") and not workshop.get("place"):
            report.error(where, "needs a place, or online = true")
        for code in workshop.get("languages", []):
            if code not in content.languages:
                report.error(where, f"languages names {code!r}, which is not a content language")
        for part in ("title", "description"):
            for code in content.languages:
                if not workshop.get(part, {}).get(code):
                    report.error(where, f"{part} has no {code} text")


RLM = "\u200f"


def _first_strong_direction(line: str) -> str | None:
    for ch in line:
        kind = unicodedata.bidirectional(ch)
        if kind in ("L", "R", "AL"):
            return "rtl" if kind in ("R", "AL") else "ltr"
    return None


def _check_direction(report: Report, content: Content) -> None:
    """Right-to-left texts: every line must read right-to-left on a phone, whatever it starts with."""
    for code in content.languages:
        if content.language(code).get("language", {}).get("direction") != "rtl":
            continue
        for section in ("labels", "texts"):
            for key, text in content.language(code).get(section, {}).items():
                for number, line in enumerate(str(text).strip("\n").split("\n"), 1):
                    if not line.startswith(RLM) and _first_strong_direction(line) == "ltr":
                        report.error(
                            f"{_language_file(code)} [{section}] {key}",
                            f"line {number} starts with left-to-right text: begin it with U+200F (RLM) "
                            "so phones show it right-to-left",
                        )


def _check_interpreters(report: Report, content: Content) -> None:
    entry = content.interpreters
    if not entry:
        report.warn("interpreters.toml", "missing: families who speak indigenous languages get no entry")
        return
    if not entry.get("label"):
        report.error("interpreters.toml", "label is missing")
    for code in ("es", "en"):
        if not entry.get("texts", {}).get(code):
            report.error("interpreters.toml", f"[texts] {code} is missing (written in Spanish and English)")


def _check_lock_and_changelog(report: Report, content_dir: Path, version: str) -> None:
    lock = read_lock(content_dir)
    if not lock:
        report.error(LOCK, "missing: run `aviso content bump` to record this version")
    elif lock.get("version") != version:
        report.error(LOCK, f"version {version} is not recorded: run `aviso content bump`")
    elif lock.get("fingerprint") != fingerprint(content_dir):
        report.error(
            LOCK, f"content changed since version {version} was recorded, without a version bump: "
            "run `aviso content bump`",
        )
    changelog = content_dir / "CHANGELOG.md"
    if not changelog.exists() or version not in changelog.read_text():
        report.error("CHANGELOG.md", f"no entry for version {version}")
