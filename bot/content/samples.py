"""Sample workshops: in development, the shipped samples move to the coming weeks so there is always one
to sign up for; a real deployment's workshops are served exactly as its content files date them.

workshops.toml marks its entries as samples with a top-level `samples = true`. Development moves them
by whole weeks (so each keeps its weekday and local time) until the first starts at least
LEAD_DAYS after today; the published version gets the first sample's date appended, so the next
day's `aviso dev` republishes only when the dates really moved.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta

# The first sample starts this many days after today: its day-before reminder is still ahead.
LEAD_DAYS = 2


def are_samples(tree: dict) -> bool:
    """Whether the content's workshops are marked as samples."""
    return bool(tree.get("workshop_samples"))


def moved_to_coming_weeks(tree: dict, today: date) -> dict:
    """A copy of the content tree whose sample workshops start from LEAD_DAYS after today on."""
    if not are_samples(tree) or not tree.get("workshops"):
        return tree
    starts = [datetime.fromisoformat(w["starts"]) for w in tree["workshops"]]
    earliest = min(starts).date()
    weeks = max(0, -(-((today + timedelta(days=LEAD_DAYS)) - earliest).days // 7))
    shift = timedelta(weeks=weeks)
    moved = copy.deepcopy(tree)
    for workshop, start in zip(moved["workshops"], starts, strict=True):
        # Naive local wall-clock arithmetic: 18:00 stays 18:00 across a daylight-saving change.
        workshop["starts"] = (start + shift).isoformat(timespec="minutes")
    moved["manifest"]["version"] = f"{tree['manifest']['version']}+{(earliest + shift).isoformat()}"
    return moved
