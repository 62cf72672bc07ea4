#!/usr/bin/env python3
"""Backup benchmark: how long `aviso backup` and `aviso restore` take for a district's worth of contacts.

    .venv/bin/python scripts/bench_backup.py [--contacts 100000] [--redis embedded,debian]

For each Redis (the embedded one `scripts/run` uses; Debian's redis-server, as production runs, when
installed): a private server, --contacts contacts stored as the webhook stores them (an encrypted number,
an expiry, a school's subscriber set), then a backup to a file, an empty Redis, and a restore (the whole
file checked first, then loaded). Prints seconds, keys per second and the file's size, and checks the
restored Redis holds every key.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bot.people import contacts  # noqa: E402
from bot.people.identity import SMS, Address, Keyring  # noqa: E402
from bot.store import backup, embedded_redis, keys  # noqa: E402
from tests.redis_server import RedisServer, RedisServerError, debian_binary  # noqa: E402

NAMING = "bench-backup-naming-key-Q7r2Vx9LmZp4Tn8Kd1Ws6Hy3Bc5F"


def populate(connection: redis.Redis, keyring: Keyring, count: int) -> None:
    """count subscribed contacts, as the webhook stores them."""
    pipe = connection.pipeline(transaction=False)
    for n in range(count):
        number = f"+1213{n:07d}"
        key = keyring.contact_key(Address(SMS, number))
        name = contacts.contact_redis_key(key)
        pipe.hset(name, mapping={"lang": "es", "ch": SMS, "num": keyring.encrypt(number), "opted_out": "0",
                                 "schools": "BELMONT", "at": "1764000000"})
        pipe.expire(name, 180 * 24 * 3600)
        pipe.sadd(keys.SCHOOL_SUBSCRIBERS.format(code="BELMONT"), key)
        if n % 2000 == 1999:
            pipe.execute()
    pipe.execute()


def run(kind: str, url: str, work: Path, count: int) -> None:
    """Back up and restore count contacts on the Redis at url; print the figures."""
    keyring = Keyring(NAMING)
    with redis.Redis.from_url(url) as connection:
        connection.flushdb()
        populate(connection, keyring, count)
        total = len(backup.key_names(connection))
        file = work / f"{kind}.backup"
        started = time.perf_counter()
        with file.open("wb") as out:
            made = backup.write(connection, out, NAMING)
        took_backup = time.perf_counter() - started
        connection.flushdb()
        started = time.perf_counter()
        with file.open("rb") as source:
            restored = backup.restore(connection, source, NAMING)
        took_restore = time.perf_counter() - started
        assert made.written == restored.written == total == connection.dbsize(), (made, restored, total)
        version = backup.redis_version(connection)
    size = file.stat().st_size
    print(f"{kind:9} Redis {version:8} {total:>8,} keys  backup {took_backup:5.1f} s ({total / took_backup:>8,.0f} "
          f"keys/s)  restore {took_restore:5.1f} s ({total / took_restore:>8,.0f} keys/s)  file {size / 1e6:.1f} MB")


def main() -> None:
    """Run the benchmark on each Redis asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--redis", default="embedded,debian", help="embedded, debian or both (comma-separated)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aviso-bench-backup-"))
    for kind in args.redis.split(","):
        if kind == "embedded":
            url = embedded_redis.ensure_running(work / "embedded")
            try:
                run(kind, url, work, args.contacts)
            finally:
                embedded_redis.stop(work / "embedded")
        elif kind == "debian":
            try:
                binary = debian_binary()
            except RedisServerError as exc:
                print(f"debian    skipped: {exc}")
                continue
            with RedisServer(work / "debian", binary) as server:
                run(kind, server.url, work, args.contacts)
        else:
            parser.error(f"--redis: {kind!r} is neither embedded nor debian")


if __name__ == "__main__":
    main()
