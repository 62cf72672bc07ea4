"""The conversation engine's data: a contact's state, one inbound message, and what comes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.content.model import Content
from bot.people.state import ContactState, evolve


@dataclass(frozen=True)
class AlertFacts:
    """What VERIFY may tell about a genuine alert (looked up by the service, passed in)."""

    code: str
    kind: str
    schools: tuple[str, ...]
    sent_at: datetime
    verified_by: str = ""
    corrected_by: str = ""  # the code of the latest correction that went out, if any
    said: dict[str, str] = field(default_factory=dict)  # language -> what the alert said (unframed)
    fallback_language: str | None = None  # whose text went to families whose language had none
    corrects: str = ""  # a correction: the code of the alert it corrects


@dataclass(frozen=True)
class Inbound:
    """One message from a family, as the engine needs it."""

    text: str
    channel: str
    now: datetime
    opt_out_type: str | None = None
    has_media: bool = False
    verification: AlertFacts | None = None  # the alert whose code the text names, when there is one
    # Seats left per workshop id, when the service knows them (it tried a sign-up and the answer
    # differed from what the engine expected: the last seat went, or one freed up). Absent: assume open.
    seats_left: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    """Deployment choices that change answers."""

    carrier_answers_sms_keywords: bool = True  # Twilio Advanced Opt-Out answers STOP/START on SMS


@dataclass(frozen=True)
class OptOut:
    """Stop sending anything to this contact."""


@dataclass(frozen=True)
class OptIn:
    """The contact may be sent messages again."""


@dataclass(frozen=True)
class Forget:
    """Delete everything about this contact."""


@dataclass(frozen=True)
class Subscribe:
    """Follow a school's safety alerts."""

    school: str


@dataclass(frozen=True)
class Unsubscribe:
    """Stop following a school's safety alerts."""

    school: str


@dataclass(frozen=True)
class Register:
    """Sign up for a workshop: a seat if one is free; else the waitlist when waitlist is True."""

    workshop: str
    waitlist: bool = False


@dataclass(frozen=True)
class CancelRegistration:
    """Give up a workshop seat (or a waitlist place); the first on the waitlist gets the seat."""

    workshop: str


Effect = OptOut | OptIn | Forget | Subscribe | Unsubscribe | Register | CancelRegistration


@dataclass(frozen=True)
class Outcome:
    """What to answer, what to remember, and what to do."""

    replies: tuple[str, ...]
    state: ContactState
    command: str
    effects: tuple[Effect, ...] = field(default=())

    @property
    def language(self) -> str | None:
        """The language the contact is answered in."""
        return self.state.language


@dataclass(frozen=True)
class Turn:
    """One step of a conversation, handed to each handler."""

    state: ContactState
    inbound: Inbound
    content: Content
    policy: Policy

    @property
    def lang(self) -> str:
        """The language to answer in."""
        return self.state.language or self.content.default_language

    def text(self, key: str, /, **values: str) -> str:
        """A text in the contact's language."""
        return self.content.text(self.lang, key, **values)

    def with_state(self, **changes) -> Turn:
        """The same turn with some state changed."""
        return evolve(self, state=evolve(self.state, **changes))


def outcome(turn: Turn, replies: tuple[str, ...], command: str, *effects: Effect, **state_changes) -> Outcome:
    """An answer that keeps the contact's state but for the changes named."""
    state = evolve(turn.state, is_new=False, **state_changes)
    return Outcome(replies, state, command, effects)
