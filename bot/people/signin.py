"""Sign-in codes for the staff dashboard: who may ask for one when, each code's wrong tries, and the district's
budget of wrong codes. Nothing here can lock a staff member out of their own sign-in:

- Asking for codes is spread out with back-off per number (a few at once, then 1, 2, 4, 8, 15 minutes
  apart) instead of a hard lock; a browser that signed in with the number before has its own allowance, so
  an attacker's requests never hold the real person up on their own phone.
- Each code belongs to the browser that asked for it (a ticket in its session) and dies after a few wrong
  tries: guesses elsewhere cannot spend the real person's code.
- The district has a budget of wrong codes per hour; when it is spent, admins get one SMS and sign-in
  slows until the hour ends: one new code a minute district-wide for browsers not known, one try per code,
  and codes made before the slowing die unchecked (asked again, a known browser gets one at once). An
  attacker's guesses are so bounded by the budget plus 60 an hour, however large the roster.

The request only touches state named by keyed hashes, the same way for every number; finding out whether
a number is on the roster, decrypting it and texting happen in a job (signin_jobs), after the answer.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis

from bot.people.identity import Keyring
from bot.store import keys

CODE_DIGITS = 6
CODE_TTL_SECONDS = 10 * 60
FREE_CODES = 2  # codes a number may get at once before they are spaced out
BACKOFF_SECONDS = 60  # the third code waits this long, each later one twice the one before
BACKOFF_MAX_SECONDS = 15 * 60
BACKOFF_MEMORY_SECONDS = 60 * 60  # a number's back-off is forgotten after an hour without requests
HAMMERED_REQUESTS = 5  # at this many requests in the back-off's memory the staff member is told, once
HAMMERED_NOTICE_SECONDS = 24 * 3600
TRIES_PER_CODE = 3
SLOWED_TRIES_PER_CODE = 1
SLOWED_SPACING_SECONDS = 60  # while slowed: one new code a minute district-wide for unknown browsers
FAILURE_BUCKET_SECONDS = 3600

# One step per request for a number: back-off (a few free codes, then doubling waits), remembered for an
# hour after the last request. Returns {issued (1/0), seconds to wait, requests seen}.
_ASK = """
local now = tonumber(ARGV[1])
local free, base, most, memory = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if now - tonumber(redis.call('HGET', KEYS[1], 'last') or now) > memory then redis.call('DEL', KEYS[1]) end
local asks = redis.call('HINCRBY', KEYS[1], 'asks', 1)
local nxt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
redis.call('HSET', KEYS[1], 'last', now)
redis.call('EXPIRE', KEYS[1], memory)
if now < nxt then return {0, nxt - now, asks} end
local issued = redis.call('HINCRBY', KEYS[1], 'issued', 1)
local wait = 0
if issued >= free then wait = math.min(base * 2 ^ (issued - free), most) end
redis.call('HSET', KEYS[1], 'next', now + wait)
return {1, 0, asks}
"""

# Check a code: right -> used up (1, staff id); wrong -> one try fewer, gone at none left (0, tries left);
# no such code, or expired -> (-1); made before the district's slowing began, while slowed -> gone
# unchecked (2): codes gathered beforehand cannot carry guesses past the budget.
_REDEEM = """
local stored = redis.call('HMGET', KEYS[1], 'code', 'staff', 'at', 'left', 'era')
if not stored[1] then return {-1, ''} end
if tonumber(ARGV[2]) - tonumber(stored[3]) > tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
  return {-1, ''}
end
if ARGV[4] == '1' and stored[5] ~= (redis.call('GET', KEYS[2]) or '0') then
  redis.call('DEL', KEYS[1])
  return {2, ''}
end
if stored[1] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {1, stored[2]}
end
local left = redis.call('HINCRBY', KEYS[1], 'left', -1)
if left <= 0 then redis.call('DEL', KEYS[1]) end
return {0, tostring(left)}
"""


@dataclass(frozen=True)
class Ask:
    """The answer to a request for a code: whether one is issued, else how long to wait."""

    issued: bool
    wait_seconds: int
    hammered: bool  # this request is the one that makes the number's requests look like an attack
    tries: int  # wrong tries the code allows


@dataclass(frozen=True)
class Check:
    """The result of entering a code."""

    staff_id: str | None  # set when the code was right ("" for a number off the roster: no sign-in)
    used_up: bool = False  # the code had its last wrong try
    budget_spent: bool = False  # this wrong try spent the district's hourly budget


class SignIn:
    """Sign-in codes and their limits in Redis, named by keyed hashes (never a number or a code)."""

    def __init__(self, connection: redis.Redis, keyring: Keyring, failure_budget: int):
        self.connection = connection
        self.keyring = keyring
        self.failure_budget = failure_budget
        self._ask = connection.register_script(_ASK)
        self._redeem = connection.register_script(_REDEEM)

    def number_hash(self, phone: str) -> str:
        """The keyed name of a number typed at sign-in."""
        return self.keyring.keyed_hash("dashboard-number", phone)

    def code_hash(self, number_hash: str, code: str) -> str:
        """The keyed hash a code is stored (and compared) as."""
        return self.keyring.keyed_hash("dashboard-code", f"{number_hash}:{code}")

    def ask(self, number_hash: str, *, known_browser: bool, now: float) -> Ask:
        """Count a request for a code; issue one unless back-off (or the district's slowing) says wait."""
        who = f"{number_hash}:known" if known_browser else number_hash
        issued, wait, asks = self._ask(keys=[keys.DASHBOARD_BACKOFF.format(who=who)],
                                       args=[int(now), FREE_CODES, BACKOFF_SECONDS, BACKOFF_MAX_SECONDS,
                                             BACKOFF_MEMORY_SECONDS])
        slowed = self.slowed(now)
        hammered = not known_browser and int(asks) == HAMMERED_REQUESTS  # a known browser is the staff member
        if issued and slowed and not known_browser:
            if not self.connection.set(keys.DASHBOARD_SLOWED_SLOT, 1, nx=True, ex=SLOWED_SPACING_SECONDS):
                wait = max(int(self.connection.ttl(keys.DASHBOARD_SLOWED_SLOT)), 1)
                issued = 0
        return Ask(bool(issued), int(wait), hammered, SLOWED_TRIES_PER_CODE if slowed else TRIES_PER_CODE)

    def store_code(self, number_hash: str, ticket: str, staff_id: str, tries: int, now: float) -> str:
        """A new code for the browser holding this ticket, stored only as a keyed hash; returns the code."""
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        key = keys.DASHBOARD_CODE.format(number=number_hash, ticket=ticket)
        era = (self.connection.get(keys.DASHBOARD_SLOWED_ERA) or b"0").decode()
        pipe = self.connection.pipeline(transaction=True)
        pipe.hset(key, mapping={"code": self.code_hash(number_hash, code), "staff": staff_id, "at": int(now),
                                "left": tries, "era": era})
        pipe.expire(key, CODE_TTL_SECONDS)
        pipe.execute()
        return code

    def check(self, number_hash: str, ticket: str, code: str, now: float) -> Check:
        """Redeem a code (single use); a wrong one costs a try and counts against the district's budget."""
        outcome, value = self._redeem(
            keys=[keys.DASHBOARD_CODE.format(number=number_hash, ticket=ticket), keys.DASHBOARD_SLOWED_ERA],
            args=[self.code_hash(number_hash, code), int(now), CODE_TTL_SECONDS, int(self.slowed(now))])
        if int(outcome) == 1:
            return Check(value.decode())
        if int(outcome) == -1:
            return Check(None)
        if int(outcome) == 2:
            return Check(None, used_up=True)
        failures = self._count_failure(now)
        if failures == self.failure_budget:  # the slowing begins: codes made before it stop working
            self.connection.incr(keys.DASHBOARD_SLOWED_ERA)
        return Check(None, used_up=int(value) <= 0, budget_spent=failures == self.failure_budget)

    def _count_failure(self, now: float) -> int:
        key = keys.DASHBOARD_FAILURES.format(bucket=int(now) // FAILURE_BUCKET_SECONDS)
        pipe = self.connection.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 2 * FAILURE_BUCKET_SECONDS)
        return pipe.execute()[0]

    def failures(self, now: float) -> int:
        """Wrong codes entered district-wide this hour."""
        raw = self.connection.get(keys.DASHBOARD_FAILURES.format(bucket=int(now) // FAILURE_BUCKET_SECONDS))
        return int(raw or 0)

    def slowed(self, now: float) -> bool:
        """True while this hour's budget of wrong codes is spent."""
        return self.failures(now) >= self.failure_budget

    def first_notice(self, number_hash: str) -> bool:
        """True once a day per number: whether to tell its staff member it is being hammered."""
        return bool(self.connection.set(keys.DASHBOARD_NOTICE.format(number=number_hash), 1, nx=True,
                                        ex=HAMMERED_NOTICE_SECONDS))

    def unlock(self, phone: str) -> None:
        """Forget a number's back-off and notice, so its staff member may ask for a code at once."""
        number_hash = self.number_hash(phone)
        self.connection.delete(keys.DASHBOARD_BACKOFF.format(who=number_hash),
                               keys.DASHBOARD_BACKOFF.format(who=f"{number_hash}:known"),
                               keys.DASHBOARD_NOTICE.format(number=number_hash))

    def unslow(self) -> None:
        """End the district's slowing (an admin judged the wrong codes harmless): forget the counts."""
        counts = list(self.connection.scan_iter(keys.DASHBOARD_FAILURES.format(bucket="*")))
        self.connection.delete(*counts, keys.DASHBOARD_SLOWED_SLOT)
