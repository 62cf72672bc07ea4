"""`aviso content check` for the voice line: which languages callers can hear, and what stops the others."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from bot.content.model import Content
from bot.publishing import reviews
from bot.publishing.check import check

from .conftest import CONTENT_DIR

TODAY = date(2026, 12, 4)


@pytest.fixture
def content_dir(tmp_path):
    copy = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, copy)
    return copy


def messages(problems) -> list[str]:
    return [str(problem) for problem in problems]


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_shipped_content_says_english_and_spanish_can_be_heard_and_why_the_others_cannot():
    report = check(CONTENT_DIR, TODAY)
    assert not report.errors
    assert "voice line: callers can hear en, es" in report.notes
    warnings = messages(report.warnings)
    assert "voice.toml: hy: no Twilio voice, so callers cannot hear it" in warnings
    assert "voice/ko.toml: ko has a voice but no voice texts yet, so callers cannot hear it" in warnings


def test_a_missing_voice_text_is_named_and_the_language_is_no_longer_heard(content_dir):
    edit(content_dir / "voice" / "es.toml", '"rights.work" = """', '"unused.work" = """')
    report = check(content_dir, TODAY)
    assert "voice line: callers can hear en" in report.notes
    assert "voice/es.toml: es has a voice but missing rights.work, so callers cannot hear it" in messages(
        report.warnings)


def test_a_hotline_that_is_not_verified_is_an_error(content_dir):
    edit(content_dir / "voice.toml", 'hotline = "chirla-rapid-response"',
         'hotline = "national-immigration-detention-hotline"')
    report = check(content_dir, TODAY)
    assert ("voice.toml: hotline: national-immigration-detention-hotline is not a verified resource with a "
            "phone number") in messages(report.errors)


def test_numbers_must_be_verified_resources_written_as_ids_and_said_twice(content_dir):
    path = content_dir / "voice" / "en.toml"
    edit(path, "The number is {chirla-rapid-response}. Again: {chirla-rapid-response}.",
         "The number is 888-624-4752. Or {united-we-dream-migrawatch}. Or {lausd-family-helpdesk}.")
    report = check(content_dir, TODAY)
    errors, warnings = messages(report.errors), messages(report.warnings)
    assert any("resources.hotlines: write a phone number as its resources.toml id" in e for e in errors)
    assert any("{united-we-dream-migrawatch} is not a verified resource" in e for e in errors)
    assert "voice/en.toml: resources.hotlines: {lausd-family-helpdesk} is read once; say every number twice" in warnings


def test_a_voice_for_a_language_the_manifest_does_not_list_is_an_error(content_dir):
    (content_dir / "voice.toml").write_text((content_dir / "voice.toml").read_text()
                                            + '\n[voices.zap]\nvoice = "Polly.Lupe"\nlocale = "es-US"\n')
    assert "voice.toml: voices.zap: not a language of the manifest" in messages(check(content_dir, TODAY).errors)


def test_a_voice_text_changed_after_its_languages_review_makes_it_a_draft_again(content_dir):
    reviews.record(content_dir, Content.from_dir(content_dir), "es", "María Pérez", TODAY)
    assert reviews.review_of(Content.from_dir(content_dir), "es").state == "reviewed"
    edit(content_dir / "voice" / "es.toml", "Hola. Le habla Aviso", "Buenos días. Le habla Aviso")
    assert reviews.review_of(Content.from_dir(content_dir), "es").state == "changed"
