"""Audit: who created, approved, sent, cancelled or published what, and when — never a phone number."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from bot.store import keys


@dataclass(frozen=True)
class Entry:
    """One line of the audit log."""

    at: datetime
    actor: str  # a staff member's name and id, or an operator on the command line
    action: str
    subject: str
    detail: str = ""


BROADCAST_ACTIONS = ("created", "approved", "rejected", "cancelled", "scheduled", "sending")


class AuditLog:
    """An append-only list in Redis, newest first, trimmed to a bounded length."""

    def __init__(self, connection: redis.Redis):
        self.connection = connection

    def record(self, actor: str, action: str, subject: str, detail: str = "", schools: tuple[str, ...] = ()) -> None:
        """Append an entry (also to the lists of its schools and of its subject, so each reads only its own)."""
        entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "actor": actor, "action": action,
                 "subject": subject, "detail": detail}
        raw = json.dumps(entry, ensure_ascii=False)
        scoped = [(keys.AUDIT_SCHOOL.format(code=code), keys.AUDIT_SCOPE_MAX) for code in schools]
        if subject.startswith("content "):
            scoped.append((keys.AUDIT_CONTENT, keys.AUDIT_SCOPE_MAX))
        if schools or action in BROADCAST_ACTIONS:
            scoped.append((keys.AUDIT_SUBJECT.format(subject=subject), keys.AUDIT_SUBJECT_MAX))
        pipe = self.connection.pipeline(transaction=True)
        for name, length in [(keys.AUDIT, keys.AUDIT_MAX), *scoped]:
            pipe.lpush(name, raw)
            pipe.ltrim(name, 0, length - 1)
        for name, _ in scoped:
            pipe.expire(name, keys.BROADCAST_TTL_SECONDS)
        pipe.execute()

    def about(self, subject: str) -> list[Entry]:
        """The entries about one broadcast, newest first."""
        return self._read(keys.AUDIT_SUBJECT.format(subject=subject), keys.AUDIT_SUBJECT_MAX)

    def for_schools(self, schools: tuple[str, ...], limit: int, offset: int = 0) -> list[Entry]:
        """The newest entries about these schools' broadcasts and the content, merged, each once (skipping
        offset of them: a page)."""
        pipe = self.connection.pipeline(transaction=False)
        for name in [keys.AUDIT_SCHOOL.format(code=code) for code in schools] + [keys.AUDIT_CONTENT]:
            pipe.lrange(name, 0, offset + limit - 1)
        rows = sorted({raw for found in pipe.execute() for raw in found},
                      key=lambda raw: (json.loads(raw)["at"], raw), reverse=True)
        return [_entry(json.loads(raw)) for raw in rows[offset:offset + limit]]

    def reindex(self) -> int:
        """Rebuild the per-school, content and per-broadcast lists from the log (for entries recorded
        before they existed); a broadcast's schools are those its index fields name. Entries indexed."""
        raw_entries = self.connection.lrange(keys.AUDIT, 0, -1)
        subjects = {json.loads(raw)["subject"] for raw in raw_entries}
        ids = sorted(s for s in subjects if len(s) == 16 and all(c in "0123456789abcdef" for c in s))
        pipe = self.connection.pipeline(transaction=False)
        for broadcast_id in ids:
            pipe.hget(keys.BROADCAST.format(id=broadcast_id), "owners")
        owners = {i: tuple(c for c in (o or b"").decode().split(",") if c)
                  for i, o in zip(ids, pipe.execute(), strict=True)}
        scoped: dict[str, list[bytes]] = {}
        indexed = 0
        for raw in raw_entries:
            entry = json.loads(raw)
            subject = entry["subject"]
            names = [keys.AUDIT_SCHOOL.format(code=code) for code in owners.get(subject, ())]
            if subject.startswith("content "):
                names.append(keys.AUDIT_CONTENT)
            if subject in owners:
                names.append(keys.AUDIT_SUBJECT.format(subject=subject))
            indexed += bool(names)
            for name in names:
                scoped.setdefault(name, []).append(raw)
        pipe = self.connection.pipeline(transaction=True)
        for name, rows in scoped.items():
            limit = keys.AUDIT_SUBJECT_MAX if ":subject:" in name else keys.AUDIT_SCOPE_MAX
            pipe.delete(name)
            pipe.rpush(name, *rows[:limit])
            pipe.expire(name, keys.BROADCAST_TTL_SECONDS)
        pipe.execute()
        return indexed

    def _read(self, name: str, limit: int, offset: int = 0) -> list[Entry]:
        return [_entry(json.loads(raw)) for raw in self.connection.lrange(name, offset, offset + limit - 1)]

    def recent(self, limit: int = 100, offset: int = 0) -> list[Entry]:
        """The newest entries (skipping offset of them: a page)."""
        return self._read(keys.AUDIT, limit, offset)


def _entry(row: dict) -> Entry:
    return Entry(datetime.fromisoformat(row["at"]), row["actor"], row["action"], row["subject"], row["detail"])
