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

from bot.content import encoding
from bot.content.model import Content
from bot.conversation import alerts as alert_flow
from bot.conversation.engine import AlertFacts, Forget, Inbound, Outcome, Policy, Subscribe, Unsubscribe, respond
from bot.conversation.offline import respond_offline
from bot.observability import logs, metrics
from bot.people import aliases, audience_counts, contacts
from bot.people.identity import Address, Keyring, log_name
from bot.publishing.store import ContentStore
from bot.store import keys
from bot.store.scripts import ScriptRunner
from bot.workshops import registrations, schedule

log = logging.getLogger(__name__)
RETRY_WAIT_SECONDS = 5.0
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# One round trip before answering: claim the MessageSid (or read the answer a first delivery left), read the
# active content version, and find the contact: the first of the message's names (own number, then
# WhatsApp user id) that is a contact, else the first that is an alias of one (its target: index -1).
# The claim is kept out of the AOF (and replicas): it only guards a message while it is being answered, and
# leaving it out spares Redis a file write before this reply; the answer that replaces it is written as
# usual. After a crash, a retry is answered from that answer, or anew.
# KEYS: inbound, content active, then per name: its contact hash, its alias.
_BEGIN = """
redis.set_repl(redis.REPL_NONE)
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return {0, redis.call('GET', KEYS[1])} end
local version = redis.call('GET', KEYS[2])
for i = 3, #KEYS, 2 do
  local fields = redis.call('HGETALL', KEYS[i])
  if #fields > 0 then return {1, version, (i - 1) / 2, fields} end
end
for i = 4, #KEYS, 2 do
  local target = redis.call('GET', KEYS[i])
  if target then return {1, version, -1, target} end
end
return {1, version, 0, {}}
"""
# One round trip after: the answer kept for Twilio's retries, the day's count per command and language, and
# the contact's changed fields and expiry, the schools it joined or left, its aliases (they expire when the
# contact does). All at once, as a transaction would. Only the fields this message changed are written, so a
# change made meanwhile by someone else (a carrier opt-out, a workshop promotion) is never written over; a
# contact erased meanwhile (FORGET, or its time ran out) is not brought back. The audience counts are
# recomputed only when a field they read is written.
# KEYS: contact hash, answer, day's counts, schools joined..., schools left..., aliases...
# ARGV: ttl (0: keep), fields n, joined j, left l, answer, its ttl, count field, counts' ttl, contact key,
#       aliases a, their ttl (0: keep), new contact (1/0), counts read a written field (1/0),
#       n field/value pairs, then the fields to delete
_ANSWERED = audience_counts.LUA + """
redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6])
-- A day's counts expire from their first count on (a later first count of another field only renews it).
if redis.call('HINCRBY', KEYS[3], ARGV[7], '1') == 1 then redis.call('EXPIRE', KEYS[3], ARGV[8]) end
local known, expiring = ARGV[12] == '0', ARGV[1] ~= '0'
if known then  -- still there? (EXPIRE says so as it renews the expiry: one call instead of two)
  if expiring then
    if redis.call('EXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
  elseif redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
end
local n, joined, left, aliases = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[10])
local counted = ARGV[13] == '1'
local before = counted and aviso_contribution(KEYS[1])
local pairs_end = 13 + 2 * n
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 14, pairs_end)) end
if #ARGV > pairs_end then redis.call('HDEL', KEYS[1], unpack(ARGV, pairs_end + 1, #ARGV)) end
if not expiring then redis.call('PERSIST', KEYS[1]) elseif not known then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
for i = 1, joined do redis.call('SADD', KEYS[3 + i], ARGV[9]) end
for i = 1, left do redis.call('SREM', KEYS[3 + joined + i], ARGV[9]) end
for i = 1, aliases do
  local alias = KEYS[3 + joined + left + i]
  if ARGV[11] == '0' then redis.call('SET', alias, ARGV[9]) else redis.call('SET', alias, ARGV[9], 'EX', ARGV[11]) end
end
if counted then  -- the audience counts move with the contact (bot/people/audience_counts.py)
  aviso_move(ARGV[9], before, aviso_contribution(KEYS[1]))
end
return 1
"""



def forget(connection: redis.Redis, contact_key: str) -> None:
    """FORGET: free the contact's workshop places (queuing the promoted contacts' notices), then erase it."""
    # Workshops first: they read the contact's seats from its hash, which contacts.forget deletes.
    promoted = registrations.forget_contact(connection, contact_key)
    if promoted:
        schedule.enqueue_promotions(connection, promoted)
    contacts.forget(connection, contact_key)

class ContentUnavailable(RuntimeError):
    """No content version is published, so nothing can be answered."""


@dataclass(frozen=True)
class InboundMessage:
    """The fields of Twilio's inbound webhook that Aviso uses (already validated)."""

    sid: str
    address: Address  # From: a number, or on WhatsApp a user id (BSUID) when the family hides its number
    body: str
    num_media: int = 0
    opt_out_type: str | None = None
    user_id: Address | None = None  # the WhatsApp user id that came with a number (ExternalUserId)

    @property
    def addresses(self) -> tuple[Address, ...]:
        """Every address naming the sender, its own number (or only user id) first."""
        return (self.address,) if self.user_id is None else (self.address, self.user_id)


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
        self._scripts = ScriptRunner(connection, _BEGIN, _ANSWERED)
        self._begin, self._answered = self._scripts.scripts
        self.last_content: Content | None = None  # what the last answer used: kept for an outage

    def answer(self, message: InboundMessage, now: datetime) -> str:
        """Return the TwiML for an inbound message; a retry of the same MessageSid gets the same TwiML. Its
        write is sent to Redis, not waited for (bot/store/scripts.py)."""
        names = [self.keyring.contact_key(address) for address in message.addresses]
        inbound_key = keys.INBOUND_MESSAGE.format(sid=message.sid)
        lookups = [key for name in names for key in (contacts.contact_redis_key(name), aliases.alias_redis_key(name))]
        claimed, *found = self._scripts.run(self._begin, [inbound_key, keys.CONTENT_ACTIVE, *lookups],
                                    [keys.INBOUND_PENDING, keys.INBOUND_CLAIM_SECONDS])
        if not claimed:
            return self._previous_answer(inbound_key, found[0])
        version, index, flat = found
        if index == -1:  # another name of a known contact (its number, or its user id): read that contact
            contact_key = flat.decode()
            fields = self._scripts.client().hgetall(contacts.contact_redis_key(contact_key))
        else:
            contact_key = names[max(index, 1) - 1]
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
        naming = aliases.naming(names, contact_key)
        if version is None:
            self.connection.delete(inbound_key)
            raise ContentUnavailable("no content version is published")
        content = self.last_content = self.content.get(version.decode())
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
        channel, language = message.address.channel, outcome.language
        twiml = render_twiml(tuple(encoding.for_channel(reply, channel, language) for reply in outcome.replies))
        promoted = [result.workshop for result in signed if result.promoted]
        extra = aliases.contact_fields(fields, message.addresses, naming, self.keyring)
        self._apply(naming, message, outcome, now, twiml, inbound_key, state.is_new, promoted, extra, content,
                    fields)
        logs.info(log, "inbound", contact=log_name(contact_key), channel=message.address.channel,
                  command=outcome.command, lang=outcome.language or "-", replies=len(outcome.replies),
                  content=content.version)
        metrics.replied(outcome.command, outcome.language)
        return twiml

    def answer_offline(self, message: InboundMessage, now: datetime, content: Content) -> str:
        """The TwiML for a message while Redis is unreachable: from memory, nothing read or written."""
        inbound = Inbound(text=message.body, channel=message.address.channel, now=now,
                          opt_out_type=message.opt_out_type, has_media=message.num_media > 0)
        answered = respond_offline(inbound, content, self.policy)
        log.info("inbound offline contact=%s channel=%s command=%s lang=%s content=%s",
                 log_name(self.keyring.contact_key(message.address)), message.address.channel, answered.command,
                 answered.language or "-", content.version)
        metrics.replied(answered.command, answered.language, offline=True)
        return render_twiml(answered.replies)

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
        self, naming: aliases.Naming, message: InboundMessage, outcome: Outcome, now: datetime,
        twiml: str, inbound_key: str, is_new: bool, promoted: list[str], extra: dict[str, str], content: Content,
        stored: dict[bytes, bytes],
    ) -> None:
        contact_key = naming.contact_key
        if any(isinstance(effect, Forget) for effect in outcome.effects):
            forget(self.connection, contact_key)
            if naming.aliases:  # this message's other names, should the contact not have listed them yet
                self.connection.delete(*map(aliases.alias_redis_key, naming.aliases))
            self.connection.set(inbound_key, twiml, ex=keys.INBOUND_TTL_SECONDS)
            return
        if promoted:  # queued first: a promotion job is safe to run twice, never to miss
            schedule.enqueue_promotions(self.connection, promoted)
        write = contacts.changes(outcome.state, address=message.address, keyring=self.keyring, is_new=is_new,
                                 now=now, ttl_seconds=self.contact_ttl_seconds)
        fields = {name: value for name, value in {**write.fields, **extra}.items()
                  if stored.get(name.encode()) != value.encode()}
        emptied = [name for name in write.emptied if name.encode() in stored]
        signed_up = map(content.workshop, outcome.state.workshops + outcome.state.waitlisted)
        alias_ttl = aliases.lifetime(write.ttl_seconds, bool(outcome.state.schools),
                                     [registrations.keep_until(w) for w in signed_up if w], now.timestamp(),
                                     self.contact_ttl_seconds)
        joined = [keys.SCHOOL_SUBSCRIBERS.format(code=e.school) for e in outcome.effects if isinstance(e, Subscribe)]
        left = [keys.SCHOOL_SUBSCRIBERS.format(code=e.school) for e in outcome.effects if isinstance(e, Unsubscribe)]
        counted = bool(joined or left) or not audience_counts.COUNTED_FIELDS.isdisjoint([*fields, *emptied])
        # Register / CancelRegistration were applied before the answer was written (registrations.apply).
        # Sent, not waited for: its reply is read before this thread's next script (bot/store/scripts.py).
        self._scripts.send(
            self._answered,
            [contacts.contact_redis_key(contact_key), inbound_key,
             keys.KEYWORD_STATS.format(day=now.date().isoformat()), *joined, *left,
             *map(aliases.alias_redis_key, naming.aliases)],
            [write.ttl_seconds or 0, len(fields), len(joined), len(left), twiml, keys.INBOUND_TTL_SECONDS,
             f"{outcome.command}:{outcome.language or '-'}", keys.KEYWORD_STATS_TTL_SECONDS, contact_key,
             len(naming.aliases), alias_ttl, int(is_new), int(counted),
             *(item for pair in fields.items() for item in pair), *emptied])
