"""Backups: an encrypted, versioned snapshot of everything Aviso keeps in Redis, and bringing it back.

What is kept: every `aviso:` key (contacts, subscriptions, audience counts, registrations and waitlists, the
roster, broadcasts and their outcomes, the audit log, content versions, the naming key's fingerprint) and
RQ's `rq:` keys (queued jobs, and reminders and broadcasts scheduled for later), each as Redis's own DUMP
with its absolute expiry time, so a restore keeps every retention rule: a contact due to expire while the
backup sat on a shelf is not brought back. Left out: RQ's records of running processes (workers, scheduler
locks), which belong to processes that are gone.

The file:

    AVISO-BACKUP\\n | header length (4 bytes) | header (JSON, readable without the key) | chunks...
    chunk: ciphertext length (4) | flags (1: the last) | nonce (12) | AES-256-GCM ciphertext

The header says the format version, when it was made, the Redis version, how many keys were found and the
salt. Every chunk is authenticated together with a digest of the header, its position and its flags, so a
changed, reordered, cut or mixed-up file is refused. The last chunk holds the count of keys written.

The key: HKDF-SHA256 of AVISO_SECRET_KEY with the file's random salt. That key names every family and never
changes for the life of a deployment, and a restore is useless without it (the restored families are
found only by its hashes), so a backup asks for no second secret to lose; a backup restored with another
key is refused instead of making everyone a stranger. Phone numbers inside stay Fernet-encrypted under
AVISO_ENCRYPTION_KEYS as well.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.store.keys import PREFIX

MAGIC = b"AVISO-BACKUP\n"
FORMAT = 1
KEPT = (PREFIX + ":*", "rq:*")
# RQ's records of live processes: a restored one would show a dead worker or scheduler as alive.
NOT_KEPT = ("rq:worker:", "rq:workers", "rq:scheduler-lock:", "rq:scheduler_instance:", "rq:clean_registries:")
KEYS_PER_CHUNK = 1000
LAST = 1
_RECORD_HEAD = struct.Struct(">IqI")  # name length, absolute expiry (epoch ms, 0: none), payload length
_CHUNK_HEAD = struct.Struct(">IB12s")  # ciphertext length, flags, nonce
_HKDF_INFO = b"aviso backup v1"

Progress = Callable[[int], None]


class BackupError(Exception):
    """The file cannot be read as a backup of this deployment, or the target Redis cannot take it."""


@dataclass(frozen=True)
class Header:
    """What a backup says about itself, readable without the key."""

    format: int
    created: str
    redis_version: str
    keys: int
    salt: bytes

    def to_bytes(self) -> bytes:
        """The header as stored."""
        return json.dumps({"format": self.format, "created": self.created, "redis_version": self.redis_version,
                           "keys": self.keys, "salt": self.salt.hex(), "cipher": "AES-256-GCM",
                           "kdf": "HKDF-SHA256(AVISO_SECRET_KEY)"}, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Header:
        """Parse a stored header."""
        try:
            fields = json.loads(data)
            return cls(int(fields["format"]), str(fields["created"]), str(fields["redis_version"]),
                       int(fields["keys"]), bytes.fromhex(fields["salt"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"not an Aviso backup: its header is unreadable ({exc})") from None


@dataclass(frozen=True)
class Summary:
    """What a backup or restore did."""

    header: Header
    written: int  # keys written to the file, or restored into Redis
    expired: int = 0  # keys whose expiry passed before the restore (not brought back)


def _cipher(secret_key: str, salt: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(secret_key.encode())
    return AESGCM(key)


def _aad(header_digest: bytes, index: int, flags: int) -> bytes:
    return header_digest + struct.pack(">QB", index, flags)


def _kept(name: bytes) -> bool:
    return not name.decode(errors="replace").startswith(NOT_KEPT)


def key_names(connection: redis.Redis) -> list[bytes]:
    """Every key a backup keeps, each once (SCAN may repeat a name)."""
    names: dict[bytes, None] = {}
    for pattern in KEPT:
        for name in connection.scan_iter(match=pattern, count=5000):
            if _kept(name):
                names[name] = None
    return list(names)


def redis_version(connection: redis.Redis) -> str:
    """The server's version, e.g. "7.0.15"."""
    return str(connection.info("server").get("redis_version", "0"))


def _dumped(connection: redis.Redis, names: list[bytes]) -> Iterator[bytes]:
    """Records of names, in pipelines: (name, absolute expiry by Redis's clock, DUMP) packed."""
    pipe = connection.pipeline(transaction=False)
    pipe.time()
    for name in names:
        pipe.pttl(name)
        pipe.dump(name)
    answers = pipe.execute()
    seconds, micros = answers[0]
    now_ms = seconds * 1000 + micros // 1000
    for index, name in enumerate(names):
        pttl, payload = answers[1 + 2 * index], answers[2 + 2 * index]
        if payload is None:  # deleted (or expired) since the scan
            continue
        expiry = now_ms + pttl if pttl >= 0 else 0
        yield _RECORD_HEAD.pack(len(name), expiry, len(payload)) + name + payload


def write(connection: redis.Redis, out: BinaryIO, secret_key: str, progress: Progress | None = None,
          now: datetime | None = None, names: list[bytes] | None = None) -> Summary:
    """Write a backup of connection's Aviso keys (names: key_names, when already read) to out (a binary file);
    progress(n) after each n keys."""
    names = key_names(connection) if names is None else names
    header = Header(FORMAT, (now or datetime.now(UTC)).isoformat(timespec="seconds"), redis_version(connection),
                    len(names), os.urandom(16))
    stored = header.to_bytes()
    digest = hashlib.sha256(stored).digest()
    cipher = _cipher(secret_key, header.salt)
    out.write(MAGIC + struct.pack(">I", len(stored)) + stored)
    written = index = 0

    def chunk(plain: bytes, flags: int) -> None:
        nonce = os.urandom(12)
        sealed = cipher.encrypt(nonce, plain, _aad(digest, index, flags))
        out.write(_CHUNK_HEAD.pack(len(sealed), flags, nonce) + sealed)

    for start in range(0, len(names), KEYS_PER_CHUNK):
        batch = names[start:start + KEYS_PER_CHUNK]
        records = list(_dumped(connection, batch))
        chunk(b"".join(records), 0)
        index += 1
        written += len(records)
        if progress:
            progress(len(batch))
    chunk(json.dumps({"keys": written}).encode(), LAST)
    out.flush()
    return Summary(header, written)


def read_header(source: BinaryIO) -> Header:
    """The header at the start of a backup file (source is left just after it)."""
    if source.read(len(MAGIC)) != MAGIC:
        raise BackupError("not an Aviso backup (it does not start with AVISO-BACKUP)")
    size = source.read(4)
    if len(size) != 4:
        raise BackupError("not an Aviso backup: it ends inside its header")
    header = Header.from_bytes(source.read(struct.unpack(">I", size)[0]))
    if header.format != FORMAT:
        raise BackupError(f"backup format {header.format} is not one this release reads (format {FORMAT}): "
                          "restore it with the release that made it")
    return header


def _chunks(source: BinaryIO, header: Header, secret_key: str) -> Iterator[tuple[bytes, bool]]:
    """The decrypted chunks of a backup, each checked, and whether it is the last."""
    digest = hashlib.sha256(header.to_bytes()).digest()
    cipher = _cipher(secret_key, header.salt)
    index = 0
    while True:
        head = source.read(_CHUNK_HEAD.size)
        if len(head) != _CHUNK_HEAD.size:
            raise BackupError("the backup is cut short (its last part is missing): it is incomplete")
        length, flags, nonce = _CHUNK_HEAD.unpack(head)
        sealed = source.read(length)
        if len(sealed) != length:
            raise BackupError("the backup is cut short (it ends inside a part): it is incomplete")
        try:
            plain = cipher.decrypt(nonce, sealed, _aad(digest, index, flags))
        except InvalidTag:
            if index == 0:
                raise BackupError("the backup does not open with this AVISO_SECRET_KEY (another deployment's, "
                                  "or the file was changed)") from None
            raise BackupError(f"part {index + 1} of the backup was changed or damaged") from None
        if flags & LAST:
            if source.read(1):
                raise BackupError("the backup has data after its end: it was changed")
            yield plain, True
            return
        yield plain, False
        index += 1


def _records(plain: bytes) -> Iterator[tuple[bytes, int, bytes]]:
    view, offset = memoryview(plain), 0
    while offset < len(plain):
        name_length, expiry, payload_length = _RECORD_HEAD.unpack_from(view, offset)
        offset += _RECORD_HEAD.size
        name = bytes(view[offset:offset + name_length])
        offset += name_length
        yield name, expiry, bytes(view[offset:offset + payload_length])
        offset += payload_length


def verify(source: BinaryIO, secret_key: str, progress: Progress | None = None) -> Summary:
    """Read a whole backup and check every part (nothing written anywhere); source is left at its end."""
    header = read_header(source)
    counted = 0
    for plain, last in _chunks(source, header, secret_key):
        if last:
            if json.loads(plain)["keys"] != counted:
                raise BackupError("the backup's key count does not match its contents")
            return Summary(header, counted)
        found = sum(1 for _ in _records(plain))
        counted += found
        if progress:
            progress(found)
    raise AssertionError("unreachable: _chunks ends at the last part or raises")


def aviso_keys_present(connection: redis.Redis) -> int:
    """How many keys a restore would mix with (what a backup would keep), up to a first few."""
    found = 0
    for pattern in KEPT:
        for name in connection.scan_iter(match=pattern, count=1000):
            if _kept(name):
                found += 1
                if found >= 10:
                    return found
    return found


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in text.split(".")[:2])


def check_restorable(connection: redis.Redis, source: BinaryIO, secret_key: str, replace: bool = False,
                     checking: Progress | None = None) -> Summary:
    """Read the whole backup and check every part (checking(n) as it goes), and that this Redis may take it: not
    an older Redis, and no Aviso key in it unless replace. Source is left at its end."""
    verified = verify(source, secret_key, checking)
    header = verified.header
    target = redis_version(connection)
    if _version(target) < _version(header.redis_version):
        raise BackupError(f"the backup comes from Redis {header.redis_version}, this Redis is {target}: "
                          "restore into the same version or a newer one")
    if not replace and aviso_keys_present(connection):
        raise BackupError("this Redis already holds Aviso's data: restore into an empty one (stop web and workers "
                          "first), or replace what is there with --replace")
    return verified


def load(connection: redis.Redis, source: BinaryIO, secret_key: str, replace: bool = False,
         progress: Progress | None = None) -> Summary:
    """Write a checked backup's keys into Redis (progress(n) as it goes); source at the start of the file."""
    header = read_header(source)
    restored = expired = 0
    for plain, last in _chunks(source, header, secret_key):
        if last:
            break
        pipe = connection.pipeline(transaction=False)
        names = []
        for name, expiry, payload in _records(plain):
            pipe.restore(name, expiry, payload, replace=replace, absttl=True)
            pipe.exists(name)
            names.append(name)
        try:
            answers = pipe.execute()
        except redis.ResponseError as exc:  # BUSYKEY: something wrote the key meanwhile; or a DUMP Redis rejects
            raise BackupError(f"Redis refused a key of the backup ({exc}); {restored} restored so far") from None
        kept = sum(1 for exists in answers[1::2] if exists)
        restored += kept
        expired += len(names) - kept
        if progress:
            progress(len(names))
    return Summary(header, restored, expired)


def restore(connection: redis.Redis, source: BinaryIO, secret_key: str, replace: bool = False) -> Summary:
    """Check the whole backup, then bring its keys back (check_restorable, then load). Source must be seekable.
    Keys whose expiry passed since the backup are not brought back (Summary.expired)."""
    start = source.tell()
    check_restorable(connection, source, secret_key, replace)
    source.seek(start)
    return load(connection, source, secret_key, replace)
