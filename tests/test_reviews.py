"""Reviews: a named reviewer approves a language; a later change makes it a draft again; drafts are served
in production only when a setting says so, and `aviso content status` says so loudly."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from bot.cli.main import cli
from bot.content.encoding import for_sms
from bot.content.model import Content
from bot.conversation.engine import submenu_text
from bot.publishing import check as content_check
from bot.publishing import reviews

from .conftest import CONTENT_DIR, Phone

REVIEW_DAY = date(2026, 12, 4)


@pytest.fixture
def content_copy(tmp_path):
    """A writable copy of the shipped content."""
    target = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, target)
    return target


def reviewed_copy(content_dir, code: str, by: str = "María Pérez"):
    """Record a review of one language, bump the version and log it, as an author would."""
    reviews.record(content_dir, Content.from_dir(content_dir), code, by, REVIEW_DAY)
    version = content_check.bump(content_dir, REVIEW_DAY)
    with open(content_dir / "CHANGELOG.md", "a") as handle:
        handle.write(f"\n## {version}\n- {code} reviewed by {by}\n")
    return Content.from_dir(content_dir)


def draft_warnings(content_dir, code: str) -> list[str]:
    report = content_check.check(content_dir, today=REVIEW_DAY)
    return [w.message for w in report.warnings if w.where == f"languages/{code}.toml"]


def test_a_recorded_review_names_the_reviewer_the_day_and_the_version(content_copy):
    before = Content.from_dir(content_copy).version
    content = reviewed_copy(content_copy, "es")
    review = reviews.review_of(content, "es")
    assert (review.state, review.reviewer, review.reviewed_on, review.version) == (
        "reviewed", "María Pérez", REVIEW_DAY, before)
    assert draft_warnings(content_copy, "es") == []
    assert content_check.check(content_copy, today=REVIEW_DAY).errors == []
    assert "es" not in reviews.drafts(content) and "ko" in reviews.drafts(content)


def test_a_text_changed_after_its_review_is_a_draft_again(content_copy):
    reviewed_copy(content_copy, "es")
    path = content_copy / "languages" / "es.toml"
    path.write_text(path.read_text().replace("Tiene derechos, sin importar", "Usted tiene derechos, sin importar"))
    content_check.bump(content_copy, REVIEW_DAY)
    assert reviews.review_of(Content.from_dir(content_copy), "es").state == "changed"
    assert any("draft again" in w and "María Pérez" in w for w in draft_warnings(content_copy, "es"))


def test_a_review_needs_a_known_language_and_a_name(content_copy):
    content = Content.from_dir(content_copy)
    with pytest.raises(reviews.ReviewError, match="no language 'xx'"):
        reviews.record(content_copy, content, "xx", "Ana", REVIEW_DAY)
    with pytest.raises(reviews.ReviewError, match="--by NAME"):
        reviews.record(content_copy, content, "es", "  ", REVIEW_DAY)


def test_the_review_command_records_the_review(runner, cli_env, content_copy):
    result = runner.invoke(cli, ["content", "review", "ko", "--by", "Kim Min-ji", "--dir", str(content_copy)],
                           env=cli_env)
    assert result.exit_code == 0, result.output
    assert "ko: reviewed by Kim Min-ji" in result.output
    assert reviews.review_of(Content.from_dir(content_copy), "ko").reviewer == "Kim Min-ji"


@pytest.mark.parametrize(("serve_drafts", "answered_in"), [(True, "es"), (False, "en")])
def test_a_draft_language_is_served_only_when_the_setting_says_so(settings, serve_drafts, answered_in):
    from bot import create_app, services

    app = create_app(settings.with_overrides(serve_draft_languages=serve_drafts))
    aviso = services.current_from(app)
    aviso.connection.flushdb()
    aviso.ensure_content()
    content = Content.from_dir(CONTENT_DIR)
    answer = Phone(app.test_client(), "+12135550170").text("DERECHOS")
    assert answer == [for_sms(submenu_text(content, answered_in, "rights"), answered_in)]
    aviso.connection.flushdb()


def test_a_reviewed_language_is_served_in_production_and_status_says_which_are_not(
        settings, content_copy, runner, cli_env):
    from bot import create_app, services

    content = reviewed_copy(content_copy, "es")
    app = create_app(settings.with_overrides(serve_draft_languages=False))
    aviso = services.current_from(app)
    aviso.connection.flushdb()
    aviso.content.publish(content, by="test")
    assert Phone(app.test_client(), "+12135550171").text("DERECHOS") == [
        for_sms(submenu_text(content, "es", "rights"), "es")]
    assert Phone(app.test_client(), "+12135550172").text("권리")[0].startswith(content.text("en", "rights.intro")[:20])
    status = runner.invoke(cli, ["content", "status"], env={**cli_env, "AVISO_SERVE_DRAFT_LANGUAGES": "false"})
    assert status.exit_code == 0, status.output
    assert "reviewed:  es by María Pérez on 2026-12-04" in status.output
    assert "WARNING: 9 language(s) no fluent reviewer approved: en, ko" in status.output
    assert "NOT SERVED: their families get en" in status.output
    aviso.connection.flushdb()
