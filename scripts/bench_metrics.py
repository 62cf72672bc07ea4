#!/usr/bin/env python3
"""Metrics benchmark: what /metrics costs in multiprocess mode as RQ work horses leave their files behind.

    .venv/bin/python scripts/bench_metrics.py [--horses 10,100,1000] [--scrapes 5] [--per-process]

RQ forks a work horse per job. With prometheus_client's default, under PROMETHEUS_MULTIPROC_DIR each horse
that records a metric leaves its own files (counter_<pid>.db, histogram_<pid>.db) until the folder is
emptied at a restart (--per-process); `aviso worker` makes its horses, which run one at a time, share one
set of files (bot/metrics.py, the default here). For each count it forks that many processes one after
another, each recording what a broadcast batch records (sends, a failure by code, rate-limit waits), then
times a scrape (prometheus_client adding up every file, as /metrics does): median and slowest of --scrapes,
the folder's file count and size, and the scrape's size in bytes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fork_horses(count: int) -> None:
    """Fork `count` short-lived processes that each record one batch's worth of metrics, one after another
    (as one worker's horses run)."""
    from bot.observability import metrics

    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            for _ in range(50):
                metrics.broadcast_outcome("sent:SM0")
                metrics.rate_limit_waited(0.01)
            metrics.broadcast_outcome("failed:21211")
            os._exit(0)
        os.waitpid(pid, 0)


def scrape_seconds(scrapes: int) -> tuple[list[float], int, float]:
    """Time full scrapes of the multiprocess folder; return the times, the last scrape's size and the sends
    it counted (every horse's must be there: 50 each)."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from bot.web.metrics import process_registry

    times, text = [], b""
    for _ in range(scrapes):
        started = time.perf_counter()
        text = generate_latest(process_registry())
        times.append(time.perf_counter() - started)
    sent = next(sample.value for family in text_string_to_metric_families(text.decode())
                for sample in family.samples if sample.name == "aviso_broadcast_sent_total")
    return times, len(text), sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horses", default="10,100,1000", help="comma-separated horse counts")
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--per-process", action="store_true", help="prometheus_client's default: files per pid")
    args = parser.parse_args()
    counts = [int(part) for part in args.horses.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # before prometheus_client is imported
        from bot.observability import metrics

        if not args.per_process:
            metrics.share_files_among_horses()  # as `aviso worker` does
        done = 0
        print(f"{'horses':>7} {'files':>6} {'folder MB':>9} {'scrape median ms':>16} {'slowest ms':>10} {'bytes':>7} "
              f"{'sends counted':>13}")
        for count in counts:
            fork_horses(count - done)
            done = count
            files = list(Path(folder).iterdir())
            megabytes = sum(f.stat().st_size for f in files) / 1e6
            times, size, sent = scrape_seconds(args.scrapes)
            print(f"{count:>7} {len(files):>6} {megabytes:>9.1f} {statistics.median(times) * 1000:>16.1f} "
                  f"{max(times) * 1000:>10.1f} {size:>7} {sent:>13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
