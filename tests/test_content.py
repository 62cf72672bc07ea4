"""The content validator, versioning, publishing and rollback."""

from __future__ import annotations

import re
import shutil
from datetime import date

import pytest

from bot import create_app, services
from bot.content.encoding import for_sms
from bot.content.model import Content
from bot.conversation.engine import submenu_text
from bot.publishing import check as content_check
from bot.publishing.store import NothingToRollBack, VersionConflict

from .conftest import CONTENT_DIR, Phone


@pytest.fixture
def content_copy(tmp_path):
    """A writable copy of the shipped content."""
    target = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, target)
    return target


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def messages(report):
    return [str(problem) for problem in report.errors]


def test_shipped_content_passes_the_validator():
    report = content_check.check(CONTENT_DIR)
    assert report.errors == []


def test_shipped_languages_are_reported_as_drafts_until_reviewed():
    report = content_check.check(CONTENT_DIR)
    drafts = [w for w in report.warnings if "draft" in w.message]
    assert {w.where for w in drafts} == {f"languages/{code}.toml" for code in Content.from_dir(CONTENT_DIR).languages}


def test_every_shipped_text_has_a_segment_row_per_language_within_budget():
    report = content_check.check(CONTENT_DIR)
    keys = {row.key for row in report.rows}
    assert {"rights.home", "(menu) main", "(first contact) welcome"} <= keys
    assert {row.language for row in report.rows} == set(Content.from_dir(CONTENT_DIR).languages)
    assert all(row.count.segments <= row.budget for row in report.rows)


def test_spanish_is_written_with_its_accents_and_sent_in_gsm7_where_folding_saves_a_segment():
    report = content_check.check(CONTENT_DIR)
    spanish = {row.key: row for row in report.rows if row.language == "es"}
    assert spanish["rights.home"].written.encoding == "UCS-2"  # as written: á í ó ú
    assert spanish["rights.home"].count.encoding == "GSM-7"  # as an SMS sends it
    assert spanish["rights.home"].count.segments < spanish["rights.home"].written.segments
    # A text stays UCS-2 on SMS (accents kept) only where folding would save nothing: a one-segment text,
    # or one listing every language in its own script.
    kept = {key for key, row in spanish.items() if row.count.encoding == "UCS-2" and row.count.segments > 1}
    assert kept <= {"(first contact) welcome", "(menu) language", "(menu) language.set"}


def test_missing_translation_is_reported_with_file_and_key(content_copy):
    path = content_copy / "languages" / "es.toml"
    text = path.read_text()
    path.write_text(re.sub(r'(?m)^"rights\.work" = """.*?"""\n', "", text, count=1, flags=re.S))
    content_check.write_lock(content_copy, content_check.read_lock(content_copy)["version"])
    assert "languages/es.toml [texts] rights.work: missing translation" in messages(
        content_check.check(content_copy)
    )


def test_placeholder_that_differs_between_languages_is_reported(content_copy):
    edit(content_copy / "languages" / "es.toml", "{title}", "{titulo}")
    errors = messages(content_check.check(content_copy))
    assert any("workshops.item" in e and "placeholders" in e for e in errors)


def test_broken_menu_reference_is_reported(content_copy):
    edit(content_copy / "menu.toml", '"rights.plan",', '"rights.plans",')
    errors = messages(content_check.check(content_copy))
    assert any("menus.rights" in e and "rights.plans" in e for e in errors)


def replace_text(path, key, new):
    """Replace one text (single- or triple-quoted) in a language file."""
    text = path.read_text()
    pattern = re.compile(rf'(?ms)^"{re.escape(key)}" = (""".*?"""|"[^"\n]*")$')
    assert pattern.search(text), key
    path.write_text(pattern.sub(lambda _: f'"{key}" = "{new}"', text, count=1))


def test_text_over_its_budget_is_reported_with_encoding_and_count(content_copy):
    # An emoji keeps the text in UCS-2 even folded, so it costs what it costs as written.
    replace_text(content_copy / "languages" / "es.toml", "alerts.info", "Información " * 40 + "\U0001F600")
    errors = messages(content_check.check(content_copy))
    assert any("alerts.info: 8 segments UCS-2 is over its budget of 6" in e and "'ó\U0001F600'" in e for e in errors)


def test_a_text_folding_brings_within_budget_passes_and_one_over_even_folded_fails(content_copy):
    replace_text(content_copy / "languages" / "es.toml", "alerts.info", "Información " * 36)
    content_check.write_lock(content_copy, content_check.read_lock(content_copy)["version"])
    assert messages(content_check.check(content_copy)) == []  # 432 characters: 3 GSM-7 segments folded
    replace_text(content_copy / "languages" / "es.toml", "alerts.info", "Información " * 40)
    content_check.write_lock(content_copy, content_check.read_lock(content_copy)["version"])
    assert any("alerts.info: 4 segments GSM-7 is over its budget of 3" in e
               for e in messages(content_check.check(content_copy)))


def test_carrier_word_as_keyword_is_refused(content_copy):
    edit(content_copy / "languages" / "en.toml", 'menu = ["MENU"]', 'menu = ["MENU", "START"]')
    assert any("carrier word" in e for e in messages(content_check.check(content_copy)))


def test_unverified_or_unknown_phone_number_is_refused(content_copy):
    edit(content_copy / "languages" / "en.toml", '"rights.work" = """\n', '"rights.work" = """\nCall 209-757-3733.\n')
    edit(content_copy / "languages" / "es.toml", '"rights.work" = """\n', '"rights.work" = """\nLlame 213-555-0199.\n')
    errors = messages(content_check.check(content_copy))
    assert any("209-757-3733 is marked unverified" in e for e in errors)
    assert any("213-555-0199 is not a verified number" in e for e in errors)


def test_change_without_version_bump_is_refused_and_bump_fixes_it(content_copy):
    edit(content_copy / "languages" / "en.toml", "Aviso", "Aviso!")
    errors = messages(content_check.check(content_copy))
    assert any("without a version bump" in e for e in errors)
    version = content_check.bump(content_copy, date(2026, 11, 22))
    assert version == content_check.next_version(Content.from_dir(CONTENT_DIR).version, date(2026, 11, 22))
    assert Content.from_dir(content_copy).version == version
    (content_copy / "CHANGELOG.md").write_text(f"## {version}\n- test edit\n")
    assert messages(content_check.check(content_copy)) == []


def test_next_version_counts_within_a_day_and_restarts_on_a_new_day():
    assert content_check.next_version("2026.11.22.1", date(2026, 11, 22)) == "2026.11.22.2"
    assert content_check.next_version("2026.11.22.7", date(2026, 11, 23)) == "2026.11.23.1"


def new_version(content_dir, marker: str) -> Content:
    """Edit a Spanish text, bump and record, and return the new content."""
    edit(content_dir / "languages" / "es.toml", '"rights.intro" = """\n', f'"rights.intro" = """\n{marker} ')
    version = content_check.bump(content_dir, date(2026, 11, 22))
    with open(content_dir / "CHANGELOG.md", "a") as handle:
        handle.write(f"\n## {version}\n- {marker}\n")
    return Content.from_dir(content_dir)


def test_publish_switches_every_process_at_once_and_rollback_returns(settings, content_copy):
    # Two apps stand for two running processes: each has its own cache of content.
    first = create_app(settings)
    second = create_app(settings)
    store = services.current_from(first).content
    services.current_from(first).connection.flushdb()
    first_version = services.current_from(first).ensure_content()
    old = Content.from_dir(CONTENT_DIR)
    phones = [Phone(app.test_client()) for app in (first, second)]
    assert phones[0].text("DERECHOS") == [for_sms(submenu_text(old, "es", "rights"), "es")]

    updated = new_version(content_copy, "NUEVO")
    store.publish(updated, by="test")
    for phone in phones:
        assert phone.text("DERECHOS")[0].startswith("NUEVO")
    assert store.status()["published_by"] == "test"

    assert store.rollback() == first_version
    for phone in phones:
        assert phone.text("DERECHOS") == [for_sms(submenu_text(old, "es", "rights"), "es")]
    with pytest.raises(NothingToRollBack):
        store.rollback()


def test_publishing_different_content_under_a_used_version_is_refused(aviso, content_copy):
    aviso.content.publish(Content.from_dir(CONTENT_DIR))
    edit(content_copy / "languages" / "es.toml", '"rights.intro" = """\n', '"rights.intro" = """\nX ')
    with pytest.raises(VersionConflict):
        aviso.content.publish(Content.from_dir(content_copy))


def test_rights_and_resources_texts_need_their_sources_and_a_check_date(content_copy):
    path = content_copy / "sources.toml"
    text = path.read_text()
    path.write_text(text.replace('[texts."rights.work"]', '[texts."rights.work.old"]'))
    content_check.write_lock(content_copy, content_check.read_lock(content_copy)["version"])
    assert 'sources.toml [texts."rights.work"]: no sources recorded' in messages(content_check.check(content_copy))


def test_a_source_needs_a_public_address_and_a_date(content_copy):
    path = content_copy / "sources.toml"
    text = path.read_text().replace('url = "https://www.nilc.org"', 'url = "the facts file"')
    before_chirla = "checked_on = 2026-12-04\n\n[sources.chirla]"
    path.write_text(text.replace(before_chirla, 'checked_on = "soon"\n\n[sources.chirla]'))
    content_check.write_lock(content_copy, content_check.read_lock(content_copy)["version"])
    errors = messages(content_check.check(content_copy))
    assert "sources.toml [sources.nilc]: url must be a public https:// address a family or reviewer can open" in errors
    assert "sources.toml [sources.nilc]: checked_on must be a date (YYYY-MM-DD)" in errors


def test_facts_checked_long_ago_are_reported_stale():
    report = content_check.check(CONTENT_DIR, today=date(2028, 1, 1))
    assert any(w.where == "sources.toml [sources.aclu-immigrants]" and "stale" in w.message for w in report.warnings)
    assert any(w.where == 'sources.toml [texts."rights.home"]' and "aclu-immigrants" in w.message
               for w in report.warnings)


def test_a_resource_checked_before_the_review_window_is_flagged():
    report = content_check.check(CONTENT_DIR, today=date(2026, 12, 4))
    flagged = [w.where for w in report.warnings if "stale" in w.message and w.where.startswith("resources.toml")]
    assert flagged == ["resources.toml [[resources]] #4 lausd-wellness-line"]  # the facts say "verified 2020"


def test_an_answer_without_examples_in_a_language_fails_the_check(content_copy):
    edit(content_copy / "understanding" / "ko.toml", '"resources.district" = [', '"resources.elsewhere" = [')
    found = messages(content_check.check(content_copy))
    assert any("understanding/ko.toml [examples] resources.district: no example phrases" in m for m in found)
    assert any("resources.elsewhere: not an answer Aviso can give" in m for m in found)


def test_the_check_reports_how_well_the_examples_are_understood():
    report = content_check.check(CONTENT_DIR)
    assert report.notes and report.notes[-1].startswith("overall")
