"""Staff: the roster of people who may send (or approve) broadcasts, and for which schools."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime

import redis

from bot.people import tokens
from bot.people.identity import SMS, Address, Keyring, parse_address
from bot.store import keys

ROLES = ("sender", "approver", "admin")


class StaffError(ValueError):
    """A roster change that cannot be made; the message says why, `code` what (for the dashboard's words)."""

    def __init__(self, message: str, code: str = "", detail: str = ""):
        super().__init__(message)
        self.code = code
        self.detail = detail


class NotAllowed(PermissionError):
    """A staff member tried something their role or schools do not allow."""


@dataclass(frozen=True)
class StaffMember:
    """One rostered staff member (the phone number is kept encrypted, apart from this record)."""

    id: str
    name: str
    role: str
    schools: tuple[str, ...]
    language: str = ""  # the dashboard language they last chose or signed in with: their notices' language

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
        self.tokens = tokens.ApiTokens(connection)

    def _phone_key(self, phone: str) -> str:
        address = parse_address(phone)
        return keys.STAFF_BY_PHONE.format(hash=self.keyring.contact_key(Address(SMS, address.e164)))

    @staticmethod
    def _checked(name: str, role: str, schools: list[str], known_schools: set[str]) -> tuple[str, tuple[str, ...]]:
        if role not in ROLES:
            raise StaffError(f"role must be one of {', '.join(ROLES)}", "role")
        unknown = sorted(set(schools) - known_schools)
        if unknown:
            raise StaffError(f"unknown school code(s): {', '.join(unknown)}", "schools", ", ".join(unknown))
        if not name.strip():
            raise StaffError("name is required", "name")
        if not schools and role != "admin":
            raise StaffError("a sender or approver needs at least one school", "no_school")
        return name.strip(), tuple(dict.fromkeys(schools))

    def add(self, phone: str, name: str, role: str, schools: list[str], known_schools: set[str]) -> StaffMember:
        """Add a member; refuses an unknown role or school, or a number already on the roster."""
        name, codes = self._checked(name, role, schools, known_schools)
        phone_key = self._phone_key(phone)
        member = StaffMember(secrets.token_hex(4), name, role, codes)
        record = {**asdict(member), "schools": list(member.schools),
                  "phone": self.keyring.encrypt(parse_address(phone).e164)}
        if not self.connection.set(phone_key, member.id, nx=True):
            raise StaffError("that number is already on the roster", "duplicate")
        pipe = self.connection.pipeline(transaction=True)
        pipe.hset(keys.STAFF, member.id, json.dumps(record))
        pipe.execute()
        return member

    def edit(self, staff_id: str, name: str, role: str, schools: list[str], known_schools: set[str]) -> StaffMember:
        """Change a member's name, role or schools; they keep their id, number, sessions and tokens."""
        name, codes = self._checked(name, role, schools, known_schools)
        return self._update(staff_id, name=name, role=role, schools=list(codes))

    def set_language(self, staff_id: str, language: str) -> None:
        """Remember the dashboard language a member chose (their notices are written in it)."""
        member = self.get(staff_id)
        if member is not None and member.language != language:
            self._update(staff_id, language=language)

    def _update(self, staff_id: str, **changes) -> StaffMember:
        with self.connection.pipeline() as pipe:  # optimistic: a concurrent change retries rather than being lost
            while True:
                try:
                    pipe.watch(keys.STAFF)
                    raw = pipe.hget(keys.STAFF, staff_id)
                    if raw is None:
                        raise StaffError(f"no staff member {staff_id}", "missing")
                    record = {**json.loads(raw), **changes}
                    pipe.multi()
                    pipe.hset(keys.STAFF, staff_id, json.dumps(record))
                    pipe.execute()
                    return _member(record)
                except redis.WatchError:
                    continue

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
            raise StaffError(f"no staff member {staff_id}", "missing")
        phone = self.phone_of(staff_id)
        pipe = self.connection.pipeline(transaction=True)
        pipe.hdel(keys.STAFF, staff_id)
        if phone:
            pipe.delete(self._phone_key(phone))
        pipe.execute()
        self.tokens.revoke_all(staff_id)
        return member

    def approvers_of(self, schools: tuple[str, ...]) -> list[StaffMember]:
        """Who may approve a broadcast of these schools: their approvers, else (none rostered) the admins."""
        members = self.all()
        approvers = [m for m in members if m.role == "approver" and m.covers(schools)]
        return approvers or [m for m in members if m.role == "admin"]

    def issue_token(self, staff_id: str, days: int = tokens.DEFAULT_DAYS, now: datetime | None = None) -> str:
        """A new API token for a member, valid for `days` (shown once; only its hash is kept)."""
        if self.get(staff_id) is None:
            raise StaffError(f"no staff member {staff_id}", "missing")
        return self.tokens.issue(staff_id, days, now)

    def by_token(self, token: str, now: datetime | None = None) -> StaffMember | None:
        """The member an API token belongs to (None when unknown, expired, revoked or removed)."""
        staff_id = self.tokens.staff_of(token, now)
        return self.get(staff_id) if staff_id else None


def _member(record: dict) -> StaffMember:
    return StaffMember(record["id"], record["name"], record["role"], tuple(record["schools"]),
                       record.get("language", ""))
