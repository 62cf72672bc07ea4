"""A contact's state: what Aviso remembers of a conversation (the engine reads it, contacts stores it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ContactState:
    """What Aviso remembers of a conversation: language, place in the menus, pending question."""

    language: str | None = None
    at: str | None = None
    pending: str | None = None
    pending_until: datetime | None = None
    choices: tuple[str, ...] = ()  # what the numbers of the last numbered question stand for
    schools: tuple[str, ...] = ()  # codes of the schools whose alerts the contact follows
    workshops: tuple[str, ...] = ()  # ids of the workshops the contact holds a seat for
    waitlisted: tuple[str, ...] = ()  # ids of the workshops the contact is on the waitlist for
    opted_out: bool = False
    is_new: bool = True
    voice_calls: bool = False  # asked to be called for urgent alerts (VOICE / VOZ)
    last: str | None = None  # the last rights or resources text read: what SOURCES answers about
