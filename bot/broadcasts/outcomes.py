"""Outcomes: what happened to each recipient of a broadcast, keyed by contact key, and the roll-ups."""

from __future__ import annotations

import re
from dataclasses import dataclass

import redis

from bot.people.contacts import contact_redis_key
from bot.people.identity import SMS
from bot.store import keys

# A recipient's record (a value of keys.BROADCAST_OUTCOMES) is a claim while being sent, then final.
CLAIMED, SENT, FAILED, SKIPPED = "sending", "sent", "failed", "skipped"
OPTED_OUT, WINDOW_CLOSED, CONTACT_GONE, NO_TRANSLATION = (
    "opted_out", "whatsapp_window_closed", "contact_gone", "no_translation")  # reasons for skipped
RECONCILED = "reconciled"  # counter: claims left by a dead worker that Twilio had in fact sent
# Status callbacks that end a message's life, as rolled up (a WhatsApp "read" was delivered).
FINAL_STATUSES = {"delivered": "delivered", "read": "delivered", "undelivered": "undelivered",
                  "failed": "failed"}
BROADCAST_ID = re.compile(r"^[0-9a-f]{16}$")
EXPIRED, EXPIRED_CODE = "expired", 30036  # Twilio's "Validity Period Expired" (bot/validity.py)

# Claim a recipient: skip it on the spot if its contact is gone or opted out, else mark it claimed.
_CLAIM = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then return {'held', held} end
local f = redis.call('HMGET', KEYS[2], 'opted_out', 'lang', 'ch', 'wa_seen', 'num')
local outcome = nil
if redis.call('EXISTS', KEYS[2]) == 0 then outcome = 'skipped:contact_gone'
elseif f[1] == '1' then outcome = 'skipped:opted_out' end
redis.call('HSET', KEYS[1], ARGV[1], outcome or ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if outcome then
  redis.call('HINCRBY', KEYS[3], outcome, 1)
  redis.call('EXPIRE', KEYS[3], ARGV[4])
  return {'recorded', outcome}
end
return {'claimed', ARGV[2], f[2] or '', f[3] or '', f[4] or '', f[5] or ''}
"""
# _CLAIM for many recipients in one call (KEYS: records, counts, then each contact's hash; ARGV: the claim,
# the two TTLs, then the contact keys). Six values per recipient: state, value, lang, ch, wa_seen and the
# encrypted number, so that sending needs no other read.
_CLAIM_MANY = """
local out, counted = {}, false
for i = 4, #ARGV do
  local contact, hash = ARGV[i], KEYS[i - 1]
  local held = redis.call('HGET', KEYS[1], contact)
  if held then
    table.insert(out, 'held') table.insert(out, held)
    for _ = 1, 4 do table.insert(out, '') end
  else
    local f = redis.call('HMGET', hash, 'opted_out', 'lang', 'ch', 'wa_seen', 'num')
    local outcome = nil
    if redis.call('EXISTS', hash) == 0 then outcome = 'skipped:contact_gone'
    elseif f[1] == '1' then outcome = 'skipped:opted_out' end
    redis.call('HSET', KEYS[1], contact, outcome or ARGV[1])
    if outcome then
      redis.call('HINCRBY', KEYS[2], outcome, 1)
      counted = true
      table.insert(out, 'recorded') table.insert(out, outcome)
      for _ = 1, 4 do table.insert(out, '') end
    else
      table.insert(out, 'claimed') table.insert(out, ARGV[1])
      for j = 2, 5 do table.insert(out, f[j] or '') end
    end
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
if counted then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return out
"""
# Compare-and-set a claimed recipient's record; a final outcome is counted once and never replaced.
_RECORD = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) return 1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[6])
if ARGV[4] ~= '' then
  redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
  redis.call('EXPIRE', KEYS[2], ARGV[7])
end
if ARGV[5] ~= '' then
  local early = redis.call('HGET', KEYS[3], ARGV[5]) or ''
  redis.call('HSET', KEYS[3], ARGV[5], ARGV[1] .. early)
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
return 1
"""
# _RECORD for many recipients in one call (ARGV: the two TTLs, then contact, claim, outcome, counter, sid
# for each); returns how many claims were still the recorded value.
_RECORD_MANY = """
local done, counted, mapped = 0, false, false
for i = 3, #ARGV, 5 do
  local contact, outcome, counter, sid = ARGV[i], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if redis.call('HGET', KEYS[1], contact) == ARGV[i + 1] then
    done = done + 1
    if outcome == '' then redis.call('HDEL', KEYS[1], contact)
    else
      redis.call('HSET', KEYS[1], contact, outcome)
      if counter ~= '' then redis.call('HINCRBY', KEYS[2], counter, 1) counted = true end
      if sid ~= '' then
        local early = redis.call('HGET', KEYS[3], sid) or ''
        redis.call('HSET', KEYS[3], sid, contact .. early)
        mapped = true
      end
    end
  end
end
if done > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if counted then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
if mapped then redis.call('EXPIRE', KEYS[3], ARGV[1]) end
return done
"""
# Roll a status callback up once per message and final status (a callback may beat the sent record).
_STATUS = """
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
local v = redis.call('HGET', KEYS[1], ARGV[1]) or ''
local bar = string.find(v, '|', 1, true)
local contact, old = v, ''
if bar then contact, old = string.sub(v, 1, bar - 1), string.sub(v, bar + 1) end
if old == ARGV[2] then return 0 end
if old ~= '' then redis.call('HINCRBY', KEYS[2], 'cb:' .. old, -1) end
redis.call('HINCRBY', KEYS[2], 'cb:' .. ARGV[2], 1)
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], contact .. '|' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class OutcomeError(Exception):
    """Recipient records that are not there (a broadcast never sent, or records expired)."""


@dataclass(frozen=True)
class Outcomes:
    """What happened to a broadcast's recipients, and what the status callbacks said since."""

    audience: int
    sent: int
    failed: dict[str, int]  # Twilio error code (or "timeout", "20429" when retries ran out) -> recipients
    skipped: dict[str, int]  # reason -> recipients
    delivered: int
    undelivered: int
    delivery_failed: int
    reconciled: int  # recipients found already sent at Twilio after a worker died mid-send
    pending: int  # not yet sent, failed or skipped (still sending, or cancelled before them)
    expired: int = 0  # accepted, then dropped by Twilio unsent past the broadcast's ValidityPeriod (30036)


@dataclass(frozen=True)
class Claim:
    """The result of claiming a recipient before sending: claimed (with the contact's fields) or not."""

    state: str  # "claimed", "held" (a record exists: value) or "recorded" (skipped just now: value)
    value: str
    language: str = ""
    channel: str = SMS
    wa_seen: int | None = None
    number_token: str = ""  # the contact's encrypted number as stored ("" when it has none)


def claim_value(token: str, at: float) -> str:
    """The record that marks a recipient as being sent by one run, since a time."""
    return f"{CLAIMED}:{at:.3f}:{token}"


def claimed_at(value: str) -> float | None:
    """When a claim was made, or None when the record is final."""
    parts = value.split(":")
    return float(parts[1]) if parts[0] == CLAIMED and len(parts) == 3 else None


def _counter(outcome: str) -> str:
    """The aggregate counter a recorded outcome adds to ("" for a claim or a dropped claim)."""
    if not outcome or outcome.startswith(CLAIMED):
        return ""
    return SENT if outcome.startswith(SENT + ":") else outcome


class OutcomeStore:
    """Per-broadcast recipient records, the message sid map and the aggregate counters."""

    def __init__(self, connection: redis.Redis):
        self.connection = connection
        self._claim = connection.register_script(_CLAIM)
        self._record = connection.register_script(_RECORD)
        self._claim_many = connection.register_script(_CLAIM_MANY)
        self._record_many = connection.register_script(_RECORD_MANY)
        self._status = connection.register_script(_STATUS)

    def claim(self, broadcast_id: str, contact: str, value: str) -> Claim:
        """Claim a recipient before sending (atomically skipping it if gone or opted out), with its fields and
        encrypted number."""
        answer = [part.decode() for part in self._claim(
            keys=[keys.BROADCAST_OUTCOMES.format(id=broadcast_id), contact_redis_key(contact),
                  keys.BROADCAST_COUNTS.format(id=broadcast_id)],
            args=[contact, value, keys.BROADCAST_RECIPIENT_TTL_SECONDS, keys.BROADCAST_TTL_SECONDS])]
        if answer[0] != "claimed":
            return Claim(answer[0], answer[1])
        lang, channel, wa_seen, token = answer[2:]
        return Claim("claimed", value, lang, channel or SMS, int(wa_seen) if wa_seen else None, token)

    def claim_many(self, broadcast_id: str, contacts: list[str], value: str) -> list[Claim]:
        """claim() for many recipients in one round trip, each with its encrypted number (one Claim each)."""
        if not contacts:
            return []
        answer = self._claim_many(
            keys=[keys.BROADCAST_OUTCOMES.format(id=broadcast_id), keys.BROADCAST_COUNTS.format(id=broadcast_id),
                  *map(contact_redis_key, contacts)],
            args=[value, keys.BROADCAST_RECIPIENT_TTL_SECONDS, keys.BROADCAST_TTL_SECONDS, *contacts])
        claims = []
        for i in range(0, len(answer), 6):
            state, held, lang, channel, wa_seen, token = (part.decode() for part in answer[i:i + 6])
            if state != "claimed":
                claims.append(Claim(state, held))
            else:
                claims.append(Claim(state, held, lang, channel or SMS, int(wa_seen) if wa_seen else None, token))
        return claims

    def record(self, broadcast_id: str, contact: str, claim: str, outcome: str, sid: str = "") -> bool:
        """Replace a claim with sent:<sid>, failed:<code>, skipped:<reason> or a newer claim, or drop it
        (outcome ''); False when the claim is no longer the recorded value."""
        return bool(self._record(
            keys=[keys.BROADCAST_OUTCOMES.format(id=broadcast_id), keys.BROADCAST_COUNTS.format(id=broadcast_id),
                  keys.BROADCAST_SIDS.format(id=broadcast_id)],
            args=[contact, claim, outcome, _counter(outcome), sid, keys.BROADCAST_RECIPIENT_TTL_SECONDS,
                  keys.BROADCAST_TTL_SECONDS]))

    def record_many(self, broadcast_id: str, records: list[tuple[str, str, str, str]]) -> int:
        """record() for many (contact, claim, outcome, sid) in one round trip; return how many applied."""
        if not records:
            return 0
        args: list[str | int] = [keys.BROADCAST_RECIPIENT_TTL_SECONDS, keys.BROADCAST_TTL_SECONDS]
        for contact, claim, outcome, sid in records:
            args += (contact, claim, outcome, _counter(outcome), sid)
        return int(self._record_many(
            keys=[keys.BROADCAST_OUTCOMES.format(id=broadcast_id), keys.BROADCAST_COUNTS.format(id=broadcast_id),
                  keys.BROADCAST_SIDS.format(id=broadcast_id)], args=args))

    def count(self, broadcast_id: str, counter: str, n: int = 1) -> None:
        """Add to one of a broadcast's aggregate counters."""
        name = keys.BROADCAST_COUNTS.format(id=broadcast_id)
        pipe = self.connection.pipeline(transaction=False)
        pipe.hincrby(name, counter, n)
        pipe.expire(name, keys.BROADCAST_TTL_SECONDS)
        pipe.execute()

    def outcome_of(self, broadcast_id: str, contact: str) -> str | None:
        """One recipient's record (sending:…, sent:<sid>, failed:<code>, skipped:<reason>) or None."""
        value = self.connection.hget(keys.BROADCAST_OUTCOMES.format(id=broadcast_id), contact)
        return value.decode() if value else None

    def recipients_sent(self, broadcast_id: str) -> list[str]:
        """The contact keys a broadcast was sent to; OutcomeError when it has no records."""
        name = keys.BROADCAST_OUTCOMES.format(id=broadcast_id)
        if not self.connection.exists(name):
            raise OutcomeError(f"broadcast {broadcast_id} has no recipient records (never sent, or expired)")
        return sorted(k.decode() for k, v in self.connection.hscan_iter(name, count=1000)
                      if v.startswith(SENT.encode() + b":"))

    def record_status(self, broadcast_id: str, sid: str, status: str, error_code: str = "") -> bool:
        """Roll a status callback up into the broadcast's counts, once per message and final status (a message
        Twilio dropped past its ValidityPeriod counts as expired, not failed)."""
        final = EXPIRED if status == "failed" and error_code == str(EXPIRED_CODE) else FINAL_STATUSES.get(status)
        if final is None or not BROADCAST_ID.match(broadcast_id or ""):
            return False
        return bool(self._status(
            keys=[keys.BROADCAST_SIDS.format(id=broadcast_id), keys.BROADCAST_COUNTS.format(id=broadcast_id),
                  keys.BROADCAST.format(id=broadcast_id)],
            args=[sid, final, keys.BROADCAST_RECIPIENT_TTL_SECONDS, keys.BROADCAST_TTL_SECONDS]))

    def summary(self, broadcast_id: str) -> Outcomes:
        """Counts of what happened to a broadcast's recipients."""
        pipe = self.connection.pipeline(transaction=False)
        pipe.hget(keys.BROADCAST.format(id=broadcast_id), "audience")
        pipe.hgetall(keys.BROADCAST_COUNTS.format(id=broadcast_id))
        audience, raw = pipe.execute()
        counts = {k.decode(): int(v) for k, v in raw.items()}
        failed = {k.split(":", 1)[1]: n for k, n in counts.items() if k.startswith(FAILED + ":") and n}
        skipped = {k.split(":", 1)[1]: n for k, n in counts.items() if k.startswith(SKIPPED + ":") and n}
        audience = int(audience or 0)
        done = counts.get(SENT, 0) + sum(failed.values()) + sum(skipped.values())
        return Outcomes(audience, counts.get(SENT, 0), failed, skipped, counts.get("cb:delivered", 0),
                        counts.get("cb:undelivered", 0), counts.get("cb:failed", 0),
                        counts.get(RECONCILED, 0), max(audience - done, 0), counts.get("cb:" + EXPIRED, 0))
