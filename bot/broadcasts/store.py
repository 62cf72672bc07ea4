"""Broadcasts: the alert staff send to subscribers, its life cycle, audience, preview and outcomes."""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime

import redis

from bot.broadcasts import index as broadcast_index
from bot.broadcasts.errors import (
    BroadcastNotFound,
    DuplicateBroadcast,
    InvalidBroadcast,
    InvalidTransition,
    MissingTranslation,
    OriginalUnavailable,
    Undeliverable,
)
from bot.broadcasts.outcomes import NO_TRANSLATION, WINDOW_CLOSED, OutcomeError, Outcomes, OutcomeStore
from bot.broadcasts.plan import Delivery, LanguagePlan, Plan, Recipient
from bot.content import encoding, segments
from bot.people import audience_counts
from bot.people.contacts import contact_redis_key
from bot.people.identity import SMS, WHATSAPP
from bot.store import keys
from bot.workshops.registrations import registrants

KINDS = ("update", "verified", "all_clear", "correction")
DRAFT, PENDING_APPROVAL, APPROVED, SCHEDULED = "draft", "pending_approval", "approved", "scheduled"
SENDING, DONE, CANCELLED, FAILED = "sending", "done", "cancelled", "failed"
STATUSES = (DRAFT, PENDING_APPROVAL, APPROVED, SCHEDULED, SENDING, DONE, CANCELLED, FAILED)
TRANSITIONS = {
    DRAFT: (PENDING_APPROVAL, APPROVED, CANCELLED),
    PENDING_APPROVAL: (APPROVED, DRAFT, CANCELLED),  # back to draft = sent back for changes
    APPROVED: (SCHEDULED, SENDING, CANCELLED, FAILED),
    SCHEDULED: (SENDING, APPROVED, CANCELLED, FAILED),
    SENDING: (DONE, CANCELLED, FAILED),
    DONE: (), CANCELLED: (), FAILED: (),
}
EDITABLE = (DRAFT, PENDING_APPROVAL, APPROVED, SCHEDULED)
# WhatsApp allows free-form messages for 24 h after the family's last message; stop a little early,
# since the send happens a moment after the check and Twilio would refuse it (63016).
WHATSAPP_SESSION_SECONDS = 24 * 3600 - 300
ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
AUDIENCE_CHUNK = 1000  # contact hashes read per round trip


def new_id() -> str:
    """A fresh broadcast id."""
    return secrets.token_hex(8)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Broadcast:
    """One alert: what it says in each language, to whom, and where it is in its life cycle."""

    id: str
    schools: tuple[str, ...]
    kind: str
    texts: dict[str, str]  # language -> the final text (status label and verification footer included)
    code: str  # short verification code families can text back
    created_by: str
    languages: tuple[str, ...] | None = None  # only subscribers whose language is listed
    fallback_language: str | None = None  # the text for recipients whose language has none
    whatsapp_templates: dict[str, dict] = field(default_factory=dict)  # lang -> content_sid, variables
    urgent: bool = False
    corrects: str | None = None  # the broadcast a correction corrects
    workshop: str | None = None  # a message to one workshop's registrants instead of schools' subscribers
    approved_by: str | None = None
    verified_by: str | None = None
    content_version: str = ""
    created_at: datetime = field(default_factory=_now)
    scheduled_for: datetime | None = None
    status: str = DRAFT
    started_at: datetime | None = None
    finished_at: datetime | None = None
    starts_at: datetime | None = None  # when a scheduled broadcast goes out (its time, or quiet hours' end)
    bodies: dict[str, str] = field(default_factory=dict)  # language -> what it says, unframed (VERIFY quotes it)

    def to_json(self) -> str:
        """The stored form (status and times are stored beside it, to change atomically)."""
        data = asdict(self)
        for name in ("status", "started_at", "finished_at", "starts_at"):
            data.pop(name)
        for name in ("created_at", "scheduled_for"):
            data[name] = data[name].isoformat() if data[name] else None
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_stored(cls, stored: dict[bytes, bytes]) -> Broadcast:
        """Rebuild a broadcast from its Redis hash."""
        text = {k.decode(): v.decode() for k, v in stored.items()}
        data = json.loads(text["doc"])
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["schools"] = tuple(data["schools"])
        data["languages"] = tuple(data["languages"]) if data.get("languages") is not None else None
        for name in ("created_at", "scheduled_for"):
            data[name] = datetime.fromisoformat(data[name]) if data.get(name) else None
        for name in ("started_at", "finished_at", "starts_at"):
            data[name] = datetime.fromisoformat(text[name]) if text.get(name) else None
        return cls(status=text["status"], **data)

    def delivery_for(self, language: str, channel: str, wa_seen: int | None, now: float) -> Delivery:
        """What a recipient in this language on this channel is sent; raise Undeliverable if nothing."""
        used = language if language in self.texts else self.fallback_language
        if used not in self.texts:
            raise Undeliverable(NO_TRANSLATION)
        if channel == WHATSAPP:
            if wa_seen is not None and now - wa_seen <= WHATSAPP_SESSION_SECONDS:
                return Delivery(used, self.texts[used])
            template_language = language if language in self.whatsapp_templates else self.fallback_language
            template = self.whatsapp_templates.get(template_language or "")
            if not template:
                raise Undeliverable(WINDOW_CLOSED)
            return Delivery(template_language, "", template["content_sid"],
                            {str(k): str(v) for k, v in (template.get("variables") or {}).items()})
        body = encoding.for_sms(self.texts[used], used)  # find_sent compares this same body after a crash
        return Delivery(used, body, segments=segments.count(body).segments)


_CREATE = broadcast_index.LUA + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 'id' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'code' end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'status', ARGV[2], 'owners', ARGV[6], 'kind', ARGV[7], 'by', ARGV[8],
           'score', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
aviso_index(KEYS[1], ARGV[3], ARGV[2], '')
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[4] - ARGV[5])
return 'ok'
"""
_SAVE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '' end
for s in string.gmatch(ARGV[2], '%S+') do
  if s == status then redis.call('HSET', KEYS[1], 'doc', ARGV[1]) return 'ok' end
end
return status
"""
_TRANSITION = broadcast_index.LUA + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {0, ''} end
for s in string.gmatch(ARGV[2], '%S+') do
  if s == status then
    redis.call('HSET', KEYS[1], 'status', ARGV[1])
    aviso_index(KEYS[1], ARGV[6], ARGV[1], status)
    if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[3]) == 0 then
      redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
    end
    if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'failure', ARGV[5]) end
    return {1, status}
  end
end
return {0, status}
"""

# Who of a chunk of contacts can be sent to: three values each (language, channel, WhatsApp time), the
# language false for a contact that is gone or opted out.
_AUDIENCE = """
local out = {}
for i, key in ipairs(KEYS) do
  local f = redis.call('HMGET', key, 'lang', 'ch', 'opted_out', 'wa_seen')
  if (not f[1] and not f[2]) or f[3] == '1' then out[3 * i - 2] = false else out[3 * i - 2] = f[1] or '' end
  out[3 * i - 1] = f[2] or ''
  out[3 * i] = f[4] or ''
end
return out
"""


class BroadcastStore:
    """Broadcasts and their per-recipient records in Redis."""

    def __init__(self, connection: redis.Redis):
        self.connection = connection
        self.outcome_store = OutcomeStore(connection)
        self._scripts = {name: connection.register_script(source) for name, source in (
            ("create", _CREATE), ("save", _SAVE), ("transition", _TRANSITION), ("audience", _AUDIENCE))}

    def create(self, broadcast: Broadcast) -> Broadcast:
        """Store a new broadcast (as a draft unless its status says otherwise)."""
        _validate(broadcast)
        code = broadcast.code.strip().upper()
        broadcast = replace(broadcast, code=code)
        answer = self._scripts["create"](
            keys=[keys.BROADCAST.format(id=broadcast.id), keys.BROADCAST_CODE.format(code=code),
                  keys.BROADCASTS_RECENT],
            args=[broadcast.to_json(), broadcast.status, broadcast.id, broadcast.created_at.timestamp(),
                  keys.BROADCAST_TTL_SECONDS, ",".join(broadcast.schools), broadcast.kind, broadcast.created_by])
        if answer != b"ok":
            raise DuplicateBroadcast(f"a broadcast with this {answer.decode()} already exists")
        if broadcast.corrects:  # VERIFY of the original says it was corrected, once a correction went out
            corrections = keys.BROADCAST_CORRECTIONS.format(id=broadcast.corrects)
            pipe = self.connection.pipeline(transaction=False)
            pipe.sadd(corrections, broadcast.id)
            pipe.expire(corrections, keys.BROADCAST_TTL_SECONDS)
            pipe.execute()
        return broadcast

    def save(self, broadcast: Broadcast) -> Broadcast:
        """Store edits to a broadcast not yet sending (its status changes only through transition)."""
        _validate(broadcast)
        answer = self._scripts["save"](keys=[keys.BROADCAST.format(id=broadcast.id)],
                                       args=[broadcast.to_json(), " ".join(EDITABLE)])
        if answer == b"":
            raise BroadcastNotFound(broadcast.id)
        if answer != b"ok":
            raise InvalidTransition(f"broadcast {broadcast.id} is {answer.decode()}: it can no longer change")
        return self.get(broadcast.id)

    def get(self, broadcast_id: str) -> Broadcast:
        """The broadcast with this id, or BroadcastNotFound."""
        stored = self.connection.hgetall(keys.BROADCAST.format(id=broadcast_id)) if ID_PATTERN.match(
            broadcast_id or "") else {}
        if not stored:
            raise BroadcastNotFound(broadcast_id)
        return Broadcast.from_stored(stored)

    def list_recent(self, limit: int = 20) -> list[Broadcast]:
        """The newest broadcasts first."""
        ids = [i.decode() for i in self.connection.zrevrange(keys.BROADCASTS_RECENT, 0, limit - 1)]
        pipe = self.connection.pipeline(transaction=False)
        for broadcast_id in ids:
            pipe.hgetall(keys.BROADCAST.format(id=broadcast_id))
        return [Broadcast.from_stored(stored) for stored in pipe.execute() if stored]

    def find_by_code(self, code: str) -> Broadcast | None:
        """The broadcast a verification code belongs to (VERIFY <code>), or None."""
        broadcast_id = self.connection.get(keys.BROADCAST_CODE.format(code=code.strip().upper()))
        try:
            return self.get(broadcast_id.decode()) if broadcast_id else None
        except BroadcastNotFound:
            return None

    def set_start(self, broadcast_id: str, when: datetime) -> None:
        """Note when a scheduled broadcast will go out (shown to staff; the scheduler holds the job)."""
        self.connection.hset(keys.BROADCAST.format(id=broadcast_id), "starts_at", when.isoformat())

    def corrections_of(self, broadcast_id: str) -> list[Broadcast]:
        """The corrections of a broadcast that started sending, oldest first."""
        ids = sorted(i.decode() for i in self.connection.smembers(keys.BROADCAST_CORRECTIONS.format(id=broadcast_id)))
        pipe = self.connection.pipeline(transaction=False)
        for correction_id in ids:
            pipe.hgetall(keys.BROADCAST.format(id=correction_id))
        found = [Broadcast.from_stored(stored) for stored in pipe.execute() if stored]
        return sorted((b for b in found if b.started_at is not None), key=lambda b: b.started_at)

    def transition(self, broadcast_id: str, to: str, *, failure: str = "") -> Broadcast:
        """Move a broadcast to a new status, or raise InvalidTransition; stamps started/finished."""
        if to not in STATUSES:
            raise InvalidTransition(f"unknown status {to!r}")
        allowed = " ".join(s for s, targets in TRANSITIONS.items() if to in targets)
        stamp = "started_at" if to == SENDING else "finished_at" if to in (DONE, CANCELLED, FAILED) else ""
        ok, current = self._scripts["transition"](
            keys=[keys.BROADCAST.format(id=broadcast_id)],
            args=[to, allowed, stamp, _now().isoformat(), failure, broadcast_id])
        if not current:
            raise BroadcastNotFound(broadcast_id)
        if not ok:
            raise InvalidTransition(f"broadcast {broadcast_id} is {current.decode()}, not allowed to become {to}")
        return self.get(broadcast_id)

    def set_audience_size(self, broadcast_id: str, size: int) -> None:
        """Record how many recipients the send began with."""
        self.connection.hset(keys.BROADCAST.format(id=broadcast_id), "audience", size)

    def failure(self, broadcast_id: str) -> str:
        """Why a failed broadcast failed ('' otherwise)."""
        return (self.connection.hget(keys.BROADCAST.format(id=broadcast_id), "failure") or b"").decode()

    def audience(self, broadcast: Broadcast) -> list[Recipient]:
        """Its schools' subscribers in its languages (a correction: the original's recipients), reachable now."""
        if broadcast.kind == "correction":
            candidates, wanted = self._original_recipients(broadcast.corrects or ""), None
        elif broadcast.workshop:
            # the workshop's seats and waitlist, in sign-up order
            candidates = registrants(self.connection, broadcast.workshop, waitlist=True)
            wanted = set(broadcast.languages) if broadcast.languages is not None else None
        else:
            school_keys = [keys.SCHOOL_SUBSCRIBERS.format(code=code) for code in broadcast.schools]
            candidates = sorted(m.decode() for m in self.connection.sunion(school_keys)) if school_keys else []
            wanted = set(broadcast.languages) if broadcast.languages is not None else None
        recipients = []
        for start in range(0, len(candidates), AUDIENCE_CHUNK):
            chunk = candidates[start:start + AUDIENCE_CHUNK]
            # One script call per chunk: a pipeline of HMGETs cost 20 µs a contact in redis-py, two
            # seconds before a district-wide broadcast could start (and in every preview of it).
            found = self._scripts["audience"](keys=[contact_redis_key(contact) for contact in chunk])
            for contact, lang, channel, wa_seen in zip(chunk, found[0::3], found[1::3], found[2::3], strict=True):
                if lang is None:  # gone, or opted out
                    continue
                language = lang.decode()
                if wanted is not None and language not in wanted:
                    continue
                recipients.append(Recipient(contact, language, channel.decode() or SMS,
                                            int(wa_seen) if wa_seen else None))
        return recipients

    def plan(self, broadcast: Broadcast, *, now: float | None = None, strict: bool = True,
             district: frozenset[str] = frozenset()) -> Plan:
        """The preview: recipients per language and channel, missing texts, segments; strict refuses gaps.
        One school's or the whole district's (every code in district) read the audience counts."""
        now = _now().timestamp() if now is None else now
        groups = self._cohorts(broadcast, now, district)
        missing = tuple(sorted(lang for lang in groups if lang not in broadcast.texts))
        if missing and strict and broadcast.fallback_language not in broadcast.texts:
            raise MissingTranslation(missing)
        rows = []
        for language, cohorts in sorted(groups.items()):
            counts = {"sms": 0, "whatsapp": 0, "template": 0, "unreachable": 0, "segments": 0}
            for (channel, wa_seen), n in cohorts.items():
                counts["whatsapp" if channel == WHATSAPP else "sms"] += n
                try:
                    delivery = broadcast.delivery_for(language, channel, wa_seen, now)
                except Undeliverable:
                    counts["unreachable"] += n if channel == WHATSAPP else 0
                    continue
                counts["template"] += n if delivery.content_sid is not None else 0
                counts["segments"] += delivery.segments * n if channel != WHATSAPP else 0  # SMS only
            used = language if language in broadcast.texts else broadcast.fallback_language
            text = broadcast.texts.get(used or "")
            rows.append(LanguagePlan(language, used if text else None, counts["sms"], counts["whatsapp"],
                                     counts["template"], counts["unreachable"],
                                     encoding.sms_cost(text, used) if text else None,
                                     counts["segments"]))
        return Plan(broadcast.id, tuple(rows), missing, sum(r.sms + r.whatsapp for r in rows),
                    sum(r.sms + r.whatsapp - r.whatsapp_unreachable for r in rows if r.text_language),
                    sum(r.total_segments for r in rows))

    def _cohorts(self, broadcast: Broadcast, now: float, district: frozenset[str]) -> dict[str, Counter]:
        """Recipients per language, as (channel, WhatsApp time) -> how many: from the audience counts for
        one school or the district (cost independent of its size), else from the audience itself."""
        schools = set(broadcast.schools)
        plain = broadcast.kind != "correction" and not broadcast.workshop
        if plain and (len(schools) == 1 or (district and schools >= district)):
            return audience_counts.cohorts(self.connection, next(iter(schools)) if len(schools) == 1 else None,
                                           broadcast.languages, now, WHATSAPP_SESSION_SECONDS)
        groups: dict[str, Counter] = {}
        for recipient in self.audience(broadcast):
            groups.setdefault(recipient.language, Counter())[(recipient.channel, recipient.wa_seen)] += 1
        return groups

    def _original_recipients(self, original_id: str) -> list[str]:
        if not self.connection.exists(keys.BROADCAST.format(id=original_id)):
            raise OriginalUnavailable(f"no broadcast {original_id}")
        try:
            return self.outcome_store.recipients_sent(original_id)
        except OutcomeError as exc:
            raise OriginalUnavailable(str(exc)) from None

    def outcomes(self, broadcast_id: str) -> Outcomes:
        """Counts of what happened to a broadcast's recipients (sent, failed, skipped, delivered, pending)."""
        return self.outcome_store.summary(broadcast_id)


def _validate(broadcast: Broadcast) -> None:
    if not ID_PATTERN.match(broadcast.id):
        raise InvalidBroadcast("id must be 16 lowercase hex digits (broadcasts.new_id())")
    if broadcast.kind not in KINDS:
        raise InvalidBroadcast(f"kind must be one of {', '.join(KINDS)}")
    if broadcast.status not in STATUSES:
        raise InvalidBroadcast(f"status must be one of {', '.join(STATUSES)}")
    if not broadcast.texts or not all(broadcast.texts.values()):
        raise InvalidBroadcast("a broadcast needs a text for at least one language, none empty")
    if (broadcast.kind == "correction") != bool(broadcast.corrects):
        raise InvalidBroadcast("a correction (and only a correction) names the broadcast it corrects")
    if not broadcast.code.strip():
        raise InvalidBroadcast("a broadcast needs a verification code")
    if not broadcast.schools and broadcast.kind != "correction" and not broadcast.workshop:
        raise InvalidBroadcast("a broadcast needs at least one school")
    if any("content_sid" not in template for template in broadcast.whatsapp_templates.values()):
        raise InvalidBroadcast("each WhatsApp template needs a content_sid")
