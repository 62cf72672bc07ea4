"""Reviews: a named fluent reviewer's approval of one language, void as soon as its texts change."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bot.content.model import LANGUAGES_DIR, Content

REVIEWED, DRAFT, CHANGED = "reviewed", "draft", "changed"
# What a family reads in a language: a change to any of it needs a new review.
REVIEWED_PARTS = ("keywords", "labels", "texts", "calendar")
_REVIEW_SECTION = re.compile(r"(?ms)^\[review\][^\n]*\n.*?(?=^\[|\Z)")


class ReviewError(ValueError):
    """A review that cannot be recorded; the message says why."""


@dataclass(frozen=True)
class Review:
    """One language's review as it stands: reviewed, draft, or changed since its review (a draft again)."""

    code: str
    state: str
    reviewer: str = ""
    reviewed_on: date | None = None
    version: str = ""

    @property
    def approved(self) -> bool:
        """True when a reviewer approved exactly the texts families would read now."""
        return self.state == REVIEWED


def fingerprint(language: dict, voice_texts: dict | None = None) -> str:
    """A hash of everything a family reads or hears in one language (the file's comments and [review] excluded)."""
    parts = {name: language.get(name, {}) for name in REVIEWED_PARTS}
    if voice_texts:  # what the phone line says (voice/<code>.toml); absent, the hash is what it was before voice
        parts["voice"] = voice_texts
    encoded = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def review_of(content: Content, code: str) -> Review:
    """A language's review; a language whose texts changed after it was reviewed is back to draft."""
    language = content.language(code)
    review = language.get("review", {})
    reviewed_on = review.get("reviewed_on")
    if isinstance(reviewed_on, str):
        try:
            reviewed_on = date.fromisoformat(reviewed_on) if reviewed_on else None
        except ValueError:
            reviewed_on = None
    found = Review(code, DRAFT, str(review.get("reviewer", "")), reviewed_on or None, str(review.get("version", "")))
    if review.get("state") != REVIEWED:
        return found
    if review.get("fingerprint") and review["fingerprint"] != fingerprint(language, _voice_texts(content, code)):
        return Review(code, CHANGED, found.reviewer, found.reviewed_on, found.version)
    return Review(code, REVIEWED, found.reviewer, found.reviewed_on, found.version)


def _voice_texts(content: Content, code: str) -> dict:
    return content.tree.get("voice", {}).get("texts", {}).get(code, {})


def drafts(content: Content) -> list[str]:
    """The languages no fluent reviewer has approved as they stand, in menu order."""
    return [code for code in content.languages if not review_of(content, code).approved]


def record(content_dir: Path, content: Content, code: str, by: str, today: date) -> Review:
    """Write a reviewer's approval of one language (name, date, content version, fingerprint) into its file."""
    if code not in content.languages:
        raise ReviewError(f"no language {code!r}; the languages are {', '.join(content.languages)}")
    name = " ".join(by.split())
    if not name:
        raise ReviewError("say who reviewed it: --by NAME")
    path = Path(content_dir) / LANGUAGES_DIR / f"{code}.toml"
    text = path.read_text(encoding="utf-8")
    section = (
        "[review]\n"
        f'state = "{REVIEWED}"\n'
        f"reviewer = {json.dumps(name, ensure_ascii=False)}\n"
        f'reviewed_on = "{today.isoformat()}"\n'
        f'version = "{content.version}"  # the content version the reviewer read\n'
        f'fingerprint = "{fingerprint(content.language(code), _voice_texts(content, code))}"  '
        "# a change to the texts voids this review\n\n"
    )
    if _REVIEW_SECTION.search(text):
        text = _REVIEW_SECTION.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")
    return Review(code, REVIEWED, name, today, content.version)
