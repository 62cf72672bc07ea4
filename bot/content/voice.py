"""Voice content: the texts written for the ear, which Twilio voice reads each language, the hotline."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

VOICE_SETTINGS = "voice.toml"
VOICE_DIR = "voice"
RECORDINGS_DIR = "voice/recordings"  # recorded audio (community interpreters), served for Twilio to <Play>
RECORDING_FILE = re.compile(r"[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_.-]*)*\.(mp3|wav)")  # as listed in voice.toml
# The texts every language needs besides one per entry of the rights and resources menus (menu.toml): a
# language is heard only when it has a voice and all of them.
VOICE_KEYS = (
    "greeting", "language.option", "language.indigenous", "menu.main", "menu.rights", "menu.resources",
    "after", "invalid", "silence.offer", "goodbye", "connecting", "alerts.signup",
    "alerts.calls_on",
)
SPOKEN_MENUS = ("rights", "resources")
# A number in a voice text is its resources.toml id in braces; {key} is the one placeholder a text may fill.
NUMBER_PLACEHOLDER = re.compile(r"\{([a-z0-9]+(?:-[a-z0-9]+)+)\}")


class VoiceContentError(ValueError):
    """A voice file that cannot be read."""


def _toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise VoiceContentError(f"{path.name}: not valid TOML ({exc})") from None


def read_voice(content_dir: Path, languages: list[str]) -> dict:
    """The voice settings and each language's voice texts (a language without a file has none)."""
    content_dir = Path(content_dir)
    settings_path = content_dir / VOICE_SETTINGS
    settings = _toml(settings_path) if settings_path.exists() else {}
    texts = {}
    for code in languages:
        path = content_dir / VOICE_DIR / f"{code}.toml"
        if path.exists():
            texts[code] = _toml(path).get("texts", {})
    return {"hotline": settings.get("hotline", ""), "voices": settings.get("voices", {}), "texts": texts,
            "recordings": settings.get("recordings", {})}


def spoken_number(phone: str) -> str:
    """A phone number as a voice should read it: digit by digit, a pause between groups ("8 8 8, 6 2 4, ...")."""
    groups = re.findall(r"\d+", phone)
    return ", ".join(" ".join(group) for group in groups)


@dataclass(frozen=True)
class Voice:
    """The Twilio voice and locale that read one language."""

    name: str
    locale: str


class VoiceContent:
    """The voice part of one content version, with the lookups the voice menu needs."""

    def __init__(self, tree: dict, languages: tuple[str, ...], resources: list[dict], menus: dict[str, dict],
                 withheld: frozenset[str] = frozenset()):
        self.tree = {"recordings": {}, **(tree or {"hotline": "", "voices": {}, "texts": {}})}
        self.languages = languages
        self.withheld = withheld  # draft languages this deployment does not serve (bot.content.Content.withheld)
        self.resources = {entry.get("id"): entry for entry in resources}
        self.menus = {name: tuple(menu.get("items", ())) for name, menu in menus.items()}

    @classmethod
    def of(cls, content) -> VoiceContent:
        """The voice content of a Content (bot.content.Content)."""
        return cls(content.tree.get("voice", {}), content.languages, content.tree.get("resources", []),
                   content.menus, frozenset(content.withheld) - {content.default_language})

    def voice(self, language: str) -> Voice | None:
        """The voice that reads a language, or None when Twilio has none for it."""
        entry = self.tree["voices"].get(language)
        if not entry or not entry.get("voice") or not entry.get("locale"):
            return None
        return Voice(entry["voice"], entry["locale"])

    @cached_property
    def required_keys(self) -> tuple[str, ...]:
        """Every voice text a language needs: the fixed ones and one per entry of the spoken menus."""
        return VOICE_KEYS + tuple(item for name in SPOKEN_MENUS for item in self.menus.get(name, ()))

    def missing_texts(self, language: str) -> list[str]:
        """The voice texts a language still lacks."""
        texts = self.tree["texts"].get(language, {})
        return [key for key in self.required_keys if not texts.get(key)]

    @cached_property
    def heard_languages(self) -> tuple[str, ...]:
        """The languages a caller can choose, in language-menu order: a voice and every text."""
        return tuple(code for code in self.languages
                     if code not in self.withheld and self.voice(code) and not self.missing_texts(code))

    def verified_phone(self, resource_id: str) -> str | None:
        """The phone number of a verified resource, or None."""
        entry = self.resources.get(resource_id)
        if not entry or entry.get("verified") is not True or not entry.get("phone"):
            return None
        return entry["phone"]

    @property
    def hotline(self) -> str | None:
        """The number 0 connects to, in E.164 (a US number from resources.toml), or None if not configured."""
        phone = self.verified_phone(self.tree.get("hotline", ""))
        if phone is None:
            return None
        digits = re.sub(r"\D", "", phone)
        return "+" + (digits if len(digits) == 11 else "1" + digits)

    def recorded(self, language: str) -> dict:
        """A recorded language's entry in voice.toml: name, key (what its language-menu clip says), files."""
        return self.tree["recordings"].get(language) or {}

    def missing_recordings(self, language: str) -> list[str]:
        """The voice texts a recorded language has no audio file for."""
        files = self.recorded(language).get("files", {})
        return [key for key in self.required_keys if not RECORDING_FILE.fullmatch(str(files.get(key, "")))]

    @cached_property
    def recorded_languages(self) -> tuple[str, ...]:
        """Languages heard from recordings (indigenous languages no Twilio voice reads), after the synthetic ones
        in the language menu: each needs a recording of every voice text and its menu key where it stands."""
        found, key = [], len(self.heard_languages)
        for code in self.tree["recordings"]:
            if code in self.heard_languages or self.missing_recordings(code):
                continue
            if self.recorded(code).get("key") == key + 1:  # its option clip says this key
                found.append(code)
                key += 1
        return tuple(found)

    @property
    def menu_languages(self) -> tuple[str, ...]:
        """Every language a caller can choose, in language-menu order (key 1 first)."""
        return self.heard_languages + self.recorded_languages

    def clip(self, language: str, key: str) -> str | None:
        """The recording of a voice text (a path under voice/recordings/) when the language is recorded."""
        if language not in self.recorded_languages:
            return None
        return self.recorded(language)["files"][key]

    @cached_property
    def clips(self) -> frozenset[str]:
        """Every recording the voice line may play (what /voice/recordings/ serves)."""
        return frozenset(self.recorded(code)["files"][key] for code in self.recorded_languages
                         for key in self.required_keys)

    def say(self, language: str, key: str, /, **values: str) -> str:
        """A voice text with its numbers spelt out digit by digit and its placeholders filled."""
        text = self.tree["texts"][language][key]
        text = NUMBER_PLACEHOLDER.sub(lambda match: spoken_number(self.verified_phone(match[1]) or ""), text)
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        return " ".join(text.split())  # line breaks are for authors; a voice reads one flow
