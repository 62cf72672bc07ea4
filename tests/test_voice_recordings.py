"""Recorded languages on the voice line: an indigenous language heard from community interpreters' recordings,
offered in the language menu, played with <Play> from files Aviso serves, and checked by `aviso content check`."""

from __future__ import annotations

import shutil
import wave
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from bot.content import samples as sample_workshops
from bot.content.model import Content
from bot.content.voice import RECORDINGS_DIR, VoiceContent
from bot.conversation.voice_menu import LANGUAGE, MAIN, CallState, step
from bot.publishing.check import check as check_content
from bot.publishing.lock import write_lock
from tests.conftest import CONTENT_DIR
from tests.test_voice_webhook import Caller, said


def _write_wav(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(8000)
        clip.writeframes(b"\0\0" * 800)  # a tenth of a second of silence


def with_recordings(tmp_path, key: int = 3, leave_out: str | None = None):
    """A copy of the shipped content with Zapotec recorded (every voice text but leave_out)."""
    folder = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, folder)
    required = VoiceContent.of(Content.from_dir(CONTENT_DIR)).required_keys
    lines = ["", "[recordings.zap]", 'name = "Diidxazá (zapoteco)"', f"key = {key}", "[recordings.zap.files]"]
    for text_key in required:
        if text_key == leave_out:
            continue
        name = f"zap/{text_key.replace('.', '-')}.wav"
        _write_wav(folder / RECORDINGS_DIR / name)
        lines.append(f'"{text_key}" = "{name}"')
    with open(folder / "voice.toml", "a") as settings:
        settings.write("\n".join(lines) + "\n")
    write_lock(folder, Content.from_dir(folder).version)
    return folder


@pytest.fixture
def recorded_dir(tmp_path):
    return with_recordings(tmp_path)


@pytest.fixture
def shipped_content(recorded_dir):
    literal = Content.from_dir(recorded_dir)
    today = datetime.now(ZoneInfo(literal.tree["manifest"]["timezone"])).date()
    return Content(sample_workshops.moved_to_coming_weeks(literal.tree, today))


@pytest.fixture
def settings(settings, recorded_dir):
    return settings.with_overrides(content_dir=recorded_dir)


def test_a_recorded_language_is_offered_after_the_voiced_ones_and_played(shipped_content):
    voice = VoiceContent.of(shipped_content)
    assert voice.heard_languages == ("en", "es") and voice.recorded_languages == ("zap",)
    menu = step(CallState(LANGUAGE), "*", voice)
    assert [line.audio for line in menu.lines] == [None, None, "zap/language-option.wav", None, None]
    chosen = step(CallState(LANGUAGE), "3", voice)
    assert (chosen.state.at, chosen.state.language) == (MAIN, "zap")
    assert chosen.remember_language is None  # not a language of the texts: this call only
    assert [line.audio for line in chosen.lines] == ["zap/menu-main.wav"]
    assert step(CallState(LANGUAGE), "4", voice).state.at == "interpreters"  # the last option moved down one


def test_the_call_plays_the_recordings_aviso_serves(client, aviso):
    caller = Caller(client)
    options = [element for element in caller.call().iter() if element.tag in ("Say", "Play")]
    assert [element.tag for element in options].count("Play") == 1
    main = caller.press(caller.call(), "3")
    plays = [element.text for element in main.iter("Play")]
    assert len(plays) == 1 and not said(main)
    path = urlsplit(plays[0]).path
    assert path == "/voice/recordings/zap/menu-main.wav"
    with client.get(path) as clip:
        assert clip.status_code == 200 and clip.mimetype == "audio/wav" and clip.data[:4] == b"RIFF"
    assert client.get("/voice/recordings/zap/not-listed.wav").status_code == 404
    assert client.get("/voice/recordings/../voice.toml").status_code == 404
    assert [d.text for d in caller.press(main, "0").iter("Dial")]  # the hotline from a recorded language too


def test_the_check_reports_what_a_recorded_language_lacks(tmp_path):
    folder = with_recordings(tmp_path / "missing", leave_out="goodbye")
    report = check_content(folder)
    assert any("no recording of goodbye" in str(line) for line in report.warnings)
    wrong_key = with_recordings(tmp_path / "key", key=5)
    assert any("recordings.zap" in str(line) and "key" in str(line) for line in check_content(wrong_key).errors)
    gone = with_recordings(tmp_path / "gone")
    (gone / RECORDINGS_DIR / "zap" / "goodbye.wav").unlink()
    write_lock(gone, Content.from_dir(gone).version)
    assert any("does not exist" in str(line) for line in check_content(gone).errors)
