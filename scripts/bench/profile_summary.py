#!/usr/bin/env python3
"""Summarise py-spy's collapsed stacks (`py-spy record --format raw`): where the workers' time goes.

    .venv/bin/python scripts/bench/profile_summary.py aviso-4x4.folded [--top 40] [--filter bot/]

Prints, as a share of all samples, each function's inclusive time (on the stack at all) and self time
(at the top of the stack); --filter keeps the functions whose frame text contains the given string.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def strip(frame: str) -> str:
    """'answer (bot/web/api.py:85)' -> 'answer (bot/web/api.py)'; keeps functions apart, not lines."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    repo = str(Path(__file__).resolve().parents[2]) + "/"
    for marker in ("site-packages/", repo, "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folded")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--filter", default="")
    parser.add_argument("--idle", action="store_true", help="keep samples of threads waiting for work")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in Path(args.folded).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [strip(f) for f in stack.split(";")]
        if not args.idle and any(f.startswith(("wait (threading", "_worker (concurrent", "select (selectors",
                                                "sleep (gunicorn")) for f in frames[-3:]):
            continue
        while frames and frames[0].startswith(("process ", "thread ")):
            frames = frames[1:]  # py-spy --subprocesses names the processes (master;worker) first
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    print(f"{total} samples of busy threads")
    print(f"{'incl %':>7} {'self %':>7}  function")
    shown = 0
    for frame, n in inclusive.most_common():
        if args.filter and args.filter not in frame:
            continue
        print(f"{100 * n / total:7.1f} {100 * own[frame] / total:7.1f}  {frame}")
        shown += 1
        if shown >= args.top:
            break
    print("\nself time, top:")
    for frame, n in own.most_common(args.top):
        print(f"{100 * n / total:7.1f}  {frame}")


if __name__ == "__main__":
    main()
