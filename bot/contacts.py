"""Contacts: the per-family record in Redis, keyed by a keyed hash, the number encrypted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import redis

from . import keys
from .engine import ContactState
from .identity import Address, Keyring

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
    text = {k.decode(): v.decode() for k, v in fields.items()}
    until = text.get("pending_until")
    return ContactState(
        language=text.get("lang") or None,
        at=text.get("at") or None,
        pending=text.get("pending") or None,
        pending_until=datetime.fromisoformat(until) if until else None,
        opted_out=text.get("opted_out") == "1",
        is_new=False,
    )


def state_fields(state: ContactState) -> dict[str, str]:
    """The hash fields that store a contact's conversation state."""
    return {
        "lang": state.language or "",
        "at": state.at or "",
        "pending": state.pending or "",
        "pending_until": state.pending_until.isoformat() if state.pending_until else "",
        "opted_out": "1" if state.opted_out else "0",
    }


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
    fields = state_fields(state)
    if is_new:
        fields["num"] = keyring.encrypt(address.e164)
        fields["ch"] = address.channel
    if address.channel == "whatsapp":
        fields["wa_seen"] = str(int(now.timestamp()))  # opens WhatsApp's 24-hour session window
    pipe.hset(name, mapping=fields)
    pipe.expire(name, ttl_seconds)


def forget(connection: redis.Redis, contact_key: str) -> None:
    """Erase everything Aviso holds about a contact."""
    for hook in _FORGET_HOOKS:
        hook(connection, contact_key)
    connection.delete(contact_redis_key(contact_key))


def number_of(connection: redis.Redis, keyring: Keyring, contact_key: str) -> str | None:
    """Decrypt a contact's number, for sending only."""
    token = connection.hget(contact_redis_key(contact_key), "num")
    return keyring.decrypt(token.decode()) if token else None
