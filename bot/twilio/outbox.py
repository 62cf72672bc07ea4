"""The development outbox: a sender that records outbound messages in Redis instead of sending them."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

import redis

from bot.people.identity import Address, Keyring
from bot.store import keys
from bot.twilio.senders import RECONCILE_CLOCK_SLACK, SentMessage


class OutboxSession:
    """The outbox's asyncio side: its calls are one short Redis pipeline, so they run in place."""

    def __init__(self, outbox: OutboxSender):
        self.outbox = outbox

    async def __aenter__(self) -> OutboxSession:
        """Nothing to open."""
        return self

    async def __aexit__(self, *exc) -> None:
        """Nothing to close."""

    async def send(self, address: Address, body: str, **kw) -> SentMessage:
        """Append to the outbox."""
        return self.outbox.send(address, body, **kw)

    async def find_sent(self, address: Address, since: datetime, body: str | None) -> str | None:
        """Look in the outbox."""
        return self.outbox.find_sent(address, since, body)


class OutboxSender:
    """Records outbound messages in Redis instead of sending (development without a Twilio account)."""

    def __init__(self, connection: redis.Redis, keyring: Keyring):
        self.connection = connection
        self.keyring = keyring

    def send(
        self,
        address: Address,
        body: str,
        *,
        content_version: str = "",
        status_callback: str | None = None,
        content_sid: str | None = None,
        content_variables: dict[str, str] | None = None,
        validity_period: int | None = None,
    ) -> SentMessage:
        """Append the message to the outbox (the contact named by its key, never its number)."""
        sid = "SM" + uuid.uuid4().hex
        entry = {
            "sid": sid,
            "contact": self.keyring.contact_key(address),
            "channel": address.channel,
            "body": body,
            "content_version": content_version,
            "at": time.time(),
        }
        if content_sid:
            entry.update(content_sid=content_sid, content_variables=content_variables or {})
        pipe = self.connection.pipeline(transaction=True)
        pipe.lpush(keys.OUTBOX, json.dumps(entry, ensure_ascii=False))
        pipe.ltrim(keys.OUTBOX, 0, keys.OUTBOX_MAX - 1)
        pipe.execute()
        return SentMessage(sid)

    def messages_for(self, address: Address, limit: int = 50) -> list[dict]:
        """The newest outbox messages to one address, oldest first."""
        contact = self.keyring.contact_key(address)
        entries = (json.loads(raw) for raw in self.connection.lrange(keys.OUTBOX, 0, keys.OUTBOX_MAX))
        return list(reversed([e for e in entries if e["contact"] == contact][:limit]))

    def origin(self, address: Address) -> str:
        """Every outbox message leaves from the outbox."""
        return "outbox"

    def find_sent(self, address: Address, since: datetime, body: str | None) -> str | None:
        """The outbox message to address since a time with this body (None: any template)."""
        after = since.timestamp() - RECONCILE_CLOCK_SLACK.total_seconds()
        for entry in self.messages_for(address, limit=keys.OUTBOX_MAX):
            if entry["at"] >= after and (entry["body"] == body if body is not None else "content_sid" in entry):
                return entry["sid"]
        return None

    def session(self, concurrency: int) -> OutboxSession:
        """The outbox, awaitable."""
        return OutboxSession(self)
