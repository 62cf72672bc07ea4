#!/usr/bin/env python3
"""Broadcast fan-out benchmark: throughput, the rate cap, a worker killed mid-send, memory per contact.

    .venv/bin/python scripts/bench_broadcast.py [--parts a,b,c,d] [--workers 3] [--subscribers 100000]

Everything runs on this machine: a private embedded Redis (AOF on, as Aviso runs by default), the fake
Twilio as its own process (`python -m bot.twilio.fake --latency-ms 150`), and --workers RQ worker
processes started exactly as the Procfile's `worker: aviso worker` (same entry point, bot.cli worker,
AVISO_ENV=production). The parts:

a. --subscribers families over 10 schools and 4 languages, no rate limit: time from approval
   (enqueueing start_broadcast) until the fake accepted the last message; messages per second.
b. AVISO_RATE_LIMIT_SEGMENTS_PER_SECOND=100 (the policy's cap): the segment rate the fake saw, and the
   most segments it saw in any 1-second window.
c. 10,000 recipients; one worker and its work horse SIGKILLed mid-broadcast, then restarted: duplicates
   at the fake, recipients without a final outcome, and how long the broadcast took.
e. An account that allows 100 REST API requests open at once (the fake answers 429 / 20429 beyond it,
   as Twilio does), 20,000 recipients, the same workers each allowed 128 calls in flight: messages per
   second against the most the limit allows (100 / 150 ms = 667/s), requests refused, failures.
d. Redis memory per subscribed contact (one school, one language): INFO used_memory before and after
   subscribing 100,000 contacts, divided by their number, and what one contact's keys cost.

Prints each figure and a JSON summary; docs/bench-broadcast.md has the figures measured.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.broadcasts import fanout  # noqa: E402
from bot.broadcasts.store import APPROVED, SENDING, Broadcast, BroadcastStore, new_id  # noqa: E402
from bot.conversation.engine import ContactState  # noqa: E402
from bot.people import contacts  # noqa: E402
from bot.people.identity import Address, Keyring  # noqa: E402
from bot.store import embedded_redis, keys  # noqa: E402
from bot.twilio.fake.state import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN  # noqa: E402

SECRET = "bench-HytYACjayuf8h3Bp5or35gLUZMkfxP30wo7wJJ23OWk"
SERVICE_SID = "MG" + "e" * 32
LATENCY_MS = 150
CAP = 100
ACCOUNT_OPEN_REQUESTS = 100  # part e: the account's limit on open API requests
LANGUAGES = ("es", "en", "ko", "hy")
# What a real alert costs: Spanish and English fit one GSM-7 segment; Korean and Armenian need UCS-2,
# whose 70-character segments make them two.
TEXTS = {
    "es": "ALERTA (verificada): actividad cerca de Main y 3rd. Use la entrada norte. Codigo K7Q2",
    "en": "VERIFIED ALERT: activity near Main & 3rd. Use the north entrance. Code K7Q2",
    "ko": ("확인된 경보: Main 및 3rd 근처에서 활동이 보고되었습니다. "
           "학생과 가족은 오늘 북쪽 입구를 이용하세요. 확인 코드 K7Q2"),
    "hy": "Հաստատված ահազանգ. գործողություն Main և 3rd մոտ։ Օգտվեք հյուսիսային մուտքից։ K7Q2",
}
SCHOOLS = tuple(f"school{n:02d}" for n in range(10))
CONTACT_TTL = 180 * 24 * 3600


def log(message: str) -> None:
    print(f"{datetime.now():%H:%M:%S} {message}", flush=True)


class Bench:
    """The Redis, fake Twilio and worker processes of one benchmark run."""

    def __init__(self, workers: int, workdir: Path, simple: bool = False):
        self.workdir, self.simple = workdir, simple
        self.redis_url = embedded_redis.ensure_running(workdir / "redis")
        self.redis = redis.Redis.from_url(self.redis_url)
        self.redis.flushall()
        self.keyring = Keyring(SECRET)
        self.fake = subprocess.Popen(
            [sys.executable, "-m", "bot.twilio.fake", "--port", "0", "--latency-ms", str(LATENCY_MS),
             "--messaging-service", SERVICE_SID], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.fake_url = self.fake.stdout.readline().strip()
        self.env = {**os.environ, "REDIS_URL": self.redis_url, "AVISO_ENV": "production",
                    "AVISO_SECRET_KEY": SECRET, "AVISO_DATA_DIR": str(workdir),
                    "AVISO_CONTENT_DIR": str(ROOT / "content"),
                    "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
                    "TWILIO_MESSAGING_SERVICE_SID": SERVICE_SID, "TWILIO_API_BASE_URL": self.fake_url,
                    "PUBLIC_BASE_URL": "https://aviso.example.org", "PYTHONPATH": str(ROOT)}
        self.workers = [self.start_worker() for _ in range(workers)]

    def start_worker(self) -> subprocess.Popen:
        """One `aviso worker` (an RQ worker with its scheduler), in its own process group."""
        command = [sys.executable, "-m", "bot.cli", "worker"]
        if self.simple:  # RQ's worker that runs jobs in its own process instead of forking a horse
            command = [sys.executable, "-m", "rq.cli", "worker", "--with-scheduler", "--url", self.redis_url,
                       "--worker-class", "rq.worker.SimpleWorker", "urgent", "default", "low"]
        with (self.workdir / "workers.log").open("ab") as out:
            return subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def fake_get(self, what: str):
        with urllib.request.urlopen(f"{self.fake_url}/_fake/{what}", timeout=120) as response:
            return json.load(response)

    def fake_configure(self, **settings) -> None:
        urllib.request.urlopen(urllib.request.Request(
            f"{self.fake_url}/_fake/config", data=json.dumps(settings).encode(), method="POST",
            headers={"Content-Type": "application/json"}), timeout=30)

    def fake_reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.fake_url}/_fake/reset", method="POST"), timeout=30)

    def close(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.fake.terminate()
        self.fake.wait(10)
        self.fake.stdout.close()
        embedded_redis.stop(self.workdir / "redis")

    def subscribe(self, count: int, *, start: int = 0, schools=SCHOOLS, languages=LANGUAGES) -> list[str]:
        """Families subscribed the way Aviso stores them (contacts.save and contacts.follow)."""
        numbers, now = [], datetime.now(UTC)
        for chunk in range(start, start + count, 1000):
            pipe = self.redis.pipeline(transaction=False)
            for n in range(chunk, min(chunk + 1000, start + count)):
                number = f"+1213{n:07d}"
                address = Address("sms", number)
                key = self.keyring.contact_key(address)
                school, language = schools[n % len(schools)], languages[n % len(languages)]
                state = ContactState(language=language, schools=(school,))
                contacts.save(pipe, key, state, address=address, keyring=self.keyring, is_new=True, now=now,
                              ttl_seconds=CONTACT_TTL)
                contacts.follow(pipe, key, school)
                numbers.append(number)
            pipe.execute()
        return numbers

    def broadcast(self, policy: fanout.Policy, schools=SCHOOLS) -> tuple[str, float]:
        """Create an approved broadcast and start it; return its id and when it was approved."""
        broadcast = Broadcast(id=new_id(), schools=schools, kind="verified", texts=TEXTS, code=new_id()[:6].upper(),
                              created_by="bench", approved_by="bench-2", verified_by="bench", urgent=True,
                              status=APPROVED)
        BroadcastStore(self.redis).create(broadcast)
        approved = time.time()
        fanout.enqueue_start(self.redis, broadcast.id, policy=policy)
        return broadcast.id, approved

    def wait_until_sent(self, broadcast_id: str, timeout: float = 1800, on_progress=None) -> None:
        store, deadline = BroadcastStore(self.redis), time.monotonic() + timeout
        while store.get(broadcast_id).status in (APPROVED, SENDING) and time.monotonic() < deadline:
            if on_progress:
                on_progress()
            time.sleep(0.25)
        status = store.get(broadcast_id).status
        if status != "done":
            raise SystemExit(f"broadcast {broadcast_id} ended {status}; see {self.workdir / 'workers.log'}")

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: workers (with their finished work horses), the fake, Redis, the machine."""
        tick = os.sysconf("SC_CLK_TCK")

        def used(pid: int) -> float:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return 0.0
            return sum(int(x) for x in fields[11:15]) / tick  # utime, stime, cutime, cstime

        redis_pid = int((self.workdir / "redis" / embedded_redis.PID_NAME).read_text())
        busy = Path("/proc/stat").read_text().split("\n")[0].split()[1:]
        return {"workers": sum(used(w.pid) for w in self.workers), "fake": used(self.fake.pid),
                "redis": used(redis_pid), "machine": (sum(map(int, busy)) - int(busy[3]) - int(busy[4])) / tick}

    def accepted(self) -> list[tuple[float, int]]:
        """(time, segments) of every message the fake accepted, oldest first."""
        return sorted((r["timestamp"], r["num_segments"]) for r in self.fake_get("requests") if r["status"] == 201)


def part_a(bench: Bench, subscribers: int, policy: fanout.Policy) -> dict:
    log(f"(a) subscribing {subscribers:,} families over {len(SCHOOLS)} schools, {len(LANGUAGES)} languages")
    bench.subscribe(subscribers)
    bench.fake_reset()
    log(f"(a) approving; {len(bench.workers)} workers, batches of {policy.batch_size}, {policy.concurrency} "
        f"calls in flight per batch, fake latency {LATENCY_MS} ms, no rate limit")
    cpu_before = bench.cpu()
    broadcast_id, approved = bench.broadcast(policy)
    bench.wait_until_sent(broadcast_id)
    cpu = {name: value - cpu_before[name] for name, value in bench.cpu().items()}
    accepted = bench.accepted()
    stats = bench.fake_get("stats")
    outcomes = BroadcastStore(bench.redis).outcomes(broadcast_id)
    elapsed = accepted[-1][0] - approved
    cpu["others"] = cpu["machine"] - cpu["workers"] - cpu["fake"] - cpu["redis"]
    records = sum(bench.redis.memory_usage(name.format(id=broadcast_id), samples=0) or 0
                  for name in (keys.BROADCAST_OUTCOMES, keys.BROADCAST_SIDS))
    cpu_ms = {name: round(seconds * 1000 / len(accepted), 3) for name, seconds in cpu.items()}
    result = {"subscribers": subscribers, "messages_accepted": len(accepted), "seconds": round(elapsed, 2),
              "messages_per_second": round(len(accepted) / elapsed), "first_accepted_after_s":
              round(accepted[0][0] - approved, 3), "sent": outcomes.sent, "pending": outcomes.pending,
              "duplicates": len(bench.fake_get("duplicates")), "errors": stats["by_error_code"],
              "cpu_ms_per_message": cpu_ms, "cores_busy": round(cpu["machine"] / elapsed, 2),
              "record_bytes_per_recipient": round(records / subscribers)}
    log(f"(a) {len(accepted):,} messages accepted {elapsed:.1f} s after approval: "
        f"{result['messages_per_second']:,} messages/s (target >= 1,000)")
    log(f"(a) CPU ms per message: {cpu_ms}; cores busy {result['cores_busy']} of {os.cpu_count()}; "
        f"outcome records {result['record_bytes_per_recipient']} bytes per recipient")
    bench.redis.flushall()
    return result


def part_b(bench: Bench, recipients: int, policy: fanout.Policy) -> dict:
    log(f"(b) {recipients:,} recipients, cap {CAP} segments/s")
    bench.subscribe(recipients)
    bench.fake_reset()
    broadcast_id, _ = bench.broadcast(policy)
    bench.wait_until_sent(broadcast_id)
    accepted = bench.accepted()
    stats = bench.fake_get("stats")
    segments = sum(n for _, n in accepted)
    rate = (segments - accepted[0][1]) / (accepted[-1][0] - accepted[0][0])
    result = {"messages": len(accepted), "segments": segments, "segments_per_second": round(rate, 2),
              "fraction_of_cap": round(rate / CAP, 4), "max_segments_in_any_1s_window":
              stats["max_segments_in_any_1s_window"], "errors": stats["by_error_code"]}
    log(f"(b) {segments:,} segments at {rate:.1f}/s ({rate / CAP:.1%} of the cap; target 95-100%), "
        f"busiest second {stats['max_segments_in_any_1s_window']} (cap {CAP})")
    bench.redis.flushall()
    return result


def part_c(bench: Bench, recipients: int, policy: fanout.Policy) -> dict:
    log(f"(c) {recipients:,} recipients; a worker and its work horse get SIGKILL mid-broadcast")
    numbers = bench.subscribe(recipients)
    bench.fake_reset()
    broadcast_id, approved = bench.broadcast(policy)
    store, killed = BroadcastStore(bench.redis), {}

    def kill_when_a_third_is_sent():
        if killed or store.outcomes(broadcast_id).sent < recipients // 3:
            return
        for worker in bench.workers:
            horses = horses_of(bench.redis, broadcast_id, worker)
            if horses:
                os.killpg(worker.pid, signal.SIGKILL)
                for horse in horses:
                    os.killpg(horse, signal.SIGKILL)
                worker.wait()
                killed.update(at=time.time(), sent=store.outcomes(broadcast_id).sent, horses=len(horses))
                bench.workers[bench.workers.index(worker)] = bench.start_worker()
                log(f"(c) killed a worker and its horse after {killed['sent']:,} sends; restarted it")
                return

    bench.wait_until_sent(broadcast_id, on_progress=kill_when_a_third_is_sent)
    accepted = bench.accepted()
    outcomes = store.outcomes(broadcast_id)
    records = bench.redis.hvals(keys.BROADCAST_OUTCOMES.format(id=broadcast_id))
    duplicates = bench.fake_get("duplicates")
    result = {"recipients": recipients, "killed_after_sends": killed.get("sent"),
              "messages_accepted": len(accepted), "duplicates": len(duplicates),
              "recipients_without_outcome": recipients - sum(1 for r in records if not r.startswith(b"sending:")),
              "sent": outcomes.sent, "reconciled_with_twilio": outcomes.reconciled,
              "seconds": round(accepted[-1][0] - approved, 1), "recovered_after_kill_s":
              round(accepted[-1][0] - killed["at"], 1) if killed else None,
              "numbers_missing": len(set(numbers) - {r["to"] for r in bench.fake_get("messages")})}
    log(f"(c) duplicates {result['duplicates']}, without outcome {result['recipients_without_outcome']}, "
        f"never sent {result['numbers_missing']}, found already sent at Twilio {outcomes.reconciled}; "
        f"done {result['seconds']} s after approval")
    bench.redis.flushall()
    return result


def part_e(bench: Bench, recipients: int, policy: fanout.Policy, open_requests: int) -> dict:
    ideal = open_requests / (LATENCY_MS / 1000)
    log(f"(e) {recipients:,} recipients; the account allows {open_requests} open requests, "
        f"{len(bench.workers)} workers x {policy.concurrency} calls in flight")
    bench.subscribe(recipients)
    bench.fake_reset()
    bench.fake_configure(max_concurrent_requests=open_requests)
    try:
        broadcast_id, approved = bench.broadcast(policy)
        bench.wait_until_sent(broadcast_id)
        accepted = bench.accepted()
        stats = bench.fake_get("stats")
    finally:
        bench.fake_configure(max_concurrent_requests=None)
    outcomes = BroadcastStore(bench.redis).outcomes(broadcast_id)
    elapsed = accepted[-1][0] - approved
    refused = stats["by_error_code"].get("20429", 0)
    result = {"recipients": recipients, "account_open_requests": open_requests, "seconds": round(elapsed, 2),
              "messages_per_second": round(len(accepted) / elapsed), "most_the_limit_allows": round(ideal),
              "sent": outcomes.sent, "failed": outcomes.failed, "refused_429": refused,
              "refused_per_message": round(refused / max(len(accepted), 1), 3),
              "most_open_requests_seen": stats["most_concurrent_requests"],
              "duplicates": len(bench.fake_get("duplicates"))}
    log(f"(e) {len(accepted):,} messages in {elapsed:.1f} s: {result['messages_per_second']:,}/s of the "
        f"{ideal:.0f}/s the limit allows; {refused:,} requests refused 429 "
        f"({result['refused_per_message']} per message), failed {outcomes.failed or 0}")
    bench.redis.flushall()
    return result


def horses_of(connection: redis.Redis, broadcast_id: str, worker: subprocess.Popen) -> list[int]:
    """Work horses of a worker process that hold a batch lease (the lease token starts with its pid)."""
    horses = []
    for key in connection.scan_iter(match=keys.BROADCAST_LEASE.format(id=broadcast_id, n="*")):
        token = connection.get(key) or b""
        pid = int(token.split(b"-")[0]) if token[:1].isdigit() else 0
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) if pid else 0
        except OSError:
            parent = 0
        if parent == worker.pid:
            horses.append(pid)
    return horses


def part_d(bench: Bench, count: int) -> dict:
    result = measure_memory(bench, count)
    # What dominates: the Fernet token (100 characters). Longer than Redis's default hash-max-ziplist-value
    # (64), it makes every contact hash a full hash table; the embedded Redis raises the limit to 128. On a
    # server still at the default, the same contacts with the limit raised:
    default = bench.redis.config_get("hash-max-ziplist-value")["hash-max-ziplist-value"]
    if int(default) >= 128:
        return result
    bench.redis.config_set("hash-max-ziplist-value", 128)
    try:
        result["with_hash_max_ziplist_value_128"] = measure_memory(bench, count)
    finally:
        bench.redis.config_set("hash-max-ziplist-value", default)
    return result


def measure_memory(bench: Bench, count: int) -> dict:
    log(f"(d) memory: {count:,} contacts subscribed to one school, one language")
    bench.redis.flushall()
    before = bench.redis.info("memory")["used_memory"]
    bench.subscribe(count, schools=("school00",), languages=("es",))
    after = bench.redis.info("memory")["used_memory"]
    sample = bench.redis.srandmember(keys.SCHOOL_SUBSCRIBERS.format(code="school00")).decode()
    contact_key = contacts.contact_redis_key(sample)
    fields = {k.decode(): len(v) for k, v in bench.redis.hgetall(contact_key).items()}
    school_set = bench.redis.memory_usage(keys.SCHOOL_SUBSCRIBERS.format(code="school00"))
    result = {"contacts": count, "bytes_per_contact": round((after - before) / count),
              "contact_hash_bytes": bench.redis.memory_usage(contact_key),
              "contact_hash_encoding": bench.redis.object("encoding", contact_key).decode(),
              "school_set_bytes_per_member": round(school_set / count), "contact_fields_value_bytes": fields}
    log(f"(d) {result['bytes_per_contact']} bytes per subscribed contact (target < 400): contact hash "
        f"{result['contact_hash_bytes']} B ({result['contact_hash_encoding']}), school set "
        f"{result['school_set_bytes_per_member']} B per member; field value sizes {fields}")
    bench.redis.flushall()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="a,b,c,d,e")
    parser.add_argument("--workers", type=int, default=3, help="aviso worker processes (default 3, on 2 cores)")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=fanout.Policy.batch_size)
    parser.add_argument("--concurrency", type=int, default=fanout.Policy.concurrency)
    parser.add_argument("--capped-recipients", type=int, default=2000)
    parser.add_argument("--crash-recipients", type=int, default=10_000)
    parser.add_argument("--memory-contacts", type=int, default=100_000)
    parser.add_argument("--limited-recipients", type=int, default=20_000)
    parser.add_argument("--account-open-requests", type=int, default=ACCOUNT_OPEN_REQUESTS)
    parser.add_argument("--simple-worker", action="store_true",
                        help="rq worker --worker-class SimpleWorker instead of aviso worker (no fork per job)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    policy = fanout.Policy(batch_size=args.batch_size, concurrency=args.concurrency)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="aviso-bench-") as workdir:
        bench = Bench(args.workers, Path(workdir), simple=args.simple_worker)
        results = {"workers": args.workers, "cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load]}
        try:
            if "d" in parts:
                results["d"] = part_d(bench, args.memory_contacts)
            if "a" in parts:
                results["a"] = part_a(bench, args.subscribers, policy)
            if "b" in parts:
                capped = fanout.Policy(batch_size=args.batch_size, concurrency=args.concurrency,
                                       segments_per_second=CAP)
                results["b"] = part_b(bench, args.capped_recipients, capped)
            if "c" in parts:
                results["c"] = part_c(bench, args.crash_recipients, policy)
            if "e" in parts:
                results["e"] = part_e(bench, args.limited_recipients, policy, args.account_open_requests)
        finally:
            bench.close()
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
