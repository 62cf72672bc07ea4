"""Voice check: the voice line's part of `aviso content check` (which languages can be heard, what is missing)."""

from __future__ import annotations

import re
from pathlib import Path

from bot.content.voice import (
    NUMBER_PLACEHOLDER,
    RECORDING_FILE,
    RECORDINGS_DIR,
    VOICE_DIR,
    VOICE_SETTINGS,
    VoiceContent,
)

# A phone number typed out in a voice text would be read as "eight hundred eighty-eight...": use its id.
TYPED_NUMBER = re.compile(r"(?<!\d)\(?\d{3}\)?[-. ]\d{3}[-. ]\d{4}(?!\d)")
# The placeholders a text is given, besides numbers.
FILLED = {"language.option": {"key"}, "language.indigenous": {"key"}}
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def check_voice(report, content, content_dir: Path | None = None) -> None:
    """Add the voice line's errors and warnings to a content report, and its note of the languages heard."""
    voice = VoiceContent.of(content)
    _check_hotline(report, voice)
    for code in voice.tree["voices"]:
        if code not in content.languages:
            report.error(VOICE_SETTINGS, f"voices.{code}: not a language of the manifest")
        elif voice.voice(code) is None:
            report.error(VOICE_SETTINGS, f"voices.{code}: needs both voice and locale")
    for code, texts in voice.tree["texts"].items():
        _check_texts(report, voice, code, texts)
    for code in content.languages:
        if voice.voice(code) is None:
            report.warn(VOICE_SETTINGS, f"{code}: no Twilio voice, so callers cannot hear it")
        elif missing := voice.missing_texts(code):
            which = ("no voice texts yet" if len(missing) == len(voice.required_keys)
                     else f"missing {', '.join(missing)}")
            report.warn(f"{VOICE_DIR}/{code}.toml", f"{code} has a voice but {which}, so callers cannot hear it")
    _check_recordings(report, voice, content_dir)
    heard = ", ".join(voice.heard_languages) or "none"
    recorded = f"; from recordings: {', '.join(voice.recorded_languages)}" if voice.recorded_languages else ""
    report.notes.append(f"voice line: callers can hear {heard}{recorded}")


def _check_recordings(report, voice: VoiceContent, content_dir: Path | None) -> None:
    """A recorded language: a clip per voice text, each file present, the key its menu clip says where it stands."""
    for code, entry in voice.tree["recordings"].items():
        where = f"{VOICE_SETTINGS} recordings.{code}"
        files = entry.get("files", {}) if isinstance(entry, dict) else {}
        for key, name in files.items():
            if key not in voice.required_keys:
                report.warn(where, f"{key}: not a voice text (the voice line never plays it)")
            elif not RECORDING_FILE.fullmatch(str(name)):
                report.error(where, f"{key}: {name!r} is not a .mp3 or .wav path under {RECORDINGS_DIR}/")
            elif content_dir is not None and not (Path(content_dir) / RECORDINGS_DIR / name).is_file():
                report.error(where, f"{key}: {RECORDINGS_DIR}/{name} does not exist")
        if missing := voice.missing_recordings(code):
            report.warn(where, f"no recording of {', '.join(missing)}, so callers cannot hear {code}")
        elif code not in voice.recorded_languages:
            report.error(where, f"key: its language-menu clip must say the key where it stands in the menu "
                         f"({len(voice.menu_languages) + 1} after the languages before it), not {entry.get('key')}")


def _check_hotline(report, voice: VoiceContent) -> None:
    hotline = voice.tree.get("hotline", "")
    if not hotline:
        report.error(VOICE_SETTINGS, "hotline: name the resources.toml id that 0 connects to")
    elif voice.verified_phone(hotline) is None:
        report.error(VOICE_SETTINGS, f"hotline: {hotline} is not a verified resource with a phone number")


def _check_texts(report, voice: VoiceContent, code: str, texts: dict) -> None:
    where = f"{VOICE_DIR}/{code}.toml"
    for key, text in texts.items():
        if key not in voice.required_keys:
            report.warn(where, f"{key}: not a voice text (the voice line never says it)")
            continue
        if TYPED_NUMBER.search(text):
            report.error(where, f"{key}: write a phone number as its resources.toml id in braces, so it is read "
                         "digit by digit")
        numbers = NUMBER_PLACEHOLDER.findall(text)
        for resource in sorted(set(numbers)):
            if voice.verified_phone(resource) is None:
                report.error(where, f"{key}: {{{resource}}} is not a verified resource with a phone number")
            elif numbers.count(resource) < 2:
                report.warn(where, f"{key}: {{{resource}}} is read once; say every number twice")
        others = set(PLACEHOLDER.findall(text)) - set(numbers)
        if others != FILLED.get(key, set()):
            report.error(where, f"{key}: placeholders {sorted(others)} (expected {sorted(FILLED.get(key, set()))})")
