"""Helpers for the workshop tests: content with chosen workshops, published; a clock; contacts."""

from __future__ import annotations

import copy
import itertools
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.content.model import Content
from bot.conversation.engine import ContactState
from bot.people import contacts
from bot.people.identity import SMS, Address

LA = ZoneInfo("America/Los_Angeles")
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=LA)
_versions = itertools.count(1)


# Tests whose Redis keeps registrations: Redis expires them at absolute times computed from the workshop's
# date, so their workshops are dated from the day the run starts (a Thursday about four months ahead, so a
# day-before or hours-before reminder never crosses a daylight-saving Sunday), and they sign up 60 days
# before it. Pure tests keep the fixed NOW above.
_AHEAD = datetime.now(LA).date() + timedelta(days=120)
KYR_DAY = _AHEAD + timedelta(days=(3 - _AHEAD.weekday()) % 7)  # the next Thursday
SIGNUP = datetime.combine(KYR_DAY - timedelta(days=60), time(6, 0), tzinfo=LA)


def on(days: int, at: str = "18:00") -> str:
    """A workshop start `days` after KYR_DAY at a local time, as workshops.toml writes it."""
    return f"{(KYR_DAY + timedelta(days=days)).isoformat()}T{at}"


def starts(days: int, at: str = "18:00") -> datetime:
    """The same moment as on(days, at), as a local datetime."""
    return datetime.fromisoformat(on(days, at)).replace(tzinfo=LA)


def in_days(days: int, at: str = "18:00") -> str:
    """A workshop start `days` after today (the real, ticking clock) at a local time, as workshops.toml writes
    it: for tests that go through the webhook or a job, which read the clock."""
    return f"{(datetime.now(LA).date() + timedelta(days=days)).isoformat()}T{at}"


def workshop(workshop_id: str, starts: str, *, capacity: int = 60, languages=("es", "en"), online: bool = False,
             place: str = "Belmont High School", link: str = "", duration: int = 90, title: str | None = None) -> dict:
    """One workshops.toml entry."""
    title = title or workshop_id
    return {
        "id": workshop_id, "starts": starts, "duration_minutes": duration, "online": online,
        "place": "" if online else place, "link": link, "languages": list(languages), "capacity": capacity,
        "school": "", "title": {"en": f"{title} (en)", "es": f"{title} (es)"},
        "description": {"en": "What to do.", "es": "Que hacer."},
    }


def content_with(base: Content, *workshops: dict, version: str | None = None) -> Content:
    """The shipped content with these workshops instead of its own, under a version of its own."""
    tree = copy.deepcopy(base.tree)
    tree["workshops"] = [dict(w) for w in workshops]
    tree["manifest"]["version"] = version or f"test.{next(_versions)}"
    return Content(tree)


def publish(aviso, base: Content, *workshops: dict, version: str | None = None) -> Content:
    """Publish content with these workshops and return it."""
    content = content_with(base, *workshops, version=version)
    aviso.content.publish(content, by="test")
    return content


def make_contact(aviso, number: str, language: str = "es", channel: str = SMS, **state) -> str:
    """Store a contact as a conversation would; its key."""
    address = Address(channel, number)
    key = aviso.keyring.contact_key(address)
    pipe = aviso.connection.pipeline(transaction=True)
    contacts.save(pipe, key, ContactState(language=language, is_new=False, **state), address=address,
                  keyring=aviso.keyring, is_new=True, now=NOW, ttl_seconds=3600)
    pipe.execute()
    return key


def numbers(n: int, start: int = 0) -> list[str]:
    """n distinct possible US numbers."""
    return [f"+1213555{i:04d}" for i in range(start, start + n)]
