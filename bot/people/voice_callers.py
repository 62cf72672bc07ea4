"""Voice callers: the language a caller chose, kept on the same contact as their texts (SMS)."""

from __future__ import annotations

import redis

from bot.people.contacts import contact_redis_key
from bot.people.identity import SMS, Address, Keyring

# Set the language on the caller's contact; a caller Aviso has never seen becomes a contact like a first
# text would (number encrypted, channel, expiring unless it subscribes): never touch an existing expiry.
# KEYS: contact hash. ARGV: language, encrypted number, ttl seconds.
_REMEMBER = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'lang', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'lang', ARGV[1], 'num', ARGV[2], 'ch', 'sms')
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 1
"""

# Ask for calls for urgent alerts on the caller's contact (as VOICE by text), made if new like _REMEMBER.
# KEYS: contact hash. ARGV: language, encrypted number, ttl seconds.
_WANT_CALLS = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'voice', '1')
else
  redis.call('HSET', KEYS[1], 'voice', '1', 'lang', ARGV[1], 'num', ARGV[2], 'ch', 'sms')
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 1
"""


def sms_address(caller: Address) -> Address:
    """The SMS contact a caller is: calls come from the same number families text from."""
    return Address(SMS, caller.handle)


class VoiceCallers:
    """Reads and keeps callers' languages in Redis, by the contact's keyed hash (never the number)."""

    def __init__(self, connection: redis.Redis, keyring: Keyring, contact_ttl_seconds: int):
        self.connection = connection
        self.keyring = keyring
        self.contact_ttl_seconds = contact_ttl_seconds
        self._remember = connection.register_script(_REMEMBER)
        self._want_calls = connection.register_script(_WANT_CALLS)

    def language(self, caller: Address) -> str | None:
        """The language a caller chose by text or on an earlier call, or None."""
        key = contact_redis_key(self.keyring.contact_key(sms_address(caller)))
        value = self.connection.hget(key, "lang")
        return value.decode() if value else None

    def remember(self, caller: Address, language: str) -> None:
        """Keep a caller's language choice for their next call and their texts."""
        address = sms_address(caller)
        key = contact_redis_key(self.keyring.contact_key(address))
        self._remember(keys=[key], args=[language, self.keyring.encrypt(address.handle), self.contact_ttl_seconds])

    def want_calls(self, caller: Address, language: str) -> None:
        """The caller pressed 1 in the alerts menu: call them for their schools' urgent alerts."""
        address = sms_address(caller)
        key = contact_redis_key(self.keyring.contact_key(address))
        self._want_calls(keys=[key], args=[language, self.keyring.encrypt(address.handle), self.contact_ttl_seconds])
