"""Sample workshops move to the coming weeks in development; a real deployment's stay as dated."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from bot import services
from bot.content.samples import LEAD_DAYS, moved_to_coming_weeks


def tree(*starts: str, samples: bool = True) -> dict:
    """A content tree with workshops starting at these local times."""
    return {"manifest": {"version": "2026.01.01.1"}, "workshop_samples": samples,
            "workshops": [{"id": f"w{i}", "starts": s} for i, s in enumerate(starts)]}


@pytest.mark.parametrize(("today", "first", "second", "version"), [
    # Far in the past: whole weeks forward, so Thursday 18:00 stays Thursday 18:00.
    (date(2031, 5, 20), "2031-05-22T18:00", "2031-05-29T18:30", "2026.01.01.1+2031-05-22"),
    # The first sample is less than LEAD_DAYS ahead: one more week.
    (date(2026, 12, 2), "2026-12-10T18:00", "2026-12-17T18:30", "2026.01.01.1+2026-12-10"),
    # Already far enough ahead: unchanged dates.
    (date(2026, 11, 20), "2026-12-03T18:00", "2026-12-10T18:30", "2026.01.01.1+2026-12-03"),
])
def test_samples_move_by_whole_weeks_until_the_first_is_lead_days_ahead(today, first, second, version):
    moved = moved_to_coming_weeks(tree("2026-12-03T18:00", "2026-12-10T18:30"), today)
    assert [w["starts"] for w in moved["workshops"]] == [first, second]
    assert moved["manifest"]["version"] == version
    assert (datetime.fromisoformat(first).date() - today).days >= LEAD_DAYS


def test_a_move_across_daylight_saving_keeps_the_local_time():
    moved = moved_to_coming_weeks(tree("2026-10-29T18:00"), date(2026, 11, 3))
    assert moved["workshops"][0]["starts"] == "2026-11-05T18:00"  # PST now, still 6 pm


def test_workshops_not_marked_as_samples_stay_as_dated():
    original = tree("2026-12-03T18:00", samples=False)
    assert moved_to_coming_weeks(original, date(2031, 1, 1)) is original


def test_the_original_tree_is_not_changed():
    original = tree("2026-12-03T18:00")
    moved_to_coming_weeks(original, date(2031, 1, 1))
    assert original["workshops"][0]["starts"] == "2026-12-03T18:00"


def test_development_publishes_the_shipped_samples_in_the_coming_weeks(settings):
    today = date(2033, 2, 14)
    content = services.shipped_content(settings, today)
    assert content.workshops and all((w.starts.date() - today).days >= LEAD_DAYS for w in content.workshops)
    assert content.upcoming_workshops(datetime(2033, 2, 14, 9, 0, tzinfo=settings.timezone), 4)


def test_production_publishes_workshops_exactly_as_the_files_date_them(settings):
    production = services.shipped_content(replace(settings, env="production"), date(2033, 2, 14))
    literal = services.shipped_content(settings, date(2026, 1, 1))  # before the samples: no move
    assert [w.starts for w in production.workshops] == [w.starts for w in literal.workshops]
    assert production.version == str(production.tree["manifest"]["version"])
