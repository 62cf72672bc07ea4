"""Key strength: whether a secret key looks random enough to protect families' numbers."""

from __future__ import annotations

import math
from collections import Counter
from itertools import pairwise

MIN_LENGTH = 32
MIN_ESTIMATED_BITS = 80
# A random key from secrets.token_urlsafe(32) estimates at about 200 bits and a random 32-character hex
# key at 90-140; "a" * 32 at 0 and "password" * 4 at 88, which the repetition rule catches instead.
MAX_SMALL_STEP_SHARE = 0.6  # "abcdef…", "aaaa…", "9876…": neighbours one code point apart (or equal)


def estimated_bits(key: str) -> float:
    """Length times the Shannon entropy of the key's character frequencies: an upper bound for a typed key."""
    if not key:
        return 0.0
    counts = Counter(key)
    total = len(key)
    return total * -sum(n / total * math.log2(n / total) for n in counts.values())


def _repeats_a_pattern(key: str) -> bool:
    return any(key == (key[:period] * (len(key) // period + 1))[: len(key)] for period in range(1, len(key) // 2 + 1))


def _mostly_runs(key: str) -> bool:
    steps = [abs(ord(b) - ord(a)) <= 1 for a, b in pairwise(key)]
    return bool(steps) and sum(steps) / len(steps) > MAX_SMALL_STEP_SHARE


def weakness(key: str) -> str | None:
    """Why a key is too weak to use (a short reason), or None when it passes every rule."""
    if len(key) < MIN_LENGTH:
        return f"shorter than {MIN_LENGTH} characters"
    if _repeats_a_pattern(key):
        return "a repeated pattern"
    if _mostly_runs(key):
        return "mostly runs of neighbouring characters"
    if estimated_bits(key) < MIN_ESTIMATED_BITS:
        return f"too few different characters (under {MIN_ESTIMATED_BITS} bits estimated)"
    return None
