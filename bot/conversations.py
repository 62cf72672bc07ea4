"""Conversations: the service that answers one inbound message (Redis in, engine, Redis out)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from html import escape

import redis

from . import alert_flow, contacts, keys, registrations, reminders
from .engine import AlertFacts, Forget, Inbound, Outcome, Policy, Subscribe, Unsubscribe, respond
from .identity import Address, Keyring, log_name
from .publishing import ContentStore

log = logging.getLogger(__name__)
RETRY_WAIT_SECONDS = 5.0
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class ContentUnavailable(RuntimeError):
    """No content version is published, so nothing can be answered."""


@dataclass(frozen=True)
class InboundMessage:
    """The fields of Twilio's inbound webhook that Aviso uses (already validated)."""

    sid: str
    address: Address
    body: str
    num_media: int = 0
    opt_out_type: str | None = None


TWIML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'


def render_twiml(replies: tuple[str, ...]) -> str:
    """TwiML with one <Message> per reply (none: an empty <Response />), as twilio's MessagingResponse
    writes it; built as a string because the XML tree cost a tenth of a webhook request."""
    if not replies:
        return f"{TWIML_HEAD}<Response />"
    messages = "".join(f"<Message>{escape(_xml_text(reply), quote=False)}</Message>" for reply in replies)
    return f"{TWIML_HEAD}<Response>{messages}</Response>"


def _xml_text(text: str) -> str:
    # XML 1.0 cannot carry most control characters; a family's text never needs them in a reply.
    return _XML_ILLEGAL.sub("", text)


class Conversations:
    """Answers inbound messages exactly once per MessageSid."""

    def __init__(
        self, connection: redis.Redis, keyring: Keyring, content: ContentStore, policy: Policy,
        contact_ttl_seconds: int, alert_lookup: Callable[[str], AlertFacts | None] = lambda code: None,
    ):
        self.alert_lookup = alert_lookup
        self.connection = connection
        self.keyring = keyring
        self.content = content
        self.policy = policy
        self.contact_ttl_seconds = contact_ttl_seconds

    def answer(self, message: InboundMessage, now: datetime) -> str:
        """Return the TwiML for an inbound message; a retry of the same MessageSid gets the same TwiML."""
        contact_key = self.keyring.contact_key(message.address)
        inbound_key = keys.INBOUND_MESSAGE.format(sid=message.sid)
        pipe = self.connection.pipeline(transaction=False)
        pipe.set(inbound_key, keys.INBOUND_PENDING, nx=True, ex=keys.INBOUND_CLAIM_SECONDS)
        pipe.get(inbound_key)
        pipe.hgetall(contacts.contact_redis_key(contact_key))
        pipe.get(keys.CONTENT_ACTIVE)
        claimed, previous, fields, version = pipe.execute()
        if not claimed:
            return self._previous_answer(inbound_key, previous)
        if version is None:
            self.connection.delete(inbound_key)
            raise ContentUnavailable("no content version is published")
        content = self.content.get(version.decode())
        state = contacts.state_from_hash(fields)
        code = alert_flow.verify_code(message.body, content)
        inbound = Inbound(
            text=message.body, channel=message.address.channel, now=now,
            opt_out_type=message.opt_out_type, has_media=message.num_media > 0,
            verification=self.alert_lookup(code) if code else None,
        )
        outcome = respond(state, inbound, content, self.policy)
        signed = registrations.apply(self.connection, contact_key, outcome.effects, content, now)
        seats_left = registrations.seats_left_after(outcome.state, signed)
        if seats_left:  # the last seat went (or one freed up) meanwhile: answer what really happened
            answered = respond(state, replace(inbound, seats_left=seats_left), content, self.policy)
            outcome = replace(answered, effects=outcome.effects)
        twiml = render_twiml(outcome.replies)
        promoted = [result.workshop for result in signed if result.promoted]
        self._apply(contact_key, message, outcome, now, content.version, twiml, inbound_key, state.is_new,
                    promoted)
        log.info(
            "inbound contact=%s channel=%s command=%s lang=%s replies=%d content=%s",
            log_name(contact_key), message.address.channel, outcome.command, outcome.language or "-",
            len(outcome.replies), content.version,
        )
        return twiml

    def _previous_answer(self, inbound_key: str, previous: bytes | None) -> str:
        """Twilio retried a message: wait for the first answer, then repeat it."""
        deadline = time.monotonic() + RETRY_WAIT_SECONDS
        while previous is not None and previous.decode() == keys.INBOUND_PENDING:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
            previous = self.connection.get(inbound_key)
        if previous is None or previous.decode() == keys.INBOUND_PENDING:
            return render_twiml(())
        return previous.decode()

    def _apply(
        self, contact_key: str, message: InboundMessage, outcome: Outcome, now: datetime,
        version: str, twiml: str, inbound_key: str, is_new: bool, promoted: list[str],
    ) -> None:
        if any(isinstance(effect, Forget) for effect in outcome.effects):
            contacts.forget(self.connection, contact_key)
            self.connection.set(inbound_key, twiml, ex=keys.INBOUND_TTL_SECONDS)
            return
        pipe = self.connection.pipeline(transaction=True)
        pipe.multi()  # explicit, so that RQ can queue a job on it
        contacts.save(
            pipe, contact_key, outcome.state, address=message.address, keyring=self.keyring,
            is_new=is_new, now=now, ttl_seconds=self.contact_ttl_seconds,
        )
        for effect in outcome.effects:
            if isinstance(effect, Subscribe):
                contacts.follow(pipe, contact_key, effect.school)
            elif isinstance(effect, Unsubscribe):
                contacts.unfollow(pipe, contact_key, effect.school)
        # Register / CancelRegistration were applied before the answer was written (registrations.apply).
        reminders.enqueue_promotions(self.connection, promoted, pipeline=pipe)
        pipe.set(inbound_key, twiml, ex=keys.INBOUND_TTL_SECONDS)
        stats = keys.KEYWORD_STATS.format(day=now.date().isoformat())
        pipe.hincrby(stats, f"{outcome.command}:{outcome.language or '-'}", 1)
        pipe.expire(stats, keys.KEYWORD_STATS_TTL_SECONDS)
        pipe.execute()
