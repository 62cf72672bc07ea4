"""Metrics: Aviso's Prometheus counters and histograms, and the one-line calls that record them.

Labels are only ever fixed vocabularies (an answer's command, a content language, a Twilio error code, a
skip reason, an endpoint's route): never a number, a contact key or any text a family wrote. Under
PROMETHEUS_MULTIPROC_DIR (gunicorn, RQ work horses) prometheus_client keeps each process's values in
files there, which /metrics adds up."""

from __future__ import annotations

import os

from prometheus_client import Counter, Histogram, values

_worker_pid: int | None = None


def _process_identifier() -> int | str:
    """Whose files this process writes: its own, except in an RQ work horse, which writes its worker's horse
    files. A worker runs one horse at a time, so they never write them at once (prometheus_client's rule), and
    the folder keeps two sets of files per worker instead of one per job run (scripts/bench_metrics.py)."""
    pid = os.getpid()
    return f"horses-of-{_worker_pid}" if _worker_pid is not None and pid != _worker_pid else pid


if getattr(values.ValueClass, "_multiprocess", False):  # PROMETHEUS_MULTIPROC_DIR was set at import
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_identifier)


def share_files_among_horses() -> None:
    """Called by `aviso worker` before it forks: its work horses (its only children that record metrics; RQ's
    scheduler process records none) write one shared set of files."""
    global _worker_pid
    _worker_pid = os.getpid()


WEBHOOK_SECONDS = Histogram(
    "aviso_webhook_duration_seconds", "Time to answer a Twilio webhook, by route.", ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
WEBHOOK_REQUESTS = Counter(
    "aviso_webhook_requests", "Twilio webhook requests answered, by route and HTTP status.", ["endpoint", "status"])
REPLIES = Counter(
    "aviso_replies", "Inbound messages answered, by the answer given and the language it was given in.",
    ["answer", "language", "source"])
NOT_UNDERSTOOD = Counter(
    "aviso_not_understood", "Inbound messages Aviso did not understand, by the language it answered in.",
    ["language"])
ANSWERS_NOT_SAVED = Counter(
    "aviso_answers_not_saved", "Answers sent to a family whose write Redis then refused or did not receive, by "
    "reason (unreachable, OOM, READONLY, error...).", ["reason"])
BROADCAST_SENT = Counter("aviso_broadcast_sent", "Broadcast messages Twilio accepted.")
BROADCAST_FAILED = Counter(
    "aviso_broadcast_failed", "Broadcast recipients who could not be sent to, by Twilio error code.", ["code"])
BROADCAST_SKIPPED = Counter(
    "aviso_broadcast_skipped", "Broadcast recipients skipped, by reason (opted out, no template...).", ["reason"])
TWILIO_TOO_MANY = Counter(
    "aviso_twilio_too_many_requests", "Twilio calls answered 429 (too many requests open on the account).")
RATE_LIMIT_WAIT_SECONDS = Histogram(
    "aviso_rate_limit_wait_seconds", "Time a broadcast message waited for its turn under the segment rate cap.",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))

NO_LANGUAGE = "none"
# Each label series' child, looked up once per process: labels() validates and locks on every call, a
# noticeable share of a webhook answer. The vocabularies are fixed (commands, languages, routes, statuses),
# so these stay small.
_children: dict[tuple, object] = {}


def _child(metric, *labels: str):
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def answer_not_saved(reason: str) -> None:
    """Count an answer that went out while its write did not reach Redis."""
    _child(ANSWERS_NOT_SAVED, reason).inc()


def replied(answer: str, language: str | None, *, offline: bool = False) -> None:
    """Count one answered message (and a not-understood one per language)."""
    language = language or NO_LANGUAGE
    _child(REPLIES, answer, language, "memory" if offline else "redis").inc()
    if answer == "unknown":
        _child(NOT_UNDERSTOOD, language).inc()


def broadcast_outcome(outcome: str) -> None:
    """Count a broadcast recipient's outcome as recorded ("sent:SID", "failed:CODE", "skipped:REASON")."""
    kind, _, detail = outcome.partition(":")
    if kind == "sent":
        BROADCAST_SENT.inc()
    elif kind == "failed":
        BROADCAST_FAILED.labels(code=detail or "unknown").inc()
    elif kind == "skipped":
        BROADCAST_SKIPPED.labels(reason=detail or "unknown").inc()


def twilio_too_many() -> None:
    """Count one 429 from Twilio."""
    TWILIO_TOO_MANY.inc()


def rate_limit_waited(seconds: float) -> None:
    """Record how long a message waited for the rate limit (0 when it did not)."""
    RATE_LIMIT_WAIT_SECONDS.observe(seconds)


def webhook_answered(endpoint: str, status: int, seconds: float) -> None:
    """Record one webhook request's route, status and duration."""
    _child(WEBHOOK_SECONDS, endpoint).observe(seconds)
    _child(WEBHOOK_REQUESTS, endpoint, str(status)).inc()
