"""Validity: how long a broadcast's messages may wait in Twilio's queue before Twilio drops them (Twilio's
ValidityPeriod, 1 s to 10 h), per broadcast kind, so an alert stuck behind others expires instead of
arriving hours late. Urgent broadcasts, whatever their kind, get the "urgent" entry."""

from __future__ import annotations

import re
from collections.abc import Mapping

MIN_SECONDS, MAX_SECONDS = 1, 36_000  # Twilio refuses anything else (error 21624)
URGENT = "urgent"
DEFAULT = "urgent=30m,verified=30m,correction=1h,update=4h,all_clear=4h"
_ENTRY = re.compile(r"(?P<name>[a-z_]+)=(?P<amount>\d+)(?P<unit>[smh])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


class InvalidValidity(ValueError):
    """A malformed AVISO_VALIDITY_PERIODS entry (the message names it)."""


def parse(text: str) -> dict[str, int]:
    """"urgent=20m,update=2h" -> DEFAULT's periods with those two changed (in seconds)."""
    periods = _parse(DEFAULT, tuple(entry.split("=")[0] for entry in DEFAULT.split(",")))
    periods.update(_parse(text, tuple(periods)))
    return periods


def _parse(text: str, names: tuple[str, ...]) -> dict[str, int]:
    periods: dict[str, int] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        match = _ENTRY.fullmatch(entry)
        if not match:
            raise InvalidValidity(f"{entry!r} is not kind=N followed by s, m or h (e.g. urgent=30m)")
        name = match["name"]
        if name not in names:
            raise InvalidValidity(f"{name!r} is not {' or '.join(names)}")
        seconds = int(match["amount"]) * _UNIT_SECONDS[match["unit"]]
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            raise InvalidValidity(f"{entry!r}: Twilio takes 1 second to 10 hours")
        periods[name] = seconds
    return periods


def seconds_for(kind: str, urgent: bool, periods: Mapping[str, int]) -> int:
    """The ValidityPeriod for a broadcast of this kind (the "urgent" entry first when it is urgent)."""
    if urgent and URGENT in periods:
        return periods[URGENT]
    return periods.get(kind, MAX_SECONDS)
