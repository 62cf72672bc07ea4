"""Broadcast lists: one page of a viewer's broadcasts read from the indexes (bot/broadcasts/index.py),
newest first, with the cursor of the next page."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo

import redis

from bot.broadcasts.index import MAX_PAGE_SIZE, PAGE_SIZE, Query, cursor_of, keys_for, page_ids, parse_cursor
from bot.broadcasts.store import KINDS, STATUSES, Broadcast
from bot.people.staff import StaffMember
from bot.store import keys

MAX_ROUNDS = 20  # index reads per page when a second filter (kind with status) discards broadcasts


@dataclass(frozen=True)
class Page:
    """Broadcasts of one page, and the cursor of the next (None: this was the last)."""

    broadcasts: list[Broadcast]
    next_cursor: str | None


def page(connection: redis.Redis, query: Query) -> Page:
    """One page of the broadcasts the query asks for (expired ones and second-filter misses skipped)."""
    limit = max(1, min(query.limit, MAX_PAGE_SIZE))
    _, kind_check = keys_for(query)
    shown: list[tuple[float, Broadcast]] = []
    cursor = query.cursor
    for _ in range(MAX_ROUNDS):
        ids = page_ids(connection, replace(query, cursor=cursor), limit + 1 - len(shown))
        if not ids:
            return Page([b for _, b in shown], None)
        pipe = connection.pipeline(transaction=False)
        for _, broadcast_id in ids:
            pipe.hgetall(keys.BROADCAST.format(id=broadcast_id))
        for (score, _), stored in zip(ids, pipe.execute(), strict=True):
            if not stored:
                continue
            broadcast = Broadcast.from_stored(stored)
            if kind_check and broadcast.kind != kind_check:
                continue
            shown.append((score, broadcast))
        cursor = cursor_of(*ids[-1])
        if len(shown) > limit:
            score, last = shown[limit - 1]
            return Page([b for _, b in shown[:limit]], cursor_of(score, last.id))
    score, last = shown[-1] if shown else (0.0, None)
    return Page([b for _, b in shown], cursor_of(score, last.id) if last else cursor)


class BadQuery(ValueError):
    """A list request with a malformed filter; the message names it."""


def query_from_args(args, staff: StaffMember, timezone: tzinfo) -> Query:
    """A list request's filters (school, kind, status, since, until as dates or times, cursor, limit)."""
    school = (args.get("school") or "").strip().upper() or None
    if school is not None:
        staff.check_schools((school,))
    kind, status = args.get("kind") or None, args.get("status") or None
    if kind is not None and kind not in KINDS:
        raise BadQuery(f"kind must be one of {', '.join(KINDS)}")
    if status is not None and status not in STATUSES:
        raise BadQuery(f"status must be one of {', '.join(STATUSES)}")
    try:
        limit = int(args.get("limit") or PAGE_SIZE)
    except ValueError:
        raise BadQuery("limit must be a whole number") from None
    cursor = args.get("cursor") or None
    if cursor is not None and parse_cursor(cursor) is None:
        raise BadQuery("cursor must be the next_cursor of a previous page")
    schools = (school,) if school else (None if staff.role == "admin" else staff.schools)
    return Query(schools, status=status, kind=kind, since=_moment(args.get("since"), timezone, "since"),
                 until=_moment(args.get("until"), timezone, "until"), cursor=cursor, limit=limit)


def _moment(value: str | None, timezone: tzinfo, name: str) -> datetime | None:
    """A date (a whole local day: since its start, until its end) or an ISO time."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = datetime.combine(date.fromisoformat(value), time(), timezone)
            return day + timedelta(days=1) if name == "until" else day
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadQuery(f"{name} must be a date like 2026-12-03 or an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone)
