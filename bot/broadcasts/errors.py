"""What the broadcast store refuses: one exception per reason, all BroadcastErrors."""

from __future__ import annotations


class BroadcastError(Exception):
    """Base of everything this module refuses."""


class BroadcastNotFound(BroadcastError):
    """No broadcast has this id (or it expired)."""


class InvalidBroadcast(BroadcastError):
    """A broadcast with a bad field (kind, id, texts, a correction without its original)."""


class DuplicateBroadcast(BroadcastError):
    """A broadcast with this id or verification code already exists."""


class InvalidTransition(BroadcastError):
    """A status change the life cycle does not allow (e.g. editing or restarting a sent broadcast)."""


class MissingTranslation(BroadcastError):
    """Some recipients' languages have no text and no fallback language was given."""

    def __init__(self, languages: tuple[str, ...]):
        super().__init__("no text for " + ", ".join(lang or "(no language)" for lang in languages))
        self.languages = languages


class OriginalUnavailable(BroadcastError):
    """A correction's original is unknown, was never sent, or its recipient records have expired."""


class Undeliverable(BroadcastError):
    """This recipient cannot be sent this broadcast; reason is a skip reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
