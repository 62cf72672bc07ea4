"""Aliases: the other names one family's contact answers to, so a number and a WhatsApp user id stay one family.

WhatsApp users who adopt a username may reach Aviso with their business-scoped user id (BSUID) alone,
after payloads that carried both it and their number. Each name is a keyed hash of channel and number
or user id (identity.Keyring.contact_key); the contact lives under the first name Aviso saw it by, and
every other name seen with it points there (keys.CONTACT_ALIAS).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.people.identity import Address, Keyring
from bot.store import keys

ALIASES_FIELD = "aliases"  # the contact's alias names, comma-separated (FORGET erases them)
USER_ID_FIELD = "uid"  # the contact's WhatsApp user id, Fernet-encrypted, when its num is its number


def alias_redis_key(name: str) -> str:
    """The Redis key of an alias name."""
    return keys.CONTACT_ALIAS.format(key=name)


def listed(value: bytes | str | None) -> tuple[str, ...]:
    """The alias names in a contact's aliases field."""
    text = value.decode() if isinstance(value, bytes) else value or ""
    return tuple(name for name in text.split(",") if name)


@dataclass(frozen=True)
class Naming:
    """Which contact one message belongs to, and the message's other names that must lead there."""

    contact_key: str
    aliases: tuple[str, ...]


def naming(names: Sequence[str], contact_key: str) -> Naming:
    """The naming of a message whose names (own number first, then user id) resolved to contact_key."""
    return Naming(contact_key, tuple(name for name in names if name != contact_key))


def contact_fields(
    fields: Mapping[bytes, bytes], addresses: Sequence[Address], found: Naming, keyring: Keyring,
) -> dict[str, str]:
    """Fields to add to the contact's hash: a grown alias list; the encrypted user id, the first time it
    comes with a contact named otherwise (so the family can be reached by it should the number go)."""
    extra = {}
    known = listed(fields.get(ALIASES_FIELD.encode()))
    if not set(found.aliases) <= set(known):
        extra[ALIASES_FIELD] = ",".join(sorted({*known, *found.aliases}))
    user_id = next((address for address in addresses if address.is_user_id), None)
    if (user_id is not None and USER_ID_FIELD.encode() not in fields
            and keyring.contact_key(user_id) != found.contact_key):
        extra[USER_ID_FIELD] = keyring.encrypt(user_id.handle)
    return extra


def lifetime(contact_ttl: int | None, subscribed: bool, kept_until: Sequence[int], now: float, idle_ttl: int) -> int:
    """Seconds an alias lives (0: until a message changes it), so that it never outlives its contact.

    A subscriber's contact stays until a message of the family's ends that (and that message sets the
    alias again). A contact kept only by workshop sign-ups is let expire when its workshops' data is
    deleted (kept_until, epoch seconds; no message is involved then): its aliases expire idle_ttl later.
    """
    if contact_ttl is not None:
        return contact_ttl
    if subscribed:
        return 0
    return max(max(kept_until, default=0) - int(now), 0) + idle_ttl
