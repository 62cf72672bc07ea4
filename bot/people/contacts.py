"""Contacts: the per-family record in Redis, keyed by a keyed hash, the number encrypted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import redis

from bot.people import audience_counts
from bot.people.identity import Address, Keyring
from bot.people.state import ContactState
from bot.store import keys

# Later features (alert subscriptions, workshop sign-ups) register here what FORGET must also erase.
ForgetHook = Callable[[redis.Redis, str], None]
_FORGET_HOOKS: list[ForgetHook] = []


def on_forget(hook: ForgetHook) -> ForgetHook:
    """Register a function(connection, contact_key) that erases a feature's data about a contact."""
    _FORGET_HOOKS.append(hook)
    return hook


def contact_redis_key(contact_key: str) -> str:
    """The Redis key of a contact's hash."""
    return keys.CONTACT.format(key=contact_key)


def state_from_hash(fields: dict[bytes, bytes]) -> ContactState:
    """Rebuild the engine's view of a contact from its Redis hash."""
    if not fields:
        return ContactState()
    text = {k.decode(): v.decode() for k, v in fields.items() if k != b"num"}
    until = text.get("pending_until")
    return ContactState(
        language=text.get("lang") or None,
        at=text.get("at") or None,
        pending=text.get("pending") or None,
        pending_until=datetime.fromisoformat(until) if until else None,
        choices=_codes(text.get("choices")),
        schools=_codes(text.get("schools")),
        workshops=_codes(text.get("workshops")),
        waitlisted=_codes(text.get("waitlisted")),
        opted_out=text.get("opted_out") == "1",
        voice_calls=text.get("voice") == "1",
        is_new=False,
        last=text.get("last") or None,
    )


def _codes(value: str | None) -> tuple[str, ...]:
    return tuple(code for code in (value or "").split(",") if code)


STATE_FIELDS = ("lang", "at", "pending", "pending_until", "choices", "schools", "opted_out", "voice", "last")
# Written only by registrations.py's scripts (with the workshop's seats, atomically), never by save():
# a conversation must not write back a sign-up list that a promotion changed meanwhile.
WORKSHOP_FIELDS = ("workshops", "waitlisted")


def state_fields(state: ContactState) -> dict[str, str]:
    """The hash fields that store a contact's conversation state (empty ones are left out)."""
    fields = {
        "lang": state.language or "",
        "at": state.at or "",
        "pending": state.pending or "",
        "pending_until": state.pending_until.isoformat() if state.pending_until else "",
        "choices": ",".join(state.choices),
        "schools": ",".join(state.schools),
        "opted_out": "1" if state.opted_out else "",
        "voice": "1" if state.voice_calls else "",  # calls for urgent alerts (broadcasts.calls)
        "last": state.last or "",  # a text key, never anything the family wrote
    }
    return {name: value for name, value in fields.items() if value}


@dataclass(frozen=True)
class ContactWrite:
    """What storing a contact after a message changes in its hash."""

    fields: dict[str, str]  # set
    emptied: tuple[str, ...]  # deleted (state that is gone)
    ttl_seconds: int | None  # the hash expires after this; None: it stays (a subscriber or registrant)


def changes(
    state: ContactState, *, address: Address, keyring: Keyring, is_new: bool, now: datetime, ttl_seconds: int,
) -> ContactWrite:
    """The writes that store a contact after a message."""
    fields = state_fields(state)
    if is_new:
        fields["num"] = keyring.encrypt(address.handle)  # a number, or a WhatsApp user id
        fields["ch"] = address.channel
    if address.channel == "whatsapp":
        fields["wa_seen"] = str(int(now.timestamp()))  # opens WhatsApp's 24-hour session window
    emptied = tuple(field for field in STATE_FIELDS if field not in fields)
    # A subscriber stays until it leaves, stops or forgets; a registrant, until its workshops are over.
    kept = bool(state.schools or state.workshops or state.waitlisted)
    return ContactWrite(fields, emptied, None if kept else ttl_seconds)


def save(
    pipe: redis.client.Pipeline,
    contact_key: str,
    state: ContactState,
    *,
    address: Address,
    keyring: Keyring,
    is_new: bool,
    now: datetime,
    ttl_seconds: int,
) -> None:
    """Queue the writes that store a contact after a message (on a pipeline)."""
    name = contact_redis_key(contact_key)
    write = changes(state, address=address, keyring=keyring, is_new=is_new, now=now, ttl_seconds=ttl_seconds)
    if write.fields:  # an old contact whose state just emptied (STOP then START, no language) has none
        pipe.hset(name, mapping=write.fields)
    if write.emptied:
        pipe.hdel(name, *write.emptied)
    if write.ttl_seconds is None:
        pipe.persist(name)
    else:
        pipe.expire(name, write.ttl_seconds)


def follow(pipe: redis.client.Pipeline, contact_key: str, school: str) -> None:
    """Queue adding a contact to a school's subscribers."""
    pipe.sadd(keys.SCHOOL_SUBSCRIBERS.format(code=school), contact_key)


def unfollow(pipe: redis.client.Pipeline, contact_key: str, school: str) -> None:
    """Queue removing a contact from a school's subscribers."""
    pipe.srem(keys.SCHOOL_SUBSCRIBERS.format(code=school), contact_key)


def forget(connection: redis.Redis, contact_key: str) -> None:
    """Erase the contact and its school subscriptions (services.conversations.forget frees its seats first)."""
    for hook in _FORGET_HOOKS:
        hook(connection, contact_key)
    name = contact_redis_key(contact_key)
    schools, aliases = (_codes((value or b"").decode()) for value in connection.hmget(name, "schools", "aliases"))
    pipe = connection.pipeline(transaction=True)
    pipe.eval(audience_counts.UNCOUNT, 1, name, contact_key)
    for school in schools:
        unfollow(pipe, contact_key, school)
    for alias in aliases:  # the contact's other names (a WhatsApp user id seen with its number): see aliases.py
        pipe.delete(keys.CONTACT_ALIAS.format(key=alias))
    pipe.delete(name)
    pipe.execute()


def number_of(connection: redis.Redis, keyring: Keyring, contact_key: str) -> str | None:
    """Decrypt a contact's number (or WhatsApp user id: the handle Twilio sends to), for sending only."""
    token = connection.hget(contact_redis_key(contact_key), "num")
    return keyring.decrypt(token.decode()) if token else None
