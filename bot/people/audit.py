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


class AuditLog:
    """An append-only list in Redis, newest first, trimmed to a bounded length."""

    def __init__(self, connection: redis.Redis):
        self.connection = connection

    def record(self, actor: str, action: str, subject: str, detail: str = "") -> None:
        """Append an entry."""
        entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "actor": actor, "action": action,
                 "subject": subject, "detail": detail}
        pipe = self.connection.pipeline(transaction=True)
        pipe.lpush(keys.AUDIT, json.dumps(entry, ensure_ascii=False))
        pipe.ltrim(keys.AUDIT, 0, keys.AUDIT_MAX - 1)
        pipe.execute()

    def recent(self, limit: int = 100) -> list[Entry]:
        """The newest entries."""
        rows = (json.loads(raw) for raw in self.connection.lrange(keys.AUDIT, 0, limit - 1))
        return [Entry(datetime.fromisoformat(r["at"]), r["actor"], r["action"], r["subject"], r["detail"])
                for r in rows]
