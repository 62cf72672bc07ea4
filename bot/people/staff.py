"""Staff: the roster of people who may send (or approve) broadcasts, and for which schools."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass

import redis

from bot.people.identity import SMS, Address, Keyring, parse_address
from bot.store import keys

ROLES = ("sender", "approver", "admin")
TOKEN_BYTES = 32


class StaffError(ValueError):
    """A roster change that cannot be made; the message says why."""


class NotAllowed(PermissionError):
    """A staff member tried something their role or schools do not allow."""


@dataclass(frozen=True)
class StaffMember:
    """One rostered staff member (the phone number is kept encrypted, apart from this record)."""

    id: str
    name: str
    role: str
    schools: tuple[str, ...]

    @property
    def can_approve(self) -> bool:
        """Approvers and admins may approve another member's broadcast."""
        return self.role in ("approver", "admin")

    def covers(self, schools: tuple[str, ...] | list[str]) -> bool:
        """Whether every school is one of this member's (an admin's: all; no school at all: admins only)."""
        return self.role == "admin" or (bool(schools) and set(schools) <= set(self.schools))

    def check_schools(self, schools: tuple[str, ...] | list[str]) -> None:
        """Raise NotAllowed unless this member covers the schools (see covers)."""
        if self.covers(schools):
            return
        if not schools:  # an empty list would pass every school check: it belongs to no school, so to admins
            raise NotAllowed(f"{self.name} may not send to a broadcast of no school (admins only)")
        outside = sorted(set(schools) - set(self.schools))
        if outside:
            raise NotAllowed(f"{self.name} may not send to {', '.join(outside)}")


class Roster:
    """Staff records in Redis: by id, and by a keyed hash of the phone number for login."""

    def __init__(self, connection: redis.Redis, keyring: Keyring):
        self.connection = connection
        self.keyring = keyring

    def _phone_key(self, phone: str) -> str:
        address = parse_address(phone)
        return keys.STAFF_BY_PHONE.format(hash=self.keyring.contact_key(Address(SMS, address.e164)))

    def add(self, phone: str, name: str, role: str, schools: list[str], known_schools: set[str]) -> StaffMember:
        """Add a member; refuses an unknown role or school, or a number already on the roster."""
        if role not in ROLES:
            raise StaffError(f"role must be one of {', '.join(ROLES)}")
        unknown = sorted(set(schools) - known_schools)
        if unknown:
            raise StaffError(f"unknown school code(s): {', '.join(unknown)}")
        if not name.strip():
            raise StaffError("name is required")
        phone_key = self._phone_key(phone)
        member = StaffMember(secrets.token_hex(4), name.strip(), role, tuple(dict.fromkeys(schools)))
        record = {**asdict(member), "schools": list(member.schools),
                  "phone": self.keyring.encrypt(parse_address(phone).e164)}
        if not self.connection.set(phone_key, member.id, nx=True):
            raise StaffError("that number is already on the roster")
        pipe = self.connection.pipeline(transaction=True)
        pipe.hset(keys.STAFF, member.id, json.dumps(record))
        pipe.execute()
        return member

    def get(self, staff_id: str) -> StaffMember | None:
        """A member by id."""
        raw = self.connection.hget(keys.STAFF, staff_id)
        return _member(json.loads(raw)) if raw else None

    def by_phone(self, phone: str) -> StaffMember | None:
        """A member by phone number (None when not rostered)."""
        staff_id = self.connection.get(self._phone_key(phone))
        return self.get(staff_id.decode()) if staff_id else None

    def phone_of(self, staff_id: str) -> str | None:
        """Decrypt a member's number, for sending a login code only."""
        raw = self.connection.hget(keys.STAFF, staff_id)
        return self.keyring.decrypt(json.loads(raw)["phone"]) if raw else None

    def all(self) -> list[StaffMember]:
        """Every member, by name."""
        return sorted((_member(json.loads(v)) for v in self.connection.hvals(keys.STAFF)), key=lambda m: m.name)

    def remove(self, staff_id: str) -> StaffMember:
        """Take a member off the roster (their API tokens stop working)."""
        member = self.get(staff_id)
        if member is None:
            raise StaffError(f"no staff member {staff_id}")
        phone = self.phone_of(staff_id)
        pipe = self.connection.pipeline(transaction=True)
        pipe.hdel(keys.STAFF, staff_id)
        if phone:
            pipe.delete(self._phone_key(phone))
        pipe.execute()
        return member

    def issue_token(self, staff_id: str) -> str:
        """A new API token for a member (shown once; only its hash is kept)."""
        if self.get(staff_id) is None:
            raise StaffError(f"no staff member {staff_id}")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self.connection.hset(keys.STAFF_TOKENS, _token_hash(token), staff_id)
        return token

    def by_token(self, token: str) -> StaffMember | None:
        """The member an API token belongs to (None when unknown or removed)."""
        staff_id = self.connection.hget(keys.STAFF_TOKENS, _token_hash(token))
        return self.get(staff_id.decode()) if staff_id else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _member(record: dict) -> StaffMember:
    return StaffMember(record["id"], record["name"], record["role"], tuple(record["schools"]))
