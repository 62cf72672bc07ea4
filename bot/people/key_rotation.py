"""Key rotation: the naming key's guard and `aviso rekey`, which re-encrypts every stored number.

Encrypted values live in a contact's hash (field "num", its number or WhatsApp user id, and "uid", a
user id seen with its number) and in a staff record (its "phone"). Rekeying visits the contacts with
SCAN, saving the cursor after every batch so that a run cut short continues where it stopped; a value
already under the newest key is left alone, so running it twice writes nothing the second time. Each
write is a compare-and-set: a conversation that rewrote the value meanwhile (with the newest key) wins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import redis

from bot.people.aliases import USER_ID_FIELD
from bot.people.identity import Address, InvalidToken, Keyring
from bot.store import keys

BATCH = 500
CONTACT_PREFIX = keys.CONTACT.format(key="")
NUMBER_FIELD = "num"
ENCRYPTED_FIELDS = (NUMBER_FIELD, USER_ID_FIELD)

# Replace a hash field's value only if it is still the one read (the caller read it a moment ago).
_SWAP = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""


class NamingKeyChanged(RuntimeError):
    """AVISO_SECRET_KEY is not the key that named the contacts and staff in this Redis."""


def check_naming_key(connection: redis.Redis, keyring: Keyring) -> None:
    """Record the naming key's fingerprint on first use; raise NamingKeyChanged if another key made it.

    The first time (an upgrade from before the fingerprint), the stored contacts are asked instead: a few
    whose number decrypts must be named by this key, so a wrongly split old list of keys is refused too."""
    mine = keyring.naming_fingerprint()
    stored = connection.get(keys.NAMING_KEY)
    if stored is None and _names_stored_contacts(connection, keyring) is not False:
        connection.set(keys.NAMING_KEY, mine, nx=True)
        stored = connection.get(keys.NAMING_KEY)
    if stored is None or stored.decode() != mine:
        raise NamingKeyChanged(
            "AVISO_SECRET_KEY is not the key that named the contacts and staff in this Redis: with it every "
            "family and staff member would be a stranger. Put the previous AVISO_SECRET_KEY back (rotate "
            "AVISO_ENCRYPTION_KEYS instead; see the README's key rotation section)"
        )


def _names_stored_contacts(connection: redis.Redis, keyring: Keyring, sample: int = 20) -> bool | None:
    """Whether this key names the contacts stored (None: none could be checked, an empty Redis say)."""
    checked = 0
    for name in connection.scan_iter(match=CONTACT_PREFIX + "*", count=1000):
        channel, token = connection.hmget(name, "ch", NUMBER_FIELD)
        if not (channel and token):
            continue
        try:
            handle = keyring.decrypt(token.decode())
        except InvalidToken:
            continue
        if name.decode() == CONTACT_PREFIX + keyring.contact_key(Address(channel.decode(), handle)):
            return True
        checked += 1
        if checked >= sample:  # contacts found by an alias are named otherwise, but not twenty in a row
            return False
    return None if checked == 0 else False


@dataclass
class RekeyReport:
    """What a rekey run did: keys scanned, values re-encrypted, values no configured key could read."""

    scanned: int = 0
    rekeyed: int = 0
    unreadable: int = 0
    resumed: bool = False


def pending_scan(connection: redis.Redis, keyring: Keyring) -> int:
    """How many keys an unfinished run for the same newest key had scanned (0: none to resume)."""
    state = connection.hgetall(keys.REKEY)
    if state.get(b"key", b"").decode() != keyring.encryption_fingerprint():
        return 0
    return int(state.get(b"scanned", 0))


def rekey(connection: redis.Redis, keyring: Keyring, *, batch: int = BATCH,
          progress: Callable[[int], None] = lambda scanned: None) -> RekeyReport:
    """Re-encrypt every stored number under the newest key, resuming an unfinished run for that key."""
    swap = connection.register_script(_SWAP)
    report = RekeyReport()
    fingerprint = keyring.encryption_fingerprint()
    state = connection.hgetall(keys.REKEY)
    cursor = 0
    if state and state.get(b"key", b"").decode() == fingerprint:
        cursor = int(state[b"cursor"])
        report.scanned, report.rekeyed = int(state[b"scanned"]), int(state[b"rekeyed"])
        report.resumed = True
    _rekey_staff(connection, keyring, report)
    started = not report.resumed
    while started or cursor != 0:
        started = False
        cursor, names = connection.scan(cursor, count=batch)
        contacts = [name for name in names if name.startswith(CONTACT_PREFIX.encode())]
        _rekey_contacts(connection, keyring, swap, contacts, report)
        report.scanned += len(names)
        connection.hset(keys.REKEY, mapping={"cursor": cursor, "key": fingerprint, "scanned": report.scanned,
                                             "rekeyed": report.rekeyed})
        progress(len(names))
    connection.delete(keys.REKEY)
    return report


def _rekey_contacts(connection: redis.Redis, keyring: Keyring, swap, names: list[bytes],
                    report: RekeyReport) -> None:
    if not names:
        return
    reader = connection.pipeline(transaction=False)
    for name in names:
        reader.hmget(name, ENCRYPTED_FIELDS)
    writer = connection.pipeline(transaction=False)
    for name, tokens in zip(names, reader.execute(), strict=True):
        for field, token in zip(ENCRYPTED_FIELDS, tokens, strict=True):
            fresh = _fresh(keyring, token.decode() if token else "", report)
            if fresh is not None:
                swap(keys=[name], args=[field, token, fresh], client=writer)
    report.rekeyed += sum(writer.execute())


def _rekey_staff(connection: redis.Redis, keyring: Keyring, report: RekeyReport) -> None:
    swap = connection.register_script(_SWAP)
    for staff_id, raw in connection.hgetall(keys.STAFF).items():
        record = json.loads(raw)
        fresh = _fresh(keyring, record.get("phone", ""), report)
        if fresh is not None:
            record["phone"] = fresh
            report.rekeyed += swap(keys=[keys.STAFF], args=[staff_id, raw, json.dumps(record)])


def _fresh(keyring: Keyring, token: str, report: RekeyReport) -> str | None:
    """The value under the newest key, or None when it is missing, current already, or unreadable."""
    if not token or keyring.is_current(token):
        return None
    try:
        return keyring.reencrypt(token)
    except InvalidToken:
        report.unreadable += 1
        return None
