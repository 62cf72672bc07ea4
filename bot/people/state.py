"""A contact's state: what Aviso remembers of a conversation (the engine reads it, contacts stores it)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import TypeVar

Frozen = TypeVar("Frozen")


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


def evolve(instance: Frozen, **changes) -> Frozen:
    """dataclasses.replace for a frozen dataclass without __post_init__, at a fraction of the cost: a copy of its
    fields, not a call of its generated __init__ (one object.__setattr__ per field). The engine copies the
    contact's state and its turn several times per message (6% of a webhook answer under load)."""
    cls = type(instance)
    names = _field_names.get(cls)
    if names is None:
        names = _field_names[cls] = frozenset(f.name for f in fields(cls)) if _plain(cls) else frozenset()
    if not names or not changes.keys() <= names:
        return replace(instance, **changes)  # its checks and errors (an unknown field, a __post_init__)
    copy = object.__new__(cls)
    values = copy.__dict__
    values.update(instance.__dict__)
    values.update(changes)
    return copy


_field_names: dict[type, frozenset[str]] = {}


def _plain(cls: type) -> bool:
    """Whether every field is set by __init__ as given (no __post_init__, no slots, no init=False)."""
    return (not hasattr(cls, "__post_init__") and not hasattr(cls, "__slots__")
            and all(f.init for f in fields(cls)))
