"""Audience counts: how many reachable subscribers each school (and the district) has per language and
channel, kept up to date in the same Redis script as every change to a subscriber, so the home page and
the preview read a few counters instead of the whole audience.

A contact counts for each school in its hash's `schools` field while it has a language or channel and
has not opted out. Every script that changes one of those fields calls aviso_contribution before and
after the change and aviso_count with -1 and +1: the counters cannot drift. WhatsApp subscribers are also
kept in a sorted set per scope and language, scored by their last message (the 24-hour window)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import redis

from bot.store import keys

SMS, WHATSAPP = "sms", "whatsapp"
CHUNK = 1000  # contacts read per round trip when rebuilding

# The contact's hash fields that aviso_contribution reads: a write that touches none of them leaves the counts.
COUNTED_FIELDS = frozenset({"schools", "lang", "ch", "opted_out", "wa_seen"})
LUA = """
local function aviso_contribution(hkey)
  local f = redis.call('HMGET', hkey, 'schools', 'lang', 'ch', 'opted_out', 'wa_seen')
  if (not f[2] and not f[3]) or f[4] == '1' or not f[1] or f[1] == '' then return nil end
  local ch = f[3] or ''
  if ch == '' then ch = 'sms' end
  return {schools = f[1], lang = f[2] or '', ch = ch, seen = tonumber(f[5]) or 0}
end
local function aviso_scopes(c)  -- the district's counters, then each of the contact's schools'
  local scopes = {'""" + keys.COUNTS_ALL + """'}
  for code in string.gmatch(c.schools, '[^,]+') do
    table.insert(scopes, '""" + keys.COUNTS_SCHOOL + """' .. code)
  end
  return scopes
end
local function aviso_count(contact, c, delta)
  if not c then return end
  local field = c.lang .. '|' .. c.ch
  for _, scope in ipairs(aviso_scopes(c)) do
    if redis.call('HINCRBY', scope, field, delta) <= 0 then redis.call('HDEL', scope, field) end
    if c.ch == 'whatsapp' then
      if delta < 0 then redis.call('ZREM', scope .. ':wa:' .. c.lang, contact)
      else redis.call('ZADD', scope .. ':wa:' .. c.lang, c.seen, contact) end
    end
  end
end
-- A contact's contribution changed from before to after. When only its last WhatsApp message moved (every
-- WhatsApp message does that), only the window's sorted sets move: the same result as -1 then +1, in a
-- third of the calls.
local function aviso_move(contact, before, after)
  if before and after and before.schools == after.schools and before.lang == after.lang and before.ch == after.ch then
    if before.seen ~= after.seen and after.ch == 'whatsapp' then
      for _, scope in ipairs(aviso_scopes(after)) do
        redis.call('ZADD', scope .. ':wa:' .. after.lang, after.seen, contact)
      end
    end
    return
  end
  aviso_count(contact, before, -1)
  aviso_count(contact, after, 1)
end
"""

# A contact stops counting (before FORGET deletes it). KEYS: its hash; ARGV: its contact key.
UNCOUNT = LUA + "aviso_count(ARGV[1], aviso_contribution(KEYS[1]), -1) return 1"
# Twilio said the number opted out at the carrier (21610): mark it, and it stops counting.
MARK_OPTED_OUT = LUA + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local before = aviso_contribution(KEYS[1])
redis.call('HSET', KEYS[1], 'opted_out', '1')
redis.call('HDEL', KEYS[1], 'voice')  -- no calls either (broadcasts.calls)
aviso_count(ARGV[1], before, -1)
return 1
"""
# Write a contact's fields and its school sets with its counts (for imports and tests that seed families).
# KEYS: its hash; ARGV: contact key, number of field pairs, pairs..., then the school sets to join.
WRITE = LUA + """
local before = aviso_contribution(KEYS[1])
local n = tonumber(ARGV[2])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 3, 2 + 2 * n)) end
for i = 3 + 2 * n, #ARGV do redis.call('SADD', ARGV[i], ARGV[1]) end
aviso_count(ARGV[1], before, -1)
aviso_count(ARGV[1], aviso_contribution(KEYS[1]), 1)
return 1
"""


@dataclass(frozen=True)
class Tally:
    """Reachable subscribers of one language: by SMS, by WhatsApp, and WhatsApp within the 24 h window."""

    sms: int = 0
    whatsapp: int = 0
    whatsapp_in_window: int = 0


def scope(school: str | None) -> str:
    """The counters of one school (None: the district, each family once)."""
    return keys.COUNTS_ALL if school is None else keys.COUNTS_SCHOOL + school


def per_language(connection: redis.Redis, school: str | None) -> dict[str, int]:
    """Reachable subscribers per language ('' for none chosen), most first."""
    tally: Counter = Counter()
    for field, count in connection.hgetall(scope(school)).items():
        language, _, _ = field.decode().partition("|")
        tally[language] += int(count)
    return dict(sorted(((k, v) for k, v in tally.items() if v > 0), key=lambda item: (-item[1], item[0])))


def tallies(connection: redis.Redis, school: str | None, window_start: float) -> dict[str, Tally]:
    """Per language: SMS, WhatsApp, and WhatsApp subscribers whose last message is after window_start."""
    counts = connection.hgetall(scope(school))
    found: dict[str, list[int]] = {}
    for field, count in counts.items():
        language, _, channel = field.decode().partition("|")
        row = found.setdefault(language, [0, 0])
        row[channel == WHATSAPP] += int(count)
    languages = [lang for lang, (_, wa) in found.items() if wa]
    pipe = connection.pipeline(transaction=False)
    for language in languages:
        pipe.zcount(f"{scope(school)}:wa:{language}", window_start, "+inf")
    in_window = dict(zip(languages, pipe.execute(), strict=True))
    return {lang: Tally(sms, wa, in_window.get(lang, 0)) for lang, (sms, wa) in sorted(found.items())}


def cohorts(connection: redis.Redis, school: str | None, languages: tuple[str, ...] | None, now: float,
            window_seconds: int) -> dict[str, Counter]:
    """Per language, (channel, WhatsApp time or None) -> subscribers, as a preview groups its audience: a
    WhatsApp time of now stands for those inside the window, None for those outside it."""
    groups = {}
    for language, tally in tallies(connection, school, now - window_seconds).items():
        if languages is not None and language not in languages:
            continue
        found = Counter({(SMS, None): tally.sms, (WHATSAPP, int(now)): tally.whatsapp_in_window,
                         (WHATSAPP, None): tally.whatsapp - tally.whatsapp_in_window})
        groups[language] = Counter({k: n for k, n in found.items() if n > 0})
    return {language: found for language, found in groups.items() if found}


def write_contact(connection: redis.Redis, contact_key: str, fields: dict[str, str], schools: tuple[str, ...]) -> None:
    """Store a contact's fields and follow these schools, counts included, in one step."""
    connection.eval(WRITE, 1, keys.CONTACT.format(key=contact_key), contact_key, len(fields),
                    *(item for pair in fields.items() for item in pair),
                    *(keys.SCHOOL_SUBSCRIBERS.format(code=code) for code in schools))


def _subscribers(connection: redis.Redis):
    """Each reachable (school, contact key, language, channel, WhatsApp time) from the data itself."""
    pattern = keys.SCHOOL_SUBSCRIBERS.format(code="*")
    prefix, suffix = pattern.split("*")
    for name in connection.scan_iter(match=pattern, count=1000):
        code = name.decode()[len(prefix):-len(suffix)]
        members = [m.decode() for m in connection.sscan_iter(name, count=CHUNK)]
        for start in range(0, len(members), CHUNK):
            chunk = members[start:start + CHUNK]
            pipe = connection.pipeline(transaction=False)
            for member in chunk:
                pipe.hmget(keys.CONTACT.format(key=member), "lang", "ch", "opted_out", "wa_seen")
            for member, (lang, channel, opted_out, wa_seen) in zip(chunk, pipe.execute(), strict=True):
                if (lang is None and channel is None) or opted_out == b"1":
                    continue
                yield code, member, (lang or b"").decode(), (channel or b"").decode() or SMS, int(wa_seen or 0)


def recount(connection: redis.Redis) -> tuple[dict[str | None, Counter], dict[str, dict[str, int]]]:
    """Count from the data (each school's subscriber set and its members' hashes): per scope (None: the
    district, each family once) the subscribers per (language, channel); and per WhatsApp window set its
    members and their last message. Reads the whole audience: for `aviso counts rebuild` and tests."""
    counts: dict[str | None, Counter] = {None: Counter()}
    windows: dict[str, dict[str, int]] = {}
    seen: set[str] = set()
    for code, member, lang, channel, wa_seen in _subscribers(connection):
        scopes = [code] if member in seen else [code, None]
        seen.add(member)
        for school in scopes:
            counts.setdefault(school, Counter())[(lang, channel)] += 1
            if channel == WHATSAPP:
                windows.setdefault(f"{scope(school)}:wa:{lang}", {})[member] = wa_seen
    return {k: v for k, v in counts.items() if v}, windows


def stored(connection: redis.Redis) -> tuple[dict[str | None, Counter], dict[str, dict[str, int]]]:
    """The counters and window sets as kept, in recount's shape (to compare the two)."""
    counts: dict[str | None, Counter] = {}
    windows: dict[str, dict[str, int]] = {}
    for name in connection.scan_iter(match=keys.COUNTS_ALL.rsplit(":", 1)[0] + ":*", count=1000):
        text = name.decode()
        if ":wa:" in text:
            windows[text] = {m.decode(): int(s) for m, s in connection.zrange(name, 0, -1, withscores=True)}
            continue
        school = None if text == keys.COUNTS_ALL else text[len(keys.COUNTS_SCHOOL):]
        for field, n in connection.hgetall(name).items():
            lang, _, channel = field.decode().partition("|")
            if int(n):
                counts.setdefault(school, Counter())[(lang, channel)] += int(n)
    return counts, {k: v for k, v in windows.items() if v}


def rebuild(connection: redis.Redis) -> int:
    """Replace every counter with a recount from the data (run it while quiet: a family who follows
    during the recount may be missed until the next rebuild); the number of families counted."""
    counts, windows = recount(connection)
    pipe = connection.pipeline(transaction=True)
    for name in connection.scan_iter(match=keys.COUNTS_ALL.rsplit(":", 1)[0] + ":*", count=1000):
        pipe.delete(name)
    for school, tally in counts.items():
        pipe.hset(scope(school), mapping={f"{lang}|{channel}": n for (lang, channel), n in tally.items()})
    for name, members in windows.items():
        pipe.zadd(name, members)
    pipe.execute()
    return sum(counts.get(None, Counter()).values())
