"""Identity: phone addresses, the keyed hash that names a contact, and encryption at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SMS = "sms"
WHATSAPP = "whatsapp"
CHANNELS = (SMS, WHATSAPP)
WHATSAPP_PREFIX = "whatsapp:"
CONTACT_KEY_HEX_LENGTH = 32  # 128 bits of an HMAC-SHA256 are plenty to tell contacts apart
LOG_PREFIX_LENGTH = 8
# A WhatsApp business-scoped user id (BSUID): a country code, a dot, up to 128 letters and digits. Meta
# gives one to every WhatsApp user; a user with a username may reach Aviso with it instead of a number.
USER_ID = re.compile(r"[A-Z]{2}\.[A-Za-z0-9]{1,128}")
# A North American number already in E.164 (+1, then ten digits, the first not 0 or 1): phonenumbers would
# parse it to itself, possible; checked here without it, as most of Aviso's families write from one.
NANP_E164 = re.compile(r"\+1[2-9][0-9]{9}")


class InvalidAddress(ValueError):
    """A From/To value that is not a phone number Aviso can use."""


@dataclass(frozen=True)
class Address:
    """A channel and a handle (an E.164 number, or on WhatsApp a business-scoped user id): one family's phone."""

    channel: str
    handle: str

    @property
    def is_user_id(self) -> bool:
        """Whether the handle is a WhatsApp business-scoped user id rather than a number."""
        return not self.handle.startswith("+")

    @property
    def e164(self) -> str:
        """The number; a user id has none (InvalidAddress), so code that needs a number cannot get a BSUID."""
        if self.is_user_id:
            raise InvalidAddress("a WhatsApp user id is not a phone number")
        return self.handle

    @property
    def twilio(self) -> str:
        """The address as Twilio writes it: +1…, whatsapp:+1…, or whatsapp:US.1… for a user id (To and From)."""
        # Every message Aviso sends is addressed here. Twilio puts a user id in From (and ExternalUserId)
        # as whatsapp:US.1… with no "+", and takes it back the same way in To; should Twilio settle on
        # another form for sending, this line is the one to change.
        return f"{WHATSAPP_PREFIX}{self.handle}" if self.channel == WHATSAPP else self.handle


def parse_address(raw: str) -> Address:
    """Parse Twilio's From: `+E164`, `whatsapp:+E164` (numbers through phonenumbers) or `whatsapp:US.1…`."""
    value = (raw or "").strip()
    channel = SMS
    if value.lower().startswith(WHATSAPP_PREFIX):
        channel, value = WHATSAPP, value[len(WHATSAPP_PREFIX) :]
    if channel == WHATSAPP and USER_ID.fullmatch(value):
        return Address(WHATSAPP, value)  # opaque: kept exactly as Meta wrote it
    if NANP_E164.fullmatch(value):
        return Address(channel, value)
    if not value.startswith("+"):
        raise InvalidAddress("a phone number in +E.164 form (or on WhatsApp a user id like US.1234) is required")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise InvalidAddress("not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidAddress("not a possible phone number")
    return Address(channel, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"aviso", info=purpose).derive(secret.encode())


class Keyring:
    """The naming key (contact ids, keyed hashes) and the encryption keys (numbers at rest), kept apart so
    that encryption keys rotate without changing anyone's id."""

    def __init__(self, naming_secret: str, encryption_secrets: tuple[str, ...] = ()):
        if not naming_secret:
            raise ValueError("a naming key is required")
        self._hash_key = _derive(naming_secret, b"contact-id")
        # Without encryption keys of its own, a deployment encrypts with the naming secret's Fernet key,
        # as every deployment did before the two were separated: its stored numbers keep decrypting.
        fernets = [Fernet(base64.urlsafe_b64encode(_derive(key, b"fernet")))
                   for key in encryption_secrets or (naming_secret,)]
        self._newest = fernets[0]
        self._newest_secret = (encryption_secrets or (naming_secret,))[0]
        self._fernet = MultiFernet(fernets)

    def naming_fingerprint(self) -> str:
        """A keyed hash that tells whether two keyrings name contacts alike (it reveals nothing of the key)."""
        return self.keyed_hash("naming-key-fingerprint", "aviso")

    def contact_key(self, address: Address) -> str:
        """The stable, keyed, irreversible name of a contact (or of a WhatsApp user id that names one)."""
        # hmac.digest: the same HMAC in one C call (an hmac.new object costs twice as much, on every message)
        digest = hmac.digest(self._hash_key, f"{address.channel}:{address.handle}".encode(), "sha256")
        return digest.hex()[:CONTACT_KEY_HEX_LENGTH]

    def keyed_hash(self, purpose: str, value: str) -> str:
        """A keyed hash of any value (login attempts by number, say) that must not be stored plainly."""
        message = f"{purpose}:{value}".encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()[:CONTACT_KEY_HEX_LENGTH]

    def encryption_fingerprint(self) -> str:
        """A fingerprint of the newest encryption key (so a resumed rekey knows it targets the same key)."""
        key = _derive(self._newest_secret, b"fernet")
        return hmac.new(key, b"aviso-encryption-key-fingerprint", hashlib.sha256).hexdigest()[:16]

    def encrypt(self, text: str) -> str:
        """Encrypt a value for storage."""
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Decrypt a stored value; raises InvalidToken when no key fits."""
        return self._fernet.decrypt(token.encode()).decode()

    def is_current(self, token: str) -> bool:
        """True when a stored value is encrypted under the newest key already."""
        try:
            self._newest.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def reencrypt(self, token: str) -> str:
        """The same value encrypted under the newest key; raises InvalidToken when no key fits."""
        return self._fernet.rotate(token.encode()).decode()


def log_name(contact_key: str) -> str:
    """The short prefix of a contact key that logs may carry."""
    return contact_key[:LOG_PREFIX_LENGTH]


__all__ = ["Address", "InvalidAddress", "InvalidToken", "Keyring", "log_name", "parse_address"]
