"""A broadcast's report: how many recipients per language, channel, outcome and reason, as CSV rows.
Counts only: no number, no contact key, nothing that names a family."""

from __future__ import annotations

import csv
import io
from collections import Counter

import redis

from bot.broadcasts.outcomes import Outcomes
from bot.people.contacts import contact_redis_key
from bot.people.identity import SMS
from bot.store import keys

CHUNK = 1000  # recipients read per round trip
HEADER = ("language", "channel", "outcome", "reason", "recipients")
UNKNOWN = "unknown"  # a recipient who has since left Aviso (FORGET): its language and channel are gone


def rows(connection: redis.Redis, broadcast_id: str, summary: Outcomes) -> list[tuple[str, str, str, str, int]]:
    """Recipients per (language, channel, outcome, reason); from the per-recipient records while they last
    (30 days), after that from the totals alone (language and channel "all")."""
    records = connection.hgetall(keys.BROADCAST_OUTCOMES.format(id=broadcast_id))
    if not records:
        return _totals(summary)
    delivery = {}
    for value in connection.hvals(keys.BROADCAST_SIDS.format(id=broadcast_id)):
        contact, _, final = value.decode().partition("|")
        if final:
            delivery[contact] = final
    contacts = [c.decode() for c in records]
    tally: Counter = Counter()
    for start in range(0, len(contacts), CHUNK):
        chunk = contacts[start:start + CHUNK]
        pipe = connection.pipeline(transaction=False)
        for contact in chunk:
            pipe.hmget(contact_redis_key(contact), "lang", "ch")
        for contact, (lang, channel) in zip(chunk, pipe.execute(), strict=True):
            outcome, _, reason = records[contact.encode()].decode().partition(":")
            if outcome == "sent":
                reason = delivery.get(contact, "accepted")
            elif outcome == "sending":
                outcome, reason = "pending", ""
            gone = lang is None and channel is None
            language = UNKNOWN if gone else (lang or b"").decode() or "-"
            tally[(language, UNKNOWN if gone else (channel or b"").decode() or SMS, outcome, reason)] += 1
    return [(*group, count) for group, count in sorted(tally.items())]


def _totals(summary: Outcomes) -> list[tuple[str, str, str, str, int]]:
    found = [("all", "all", "sent", "accepted", summary.sent)]
    found += [("all", "all", "failed", str(code), n) for code, n in sorted(summary.failed.items())]
    found += [("all", "all", "skipped", str(reason), n) for reason, n in sorted(summary.skipped.items())]
    return [row for row in found if row[-1]]


def to_csv(found: list[tuple[str, str, str, str, int]]) -> str:
    """The rows as a CSV document with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(found)
    return out.getvalue()
