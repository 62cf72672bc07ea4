"""Content: the versioned, multilingual texts, keywords and menus families see."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.content.matching import KeywordIndex
from bot.content.schools import School, SchoolIndex, parse_csv
from bot.content.understanding import Understanding
from bot.content.voice import VoiceContentError, read_voice

MANIFEST = "manifest.toml"
MENU = "menu.toml"
LANGUAGES_DIR = "languages"
RESOURCES = "resources.toml"
WORKSHOPS = "workshops.toml"
SCHOOLS = "schools.csv"
INTERPRETERS = "interpreters.toml"
SOURCES = "sources.toml"
LOCK = "content.lock"
UNDERSTANDING_DIR = "understanding"  # per language: example phrases per answer, and the texts they need
# The commands whose keywords a language file lists; carrier words are handled apart from these.
COMMANDS = (
    "rights", "resources", "workshops", "alerts", "my_alerts", "leave", "verify",
    "menu", "help", "language", "forget", "my_workshops", "sources", "voice_calls", "no_voice_calls",
)
LANGUAGE_CHOICE = "language_choice"


class ContentError(Exception):
    """Content files that cannot be read at all (validation problems are reported, not raised)."""


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ContentError(f"{path.name}: file is missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(f"{path.name}: not valid TOML ({exc})") from None


def read_tree(content_dir: Path) -> dict:
    """Read every content file into one JSON-ready dict (no validation beyond parsing)."""
    content_dir = Path(content_dir)
    manifest = _read_toml(content_dir / MANIFEST)
    languages, understanding = {}, {}
    for code in manifest.get("languages", []):
        languages[code] = _read_toml(content_dir / LANGUAGES_DIR / f"{code}.toml")
        understanding[code] = _read_understanding(content_dir, code, languages[code])
    workshops_path = content_dir / WORKSHOPS
    resources_path = content_dir / RESOURCES
    schools_path = content_dir / SCHOOLS
    schools, rejected = parse_csv(schools_path.read_text()) if schools_path.exists() else ([], [])
    if rejected:
        raise ContentError(f"{SCHOOLS}: line {rejected[0].line}: {rejected[0].reason}")
    interpreters_path = content_dir / INTERPRETERS
    sources_path = content_dir / SOURCES
    workshops_file = _read_toml(workshops_path) if workshops_path.exists() else {}
    try:
        voice = read_voice(content_dir, manifest.get("languages", []))  # the phone line's texts (voice/)
    except VoiceContentError as exc:
        raise ContentError(str(exc)) from None
    return {
        "voice": voice,
        **_sources(sources_path),
        "schools": [school.as_row() for school in schools],
        "interpreters": _read_toml(interpreters_path) if interpreters_path.exists() else {},
        "manifest": manifest,
        "menu": _read_toml(content_dir / MENU),
        "languages": languages,
        "understanding": understanding,
        "resources": _read_toml(resources_path).get("resources", []) if resources_path.exists() else [],
        "workshops": workshops_file.get("workshops", []),
        # Sample workshops move to the coming weeks in development (bot.content.samples).
        "workshop_samples": bool(workshops_file.get("samples", False)),
    }


def _sources(path: Path) -> dict:
    """sources.toml as two parts of the tree: each text's source ids, and the sources themselves."""
    data = _read_toml(path) if path.exists() else {}
    return {"sources": data.get("texts", {}), "source_list": data.get("sources", {})}


def _read_understanding(content_dir: Path, code: str, language: dict) -> dict:
    """A language's understanding file; its [texts] join the language's texts (a key defined twice is an error)."""
    path = content_dir / UNDERSTANDING_DIR / f"{code}.toml"
    if not path.exists():
        return {}
    data = _read_toml(path)
    texts = language.setdefault("texts", {})
    for key, text in data.pop("texts", {}).items():
        if key in texts:
            raise ContentError(f"{UNDERSTANDING_DIR}/{code}.toml: text {key!r} is also in {LANGUAGES_DIR}/{code}.toml")
        texts[key] = text
    return data


@dataclass(frozen=True)
class Workshop:
    """One upcoming workshop, as listed to families."""

    id: str
    starts: datetime
    duration_minutes: int
    place: str
    online: bool
    languages: tuple[str, ...]
    capacity: int
    school: str
    title: dict[str, str]
    description: dict[str, str]
    link: str = ""  # an online workshop's link, sent with the confirmation and the reminders

    @property
    def ends(self) -> datetime:
        """When the workshop is over (real minutes: aware arithmetic in one zone would use wall time)."""
        return (self.starts.astimezone(UTC) + timedelta(minutes=self.duration_minutes)).astimezone(self.starts.tzinfo)


class Content:
    """One version of the content, with lookups the conversation engine needs."""

    def __init__(self, tree: dict, withheld: frozenset[str] = frozenset()):
        self.tree = tree
        # Draft languages not served here (production without AVISO_SERVE_DRAFT_LANGUAGES): their families
        # read the fallback languages' texts instead. The default language is always served.
        self.withheld = withheld
        manifest = tree["manifest"]
        self.version: str = str(manifest["version"])
        self.languages: tuple[str, ...] = tuple(manifest["languages"])
        self.default_language: str = manifest.get("default_language", self.languages[0])
        self.welcome_languages: tuple[str, ...] = tuple(
            manifest.get("welcome_languages", self.languages[:2])
        )
        self._fallback: dict[str, list[str]] = manifest.get("fallback", {})
        self.main_menu: tuple[str, ...] = tuple(tree["menu"].get("main", []))
        self.menus: dict[str, dict] = tree["menu"].get("menus", {})

    @classmethod
    def from_dir(cls, content_dir: Path) -> Content:
        """Load the content files of a directory."""
        return cls(read_tree(content_dir))

    @classmethod
    def from_json(cls, data: str | bytes) -> Content:
        """Load content as published into Redis."""
        return cls(json.loads(data))

    def to_json(self) -> str:
        """Serialise for publishing."""
        return json.dumps(self.tree, ensure_ascii=False, sort_keys=True, default=str)

    def language(self, code: str) -> dict:
        """The whole file of one language."""
        return self.tree["languages"][code]

    def fallback_chain(self, code: str) -> list[str]:
        """Languages to try, in order, for a text missing in code."""
        chains = self.__dict__.setdefault("_chains", {})  # worked out once per language: every text asks
        chain = chains.get(code)
        if chain is None:
            chain = chains[code] = tuple(self._fallback_chain(code))
        return list(chain)

    def _fallback_chain(self, code: str) -> list[str]:
        chain = [code, *self._fallback.get(code, []), *self._fallback.get("default", [])]
        served = [c for c in chain if c not in self.withheld]
        served.append(self.default_language)
        return [c for i, c in enumerate(served) if c in self.tree["languages"] and c not in served[:i]]

    def text(self, language: str, key: str, /, **values: str) -> str:
        """The text for key in a language (falling back when missing), with placeholders filled."""
        for candidate in self.fallback_chain(language):
            template = self.language(candidate).get("texts", {}).get(key)
            if template is not None:
                return template.format(**values) if values else template
        raise KeyError(f"no text {key!r} in any language")

    def label(self, code: str, key: str) -> str:
        """The short menu label of key in a language."""
        for candidate in self.fallback_chain(code):
            label = self.language(candidate).get("labels", {}).get(key)
            if label is not None:
                return label
        raise KeyError(f"no label {key!r} in any language")

    def language_name(self, code: str) -> str:
        """A language's own name for itself."""
        return self.language(code)["language"]["name"]

    @cached_property
    def keywords(self) -> KeywordIndex:
        """Every language's keywords (and language names) in one index."""
        entries = []
        for code, data in self.tree["languages"].items():
            for command, phrases in data.get("keywords", {}).items():
                entries.extend((phrase, command, code) for phrase in phrases)
        return KeywordIndex(entries)

    @cached_property
    def understanding(self) -> Understanding:
        """The language and intent indexes built from every language's texts and example phrases."""
        words, examples, fillers = {}, {}, {}
        for code in self.languages:
            data = self.language(code)
            words[code] = [*data.get("texts", {}).values(), *data.get("labels", {}).values(),
                           *(p for phrases in data.get("keywords", {}).values() for p in phrases)]
            found = self.tree.get("understanding", {}).get(code, {})
            examples[code] = found.get("examples", {})
            fillers[code] = found.get("words", {}).get("filler", [])
        return Understanding(self.languages, words, examples, fillers, self.default_language)

    @cached_property
    def schools(self) -> SchoolIndex:
        """The schools families can follow."""
        rows = self.tree.get("schools", [])
        return SchoolIndex([
            School(r["code"], r["name"], tuple(s for s in r["short_names"].split(";") if s), r["region"])
            for r in rows
        ])

    def school_names(self, codes: tuple[str, ...] | list[str]) -> str:
        """Schools' names joined for a message (an unknown code shows as itself)."""
        return ", ".join(self.schools.by_code[c].name if c in self.schools.by_code else c for c in codes)

    @property
    def interpreters(self) -> dict:
        """The indigenous-languages entry: a label and a text per welcome language."""
        return self.tree.get("interpreters", {})

    @cached_property
    def workshops(self) -> list[Workshop]:
        """Workshops in start order."""
        zone = ZoneInfo(self.tree["manifest"].get("timezone", "America/Los_Angeles"))
        items = [
            Workshop(
                id=w["id"],
                starts=datetime.fromisoformat(w["starts"]).replace(tzinfo=zone),
                duration_minutes=int(w.get("duration_minutes", 60)),
                place=w.get("place", ""),
                online=bool(w.get("online", False)),
                languages=tuple(w.get("languages", [])),
                capacity=int(w.get("capacity", 0)),
                school=w.get("school", ""),
                title=dict(w.get("title", {})),
                description=dict(w.get("description", {})),
                link=w.get("link", ""),
            )
            for w in self.tree["workshops"]
        ]
        return sorted(items, key=lambda w: w.starts)

    @cached_property
    def workshops_by_id(self) -> dict[str, Workshop]:
        """Workshops by id."""
        return {w.id: w for w in self.workshops}

    def workshop(self, workshop_id: str) -> Workshop | None:
        """The workshop with this id in this version, or None."""
        return self.workshops_by_id.get(workshop_id)

    def upcoming_workshops(self, now: datetime, limit: int) -> list[Workshop]:
        """The next workshops that have not started yet."""
        return [w for w in self.workshops if w.starts > now][:limit]
