"""Publishing: which content version is live, shared by every process through Redis."""

from __future__ import annotations

import getpass
import threading
from datetime import UTC, datetime

import redis

from bot.content.model import Content
from bot.publishing import reviews
from bot.store import keys
from bot.workshops import changes as workshop_changes


class NothingToRollBack(Exception):
    """There is no earlier published version to return to."""


class VersionConflict(Exception):
    """A version number was published before with different content."""


class ContentStore:
    """Publishes content into Redis and hands each process the active version, cached by version."""

    def __init__(self, connection: redis.Redis, serve_drafts: bool = True):
        self.connection = connection
        self.serve_drafts = serve_drafts  # False: a language no reviewer approved is answered in its fallback
        self._cache: dict[str, Content] = {}
        self._lock = threading.Lock()

    def publish(self, content: Content, by: str | None = None) -> str:
        """Store a validated version and make it active everywhere at once."""
        data = content.to_json()
        stored = self.connection.get(keys.CONTENT_VERSION.format(version=content.version))
        if stored is not None and stored.decode() != data:
            raise VersionConflict(
                f"version {content.version} was published before with different content; bump the version"
            )
        pipe = self.connection.pipeline(transaction=True)
        pipe.set(keys.CONTENT_VERSION.format(version=content.version), data)
        pipe.hset(
            keys.CONTENT_META.format(version=content.version),
            mapping={"published_at": datetime.now(UTC).isoformat(timespec="seconds"),
                     "published_by": by or _who()},
        )
        pipe.lrem(keys.CONTENT_HISTORY, 0, content.version)
        pipe.lpush(keys.CONTENT_HISTORY, content.version)
        pipe.get(keys.CONTENT_ACTIVE)
        pipe.set(keys.CONTENT_ACTIVE, content.version)
        previous = pipe.execute()[-2]
        if previous is None or previous.decode() != content.version:
            _after_switch(self.connection, content.version)
        return content.version

    def rollback(self) -> str:
        """Return to the version published before the active one."""
        history = [v.decode() for v in self.connection.lrange(keys.CONTENT_HISTORY, 0, 1)]
        if len(history) < 2:
            raise NothingToRollBack("no earlier version to roll back to")
        pipe = self.connection.pipeline(transaction=True)
        pipe.lpop(keys.CONTENT_HISTORY)
        pipe.set(keys.CONTENT_ACTIVE, history[1])
        pipe.execute()
        _after_switch(self.connection, history[1])
        return history[1]

    def active_version(self) -> str | None:
        """The version every process answers with now."""
        value = self.connection.get(keys.CONTENT_ACTIVE)
        return value.decode() if value else None

    def get(self, version: str) -> Content:
        """A published version, parsed once per process."""
        cached = self._cache.get(version)
        if cached is not None:
            return cached
        with self._lock:
            data = self.connection.get(keys.CONTENT_VERSION.format(version=version))
            if data is None:
                raise LookupError(f"content version {version} is not published")
            content = Content.from_json(data)
            if not self.serve_drafts:
                content = Content(content.tree, withheld=frozenset(reviews.drafts(content)))
            content.understanding  # noqa: B018  (built now, once per process, not in a family's first request)
            self._cache[version] = content
            return content

    def active(self) -> Content | None:
        """The active version, or None when nothing was ever published."""
        version = self.active_version()
        return self.get(version) if version else None

    def status(self) -> dict:
        """Active version, when and by whom it was published, and the history."""
        history = [v.decode() for v in self.connection.lrange(keys.CONTENT_HISTORY, 0, -1)]
        active = self.active_version()
        meta = self.connection.hgetall(keys.CONTENT_META.format(version=active)) if active else {}
        return {
            "active": active,
            "published_at": meta.get(b"published_at", b"").decode() or None,
            "published_by": meta.get(b"published_by", b"").decode() or None,
            "history": history,
        }


def _after_switch(connection: redis.Redis, version: str) -> None:
    """Another version is live: queue the job that tells workshop registrants what changed."""
    workshop_changes.after_switch(connection, version)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
