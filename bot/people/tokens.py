"""API tokens: each belongs to one staff member, expires (1 to 365 days), is shown once and kept only as its
SHA-256, is listed with when it was last used, and can be revoked on its own."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis

from bot.store import keys

TOKEN_BYTES = 32
DEFAULT_DAYS = 90
MAX_DAYS = 365
ID_LENGTH = 12  # a token's public id: the start of its hash, enough to tell a member's tokens apart


class TokenError(ValueError):
    """A token that cannot be issued or revoked; the message says why."""


@dataclass(frozen=True)
class TokenInfo:
    """What a listing shows of a token (never the token)."""

    id: str
    staff_id: str
    created: datetime | None
    expires: datetime | None  # None: issued before tokens expired (replace it)
    last_used: datetime | None

    def expired(self, now: datetime) -> bool:
        """Whether it no longer works."""
        return self.expires is not None and now >= self.expires


def token_hash(token: str) -> str:
    """The only form of a token that is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokens:
    """keys.STAFF_TOKENS maps a token's hash to its record (JSON; a bare staff id before tokens expired);
    keys.STAFF_TOKENS_USED maps it to when it last worked."""

    def __init__(self, connection: redis.Redis):
        self.connection = connection

    def issue(self, staff_id: str, days: int = DEFAULT_DAYS, now: datetime | None = None) -> str:
        """A new token for a member, valid for `days` days."""
        if not 1 <= days <= MAX_DAYS:
            raise TokenError(f"a token is valid for 1 to {MAX_DAYS} days")
        now = now or datetime.now(UTC)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        record = {"staff": staff_id, "created": now.isoformat(timespec="seconds"),
                  "expires": (now + timedelta(days=days)).isoformat(timespec="seconds")}
        self.connection.hset(keys.STAFF_TOKENS, token_hash(token), json.dumps(record))
        return token

    def staff_of(self, token: str, now: datetime | None = None) -> str | None:
        """The staff id a working token belongs to, noting its use (None: unknown, expired or revoked)."""
        hashed = token_hash(token)
        raw = self.connection.hget(keys.STAFF_TOKENS, hashed)
        if raw is None:
            return None
        info = _info(hashed, raw, None)
        now = now or datetime.now(UTC)
        if info.expired(now):
            return None
        self.connection.hset(keys.STAFF_TOKENS_USED, hashed, now.isoformat(timespec="seconds"))
        return info.staff_id

    def of(self, staff_id: str) -> list[TokenInfo]:
        """A member's tokens (expired ones too, until revoked), newest first."""
        used = {k.decode(): v.decode() for k, v in self.connection.hgetall(keys.STAFF_TOKENS_USED).items()}
        stored = self.connection.hgetall(keys.STAFF_TOKENS)
        found = [_info(k.decode(), raw, used.get(k.decode())) for k, raw in stored.items()]
        mine = [info for info in found if info.staff_id == staff_id]
        oldest = datetime.min.replace(tzinfo=UTC)
        return sorted(mine, key=lambda info: (info.created or oldest, info.id), reverse=True)

    def revoke(self, staff_id: str, token_id: str) -> bool:
        """Revoke one of a member's tokens by its id (False: no such token of theirs)."""
        for info in self.of(staff_id):
            if info.id == token_id:
                self._delete([info.id])
                return True
        return False

    def revoke_all(self, staff_id: str) -> int:
        """Revoke every token of a member (taken off the roster)."""
        ids = [info.id for info in self.of(staff_id)]
        self._delete(ids)
        return len(ids)

    def _delete(self, ids: list[str]) -> None:
        if not ids:
            return
        hashes = [k.decode() for k in self.connection.hkeys(keys.STAFF_TOKENS) if k.decode()[:ID_LENGTH] in ids]
        if hashes:
            pipe = self.connection.pipeline(transaction=True)
            pipe.hdel(keys.STAFF_TOKENS, *hashes)
            pipe.hdel(keys.STAFF_TOKENS_USED, *hashes)
            pipe.execute()


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _info(hashed: str, raw: bytes, used: str | None) -> TokenInfo:
    text = raw.decode()
    if not text.startswith("{"):  # issued before tokens expired: a bare staff id
        return TokenInfo(hashed[:ID_LENGTH], text, None, None, _when(used))
    record = json.loads(text)
    return TokenInfo(hashed[:ID_LENGTH], record["staff"], _when(record.get("created")), _when(record.get("expires")),
                     _when(used))
