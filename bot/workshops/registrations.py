"""Registrations: workshop seats, waitlists and each contact's own sign-ups, in Redis.

Every change is one Lua script, so the capacity check, the seat, the waitlist and the contact's own
list (fields "workshops" and "waitlisted" of its contact hash) change together or not at all. A freed
seat goes to the first on the waitlist in the same step; the promoted contacts wait in a set until a
job has sent them the news (reminders.send_promotions).

Contacts are named by their keyed hash only: nothing here holds a phone number. A capacity of 0 (or
less) means no limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import redis
from redis.exceptions import NoScriptError

from bot.content.model import Content, Workshop
from bot.conversation.turn import CancelRegistration, Effect, Register
from bot.people.contacts import contact_redis_key
from bot.store import keys

SEAT, WAITLIST, FULL, GONE = "seat", "waitlist", "full", "gone"
ALREADY_SEAT, ALREADY_WAITLIST = "already_seat", "already_waitlist"
CONTACT_PREFIX = keys.CONTACT.format(key="")

_LIB = """
local function csv_add(hash, field, item)
  local csv = redis.call('HGET', hash, field)
  if not csv or csv == '' then redis.call('HSET', hash, field, item) return end
  for part in string.gmatch(csv, '[^,]+') do if part == item then return end end
  redis.call('HSET', hash, field, csv .. ',' .. item)
end
local function csv_remove(hash, field, item)
  local csv = redis.call('HGET', hash, field)
  if not csv then return end
  local kept = {}
  for part in string.gmatch(csv, '[^,]+') do if part ~= item then kept[#kept + 1] = part end end
  if #kept == 0 then redis.call('HDEL', hash, field) else redis.call('HSET', hash, field, table.concat(kept, ',')) end
end
-- Fill free seats from the waitlist, first come first served. A contact that is gone leaves the
-- waitlist; one that texted STOP keeps its place but is passed over (it could not hear the news).
local function promote(seats, waitlist, promoted, id, capacity, prefix)
  local given = {}
  local waiting = redis.call('ZRANGE', waitlist, 0, -1, 'WITHSCORES')
  for i = 1, #waiting, 2 do
    if capacity > 0 and redis.call('ZCARD', seats) >= capacity then break end
    local member, score = waiting[i], waiting[i + 1]
    local contact = prefix .. member
    if redis.call('EXISTS', contact) == 0 then
      redis.call('ZREM', waitlist, member)
    elseif redis.call('HGET', contact, 'opted_out') ~= '1' then
      redis.call('ZREM', waitlist, member)
      redis.call('ZADD', seats, score, member)
      csv_remove(contact, 'waitlisted', id)
      csv_add(contact, 'workshops', id)
      redis.call('SADD', promoted, member)
      given[#given + 1] = member
    end
  end
  return given
end
"""

# KEYS seats, waitlist, contact, meta, index. ARGV contact key, workshop id, capacity, waitlist ok (1/0),
# now (ms), keep-until (epoch s).
_REGISTER = _LIB + """
if redis.call('EXISTS', KEYS[3]) == 0 then return 'gone' end
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 'already_seat' end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 'already_waitlist' end
local capacity = tonumber(ARGV[3])
local outcome
if capacity <= 0 or (redis.call('ZCARD', KEYS[1]) < capacity and redis.call('ZCARD', KEYS[2]) == 0) then
  redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
  csv_add(KEYS[3], 'workshops', ARGV[2])
  outcome = 'seat'
elseif ARGV[4] == '1' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
  csv_add(KEYS[3], 'waitlisted', ARGV[2])
  outcome = 'waitlist'
else
  return 'full'
end
redis.call('PERSIST', KEYS[3])
redis.call('HSET', KEYS[4], 'capacity', ARGV[3])
redis.call('SADD', KEYS[5], ARGV[2])
for _, key in ipairs({KEYS[1], KEYS[2], KEYS[4]}) do redis.call('EXPIREAT', key, ARGV[6]) end
return outcome
"""

# KEYS seats, waitlist, contact, meta, promoted, registration. ARGV contact key, workshop id,
# capacity ('' = as last stored), contact key prefix. Returns {was, promoted...}.
_CANCEL = _LIB + """
local was = 'none'
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then was = 'seat'
elseif redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then was = 'waitlist' end
csv_remove(KEYS[3], 'workshops', ARGV[2])
csv_remove(KEYS[3], 'waitlisted', ARGV[2])
redis.call('DEL', KEYS[6])
redis.call('SREM', KEYS[5], ARGV[1])
local capacity = ARGV[3]
if capacity == '' then capacity = redis.call('HGET', KEYS[4], 'capacity') end
local given = {}
if was == 'seat' and capacity then given = promote(KEYS[1], KEYS[2], KEYS[5], ARGV[2], tonumber(capacity), ARGV[4]) end
return {was, unpack(given)}
"""

# KEYS seats, waitlist, meta, promoted. ARGV workshop id, capacity, contact key prefix.
_PROMOTE = _LIB + """
redis.call('HSET', KEYS[3], 'capacity', ARGV[2])
return promote(KEYS[1], KEYS[2], KEYS[4], ARGV[1], tonumber(ARGV[2]), ARGV[3])
"""

# KEYS seats, waitlist, contact, registration, promoted. ARGV contact key, workshop id, contact ttl (s).
_DROP = _LIB + """
local was = 'none'
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then was = 'seat'
elseif redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then was = 'waitlist' end
redis.call('SREM', KEYS[5], ARGV[1])
redis.call('DEL', KEYS[4])
if redis.call('EXISTS', KEYS[3]) == 1 then
  csv_remove(KEYS[3], 'workshops', ARGV[2])
  csv_remove(KEYS[3], 'waitlisted', ARGV[2])
  local kept = redis.call('HMGET', KEYS[3], 'schools', 'workshops', 'waitlisted')
  if not kept[1] and not kept[2] and not kept[3] and redis.call('TTL', KEYS[3]) == -1 then
    redis.call('EXPIRE', KEYS[3], ARGV[3])
  end
end
return was
"""

# Exactly-once sending. KEYS seats, waitlist, contact, registration. ARGV contact key, marker,
# need (seat | any), now (ms), lease (ms), token, signed up before (ms, or ''), keep-until (epoch s).
# Returns {state, lang, channel, claimed-at of a stale claim}.
_CLAIM = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score and ARGV[3] == 'any' then score = redis.call('ZSCORE', KEYS[2], ARGV[1]) end
if not score then return {'not_registered'} end
if ARGV[7] ~= '' and tonumber(score) >= tonumber(ARGV[7]) then return {'signed_up_later'} end
local info = redis.call('HMGET', KEYS[3], 'lang', 'ch', 'opted_out', 'num')
if not info[4] then return {'gone'} end
if info[3] == '1' then return {'opted_out'} end
local claim = 'sending:' .. ARGV[4] .. ':' .. ARGV[6]
local current = redis.call('HGET', KEYS[4], ARGV[2])
if current then
  if string.sub(current, 1, 8) ~= 'sending:' then return {'done'} end
  local at = tonumber(string.match(current, '^sending:(%d+)'))
  if at and tonumber(ARGV[4]) - at < tonumber(ARGV[5]) then return {'busy'} end
  redis.call('HSET', KEYS[4], ARGV[2], claim)
  return {'reclaimed', info[1] or '', info[2] or '', tostring(at or 0)}
end
redis.call('HSET', KEYS[4], ARGV[2], claim)
redis.call('EXPIREAT', KEYS[4], ARGV[8])
return {'claimed', info[1] or '', info[2] or '', ''}
"""

# KEYS registration. ARGV marker, the claim it must still hold, the final value ('' releases the claim).
_SETTLE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""


class _Lua:
    """A script run by its sha (loaded on first use), or sent whole inside a pipeline (no extra round trip)."""

    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, client, keys_: Sequence[str], args: Sequence) -> object:
        if isinstance(client, redis.client.Pipeline):
            return client.eval(self.source, len(keys_), *keys_, *args)
        try:
            return client.evalsha(self.sha, len(keys_), *keys_, *args)
        except NoScriptError:
            return client.eval(self.source, len(keys_), *keys_, *args)


REGISTER, CANCEL, PROMOTE, DROP = _Lua(_REGISTER), _Lua(_CANCEL), _Lua(_PROMOTE), _Lua(_DROP)
CLAIM, SETTLE = _Lua(_CLAIM), _Lua(_SETTLE)


@dataclass(frozen=True)
class Result:
    """What a Register or CancelRegistration effect did."""

    workshop: str
    outcome: str  # seat | waitlist | full | gone | already_seat | already_waitlist (register);
    #               seat | waitlist | none: what was given up (cancel)
    promoted: tuple[str, ...] = ()  # contact keys that got the freed seat
    cancelled: bool = False  # the result of a CancelRegistration (else of a Register)


def seats_key(workshop_id: str) -> str:
    """The sorted set of a workshop's seat holders."""
    return keys.WORKSHOP_SEATS.format(id=workshop_id)


def waitlist_key(workshop_id: str) -> str:
    """The sorted set of a workshop's waitlist."""
    return keys.WORKSHOP_WAITLIST.format(id=workshop_id)


def registration_key(workshop_id: str, contact_key: str) -> str:
    """The exactly-once record of messages sent for one registration."""
    return keys.WORKSHOP_REGISTRATION.format(id=workshop_id, contact=contact_key)


def keep_until(workshop: Workshop) -> int:
    """When a workshop's registration data expires at the latest (epoch seconds)."""
    return int(workshop.ends.timestamp()) + keys.WORKSHOP_RETENTION_SECONDS


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def register(client, contact_key: str, workshop: Workshop, now: datetime, *, waitlist: bool = False):
    """Take a seat if one is free (and nobody waits), else join the waitlist if allowed; see Result."""
    return REGISTER(
        client,
        [seats_key(workshop.id), waitlist_key(workshop.id), contact_redis_key(contact_key),
         keys.WORKSHOP_META.format(id=workshop.id), keys.WORKSHOPS_INDEX],
        [contact_key, workshop.id, workshop.capacity, "1" if waitlist else "0", _ms(now), keep_until(workshop)],
    )


def cancel(client, contact_key: str, workshop_id: str, capacity: int | None = None):
    """Give up a seat or waitlist place; a freed seat goes to the waitlist's first (promoted keys returned)."""
    return CANCEL(
        client,
        [seats_key(workshop_id), waitlist_key(workshop_id), contact_redis_key(contact_key),
         keys.WORKSHOP_META.format(id=workshop_id), keys.WORKSHOP_PROMOTED.format(id=workshop_id),
         registration_key(workshop_id, contact_key)],
        [contact_key, workshop_id, "" if capacity is None else capacity, CONTACT_PREFIX],
    )


def _result(workshop_id: str, answer) -> Result:
    if isinstance(answer, list):  # a cancel's {was, promoted...}
        return Result(workshop_id, _text(answer[0]), tuple(_text(k) for k in answer[1:]), cancelled=True)
    return Result(workshop_id, _text(answer))


def apply(connection: redis.Redis, contact_key: str, effects: Iterable[Effect], content: Content,
          now: datetime) -> list[Result]:
    """Apply a turn's Register / CancelRegistration effects in one round trip; their results in order."""
    wanted = [e for e in effects if isinstance(e, Register | CancelRegistration)]
    if not wanted:
        return []
    pipe = connection.pipeline(transaction=True)
    for effect in wanted:
        workshop = content.workshop(effect.workshop)
        if isinstance(effect, Register):
            if workshop is None:
                pipe.echo(GONE)
            else:
                register(pipe, contact_key, workshop, now, waitlist=effect.waitlist)
        else:
            cancel(pipe, contact_key, effect.workshop, workshop.capacity if workshop else None)
    return [_result(effect.workshop, answer) for effect, answer in zip(wanted, pipe.execute(), strict=True)]


def promote(connection: redis.Redis, workshop: Workshop) -> list[str]:
    """Give free seats (after a capacity increase) to the waitlist; the contact keys promoted."""
    answer = PROMOTE(
        connection,
        [seats_key(workshop.id), waitlist_key(workshop.id), keys.WORKSHOP_META.format(id=workshop.id),
         keys.WORKSHOP_PROMOTED.format(id=workshop.id)],
        [workshop.id, workshop.capacity, CONTACT_PREFIX],
    )
    return [_text(k) for k in answer]


def drop(connection: redis.Redis, workshop_id: str, contact_key: str, contact_ttl_seconds: int) -> str:
    """Remove a registration without promoting anyone (the workshop is cancelled or over)."""
    return _text(DROP(
        connection,
        [seats_key(workshop_id), waitlist_key(workshop_id), contact_redis_key(contact_key),
         registration_key(workshop_id, contact_key), keys.WORKSHOP_PROMOTED.format(id=workshop_id)],
        [contact_key, workshop_id, contact_ttl_seconds],
    ))


def close(connection: redis.Redis, workshop_id: str, contact_ttl_seconds: int) -> int:
    """Delete everything about a workshop's registrations (it is over, or cancelled and announced)."""
    everyone = registrants(connection, workshop_id, waitlist=True)
    for contact_key in everyone:
        drop(connection, workshop_id, contact_key, contact_ttl_seconds)
    pipe = connection.pipeline(transaction=True)
    for name in (keys.WORKSHOP_SEATS, keys.WORKSHOP_WAITLIST, keys.WORKSHOP_META, keys.WORKSHOP_PROMOTED):
        pipe.delete(name.format(id=workshop_id))
    pipe.srem(keys.WORKSHOPS_INDEX, workshop_id)
    pipe.execute()
    return len(everyone)


def forget_contact(connection: redis.Redis, contact_key: str) -> list[str]:
    """FORGET: give up every seat and waitlist place (promoting others); the workshops that promoted someone,
    whose promotion notices the caller queues (schedule.enqueue_promotions)."""
    fields = connection.hmget(contact_redis_key(contact_key), "workshops", "waitlisted")
    ids = [i for value in fields if value for i in value.decode().split(",") if i]
    promoted = []
    for workshop_id in dict.fromkeys(ids):
        if _result(workshop_id, cancel(connection, contact_key, workshop_id)).promoted:
            promoted.append(workshop_id)
    return promoted


def registrants(connection: redis.Redis, workshop_id: str, *, waitlist: bool = False) -> list[str]:
    """The contact keys holding a seat (and, with waitlist, those waiting), in sign-up order."""
    holders = [_text(k) for k in connection.zrange(seats_key(workshop_id), 0, -1)]
    if waitlist:
        holders += [_text(k) for k in connection.zrange(waitlist_key(workshop_id), 0, -1)]
    return holders


@dataclass(frozen=True)
class Counts:
    """A workshop's registrations, counted (no contact named)."""

    workshop: str
    seats: int
    waitlist: int
    seats_by_language: dict[str, int]
    waitlist_by_language: dict[str, int]


@dataclass(frozen=True)
class SheetRow:
    """One line of an attendance sheet: a number, a language, seat or waitlist. Never a name or number."""

    number: int
    language: str
    seat: bool


def _languages(connection: redis.Redis, contact_keys: list[str]) -> list[str]:
    pipe = connection.pipeline(transaction=False)
    for contact_key in contact_keys:
        pipe.hget(contact_redis_key(contact_key), "lang")
    return [_text(lang) if lang else "-" for lang in pipe.execute()]


def counts(connection: redis.Redis, workshop_id: str) -> Counts:
    """Seats and waitlist of a workshop, in total and per language."""
    seated = registrants(connection, workshop_id)
    waiting = [_text(k) for k in connection.zrange(waitlist_key(workshop_id), 0, -1)]
    by_language: list[dict[str, int]] = []
    for group in (seated, waiting):
        tally: dict[str, int] = {}
        for lang in _languages(connection, group):
            tally[lang] = tally.get(lang, 0) + 1
        by_language.append(dict(sorted(tally.items())))
    return Counts(workshop_id, len(seated), len(waiting), by_language[0], by_language[1])


def attendance(connection: redis.Redis, workshop_id: str) -> list[SheetRow]:
    """The attendance sheet's rows: seat holders in sign-up order, then the waitlist."""
    seated = registrants(connection, workshop_id)
    waiting = [_text(k) for k in connection.zrange(waitlist_key(workshop_id), 0, -1)]
    languages = _languages(connection, seated + waiting)
    return [SheetRow(n, lang, n <= len(seated)) for n, lang in enumerate(languages, 1)]


def registered_workshops(connection: redis.Redis) -> list[str]:
    """Ids of the workshops that have registration data."""
    return sorted(_text(i) for i in connection.smembers(keys.WORKSHOPS_INDEX))


def seats_left_after(state, results: list[Result]) -> dict[str, int]:
    """Seats to tell the engine about when a sign-up came out otherwise than the engine assumed.

    The engine assumes a seat is free (or, joining the waitlist, that none is); the store may say
    the last seat just went (0 left) or that one freed up (1 left). Empty when all went as assumed.
    """
    surprises = {}
    for result in results:
        if result.cancelled:
            continue
        expected = SEAT if result.workshop in state.workshops else WAITLIST
        if result.outcome == FULL or (result.outcome == WAITLIST and expected == SEAT):
            surprises[result.workshop] = 0
        elif result.outcome == SEAT and expected == WAITLIST:
            surprises[result.workshop] = 1
    return surprises
