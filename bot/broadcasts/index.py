"""Broadcast indexes: sorted sets per school, status, kind and sender (and district-wide ones for
admins), so every list reads only the viewer's schools, newest first, one page at a time.

The indexes change only inside broadcasts.py's create and transition scripts (the Lua below is spliced
into them), in the same step as the broadcast's status, so no list can drift from the broadcasts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import redis

from bot.store import keys

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

# Lua shared by the create and transition scripts. aviso_index(hash key, id, add status, remove status)
# reads the broadcast's owners, kind, sender and creation score stored beside it, and moves the id
# between status indexes for each owning school and for the district.
LUA = """
local function aviso_index(hkey, id, new_status, old_status)
  local f = redis.call('HMGET', hkey, 'owners', 'kind', 'by', 'score')
  local score = tonumber(f[4])
  if not score then return end
  local scopes = {'""" + keys.BROADCAST_INDEX_ALL + """'}
  for code in string.gmatch(f[1] or '', '[^,]+') do
    table.insert(scopes, '""" + keys.BROADCAST_INDEX_SCHOOL + """' .. code)
  end
  for _, scope in ipairs(scopes) do
    if old_status ~= '' then redis.call('ZREM', scope .. ':status:' .. old_status, id) end
    if new_status ~= '' then
      redis.call('ZADD', scope, score, id)
      redis.call('ZADD', scope .. ':status:' .. new_status, score, id)
      redis.call('ZADD', scope .. ':kind:' .. f[2], score, id)
    end
  end
  local sender = '""" + keys.BROADCAST_INDEX_SENDER + """' .. (f[3] or '')
  if old_status ~= '' then redis.call('ZREM', sender .. ':status:' .. old_status, id) end
  if new_status ~= '' then redis.call('ZADD', sender .. ':status:' .. new_status, score, id) end
end
"""

# Backfill one broadcast stored before the indexes existed (or re-index it): idempotent.
_BACKFILL = LUA + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
redis.call('HSET', KEYS[1], 'owners', ARGV[2], 'kind', ARGV[3], 'by', ARGV[4], 'score', ARGV[5])
aviso_index(KEYS[1], ARGV[1], status, '')
return 1
"""


def scope_key(school: str | None) -> str:
    """The index of one school's broadcasts (None: the district's)."""
    return keys.BROADCAST_INDEX_ALL if school is None else keys.BROADCAST_INDEX_SCHOOL + school


@dataclass(frozen=True)
class Query:
    """What a list asks for: whose broadcasts (schools, None: all), filters, a date range, a page."""

    schools: tuple[str, ...] | None
    status: str | None = None
    kind: str | None = None
    sender: str | None = None  # only this staff member's broadcasts (with a status)
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = None  # "score_id" of the last item of the previous page
    limit: int = PAGE_SIZE


def keys_for(query: Query) -> tuple[list[str], str | None]:
    """The sorted sets to merge, and the kind still to check on each broadcast (if two filters apply)."""
    if query.sender is not None and query.status:
        return [f"{keys.BROADCAST_INDEX_SENDER}{query.sender}:status:{query.status}"], query.kind
    scopes = [scope_key(None)] if query.schools is None else [scope_key(s) for s in query.schools]
    if query.status:
        return [f"{scope}:status:{query.status}" for scope in scopes], query.kind
    if query.kind:
        return [f"{scope}:kind:{query.kind}" for scope in scopes], None
    return scopes, None


def parse_cursor(cursor: str | None) -> tuple[float, str] | None:
    """A page cursor as (score, id); None for the first page or a malformed cursor."""
    score, _, last = (cursor or "").partition("_")
    try:
        return float(score), last
    except ValueError:
        return None


def page_ids(connection: redis.Redis, query: Query, fetch: int) -> list[tuple[float, str]]:
    """Up to fetch (score, id) pairs after the cursor, newest first, merged over the query's indexes."""
    names, _ = keys_for(query)
    after = parse_cursor(query.cursor)
    top = min(x for x in (query.until.timestamp() if query.until else None, after[0] if after else None)
              if x is not None) if (query.until or after) else "+inf"
    bottom = query.since.timestamp() if query.since else "-inf"
    pipe = connection.pipeline(transaction=False)
    for name in names:
        pipe.zrevrangebyscore(name, top, bottom, start=0, num=fetch + 1, withscores=True)
    found: dict[str, float] = {}
    for rows in pipe.execute():
        for member, score in rows:
            found[member.decode()] = score
    ordered = sorted(((score, i) for i, score in found.items()), reverse=True)
    if after:  # equal scores are ordered by id, newest first: skip up to and including the cursor
        ordered = [(s, i) for s, i in ordered if s < after[0] or (s == after[0] and i < after[1])]
    return ordered[:fetch]


def cursor_of(score: float, broadcast_id: str) -> str:
    """The cursor that continues after this item."""
    return f"{score!r}_{broadcast_id}"


def backfill(connection: redis.Redis) -> int:
    """Index every stored broadcast (for data from before the indexes); safe to run again."""
    script, done = connection.register_script(_BACKFILL), 0
    for name in connection.scan_iter(match=keys.BROADCAST.format(id="*"), count=1000):
        if len(name.decode().rsplit(":", 1)[-1]) != 16:  # the broadcast hashes, not their side keys
            continue
        doc, status = connection.hmget(name, "doc", "status")
        if doc is None or status is None:
            continue
        data = json.loads(doc)
        created = datetime.fromisoformat(data["created_at"]).timestamp()
        done += script(keys=[name], args=[data["id"], ",".join(data["schools"]), data["kind"],
                                          data["created_by"], created])
    return done
