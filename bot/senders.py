"""Senders: how an outbound message leaves — Twilio's REST API, or the development outbox."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

import redis

from . import keys
from .config import Settings
from .identity import WHATSAPP, Address, Keyring


@dataclass(frozen=True)
class SentMessage:
    """What a sender returns: the message's sid (Twilio's, or the outbox's own)."""

    sid: str


class Sender(Protocol):
    """Anything that can send one message to one address."""

    def send(self, address: Address, body: str, *, content_version: str = "") -> SentMessage:
        """Send one message."""


class OutboxSender:
    """Records outbound messages in Redis instead of sending (development without a Twilio account)."""

    def __init__(self, connection: redis.Redis, keyring: Keyring):
        self.connection = connection
        self.keyring = keyring

    def send(self, address: Address, body: str, *, content_version: str = "") -> SentMessage:
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


class TwilioSender:
    """Sends through Twilio's REST API (or TWILIO_API_BASE_URL), client built on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._client = None

    @property
    def client(self):
        """The twilio REST client."""
        if self._client is None:
            from .twilio_client import make_client

            self._client = make_client(
                self.settings.twilio_account_sid,
                self.settings.twilio_auth_token,
                api_base_url=self.settings.twilio_api_base_url,
            )
        return self._client

    def send(self, address: Address, body: str, *, content_version: str = "") -> SentMessage:
        """Create one message at Twilio."""
        params: dict[str, str] = {"to": address.twilio, "body": body}
        if address.channel == WHATSAPP and self.settings.twilio_whatsapp_from:
            params["from_"] = self.settings.twilio_whatsapp_from
        elif self.settings.twilio_messaging_service_sid:
            params["messaging_service_sid"] = self.settings.twilio_messaging_service_sid
        else:
            params["from_"] = self.settings.twilio_sms_from or ""
        message = self.client.messages.create(**params)
        return SentMessage(message.sid)


def make_sender(settings: Settings, connection: redis.Redis, keyring: Keyring) -> Sender:
    """Twilio when an account is configured, else the outbox."""
    if settings.twilio_sending_configured:
        return TwilioSender(settings)
    return OutboxSender(connection, keyring)
