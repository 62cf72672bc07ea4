"""Queues: the RQ queue names, most urgent first (workers listen in this order)."""

URGENT = "urgent"  # safety alerts: before anything else
DEFAULT = "default"
LOW = "low"  # reminders' housekeeping, expiry, reports
ALL = (URGENT, DEFAULT, LOW)
