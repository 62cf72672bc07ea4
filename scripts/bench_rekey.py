#!/usr/bin/env python3
"""Rekey benchmark: how long `aviso rekey` takes to re-encrypt every stored number after a rotation.

    .venv/bin/python scripts/bench_rekey.py [--contacts 100000]

On a private embedded Redis: stores --contacts contacts (numbers encrypted under the old key, as the
webhook stores them), then re-encrypts them under a new key with key_rotation.rekey, then runs it again
(nothing left to do). Prints numbers per second for both runs and checks every number still decrypts
with the new key alone.
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
from bot.people.key_rotation import rekey  # noqa: E402
from bot.store import embedded_redis  # noqa: E402

NAMING = "bench-rekey-naming-key-0123456789abcdef0123"
OLD = "bench-rekey-old-encryption-key-0123456789abc"
NEW = "bench-rekey-new-encryption-key-0123456789abc"


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aviso-bench-rekey-"))
    url = embedded_redis.ensure_running(work / "redis")
    try:
        with redis.Redis.from_url(url) as connection:
            connection.flushdb()
            old = Keyring(NAMING, (OLD,))
            started = time.perf_counter()
            pipe = connection.pipeline(transaction=False)
            for n in range(args.contacts):
                number = f"+1213{n:07d}"
                key = contacts.contact_redis_key(old.contact_key(Address(SMS, number)))
                pipe.hset(key, mapping={"lang": "es", "ch": SMS, "num": old.encrypt(number), "schools": "BELMONT"})
                if n % 1000 == 999:
                    pipe.execute()
            pipe.execute()
            print(f"stored {args.contacts} contacts in {time.perf_counter() - started:.1f} s")
            rotated = Keyring(NAMING, (NEW, OLD))
            for run in ("first run", "second run"):
                started = time.perf_counter()
                report = rekey(connection, rotated)
                took = time.perf_counter() - started
                print(f"{run}: {report.rekeyed} re-encrypted, {report.scanned} keys scanned in {took:.1f} s "
                      f"({report.scanned / took:,.0f} keys/s)")
            new_only = Keyring(NAMING, (NEW,))
            sample = [f"+1213{n:07d}" for n in range(0, args.contacts, max(1, args.contacts // 1000))]
            readable = sum(contacts.number_of(connection, new_only, new_only.contact_key(Address(SMS, number)))
                           == number for number in sample)
            print(f"readable with the new key alone: {readable} of {len(sample)} sampled")
    finally:
        embedded_redis.stop(work / "redis")


if __name__ == "__main__":
    main()
