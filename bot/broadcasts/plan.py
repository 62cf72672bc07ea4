"""What a broadcast will do: its recipients, each one's delivery, and the preview per language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.content import segments


@dataclass(frozen=True)
class Delivery:
    """One recipient's message: a text, or (WhatsApp outside its 24 h window) an approved template."""

    language: str
    body: str
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    segments: int = 1  # SMS segments; a WhatsApp message counts as one


@dataclass(frozen=True)
class Recipient:
    """A subscriber as the audience sees it: contact key (never a number), language, channel."""

    contact: str
    language: str
    channel: str
    wa_seen: int | None


@dataclass(frozen=True)
class LanguagePlan:
    """The preview for one recipient language."""

    language: str
    text_language: str | None  # whose text they get: their own, the fallback, or None (missing)
    sms: int
    whatsapp: int
    whatsapp_template: int  # of the WhatsApp recipients, outside the 24 h window and sent the template
    whatsapp_unreachable: int  # outside the window with no template: reported, not sent
    sms_segments: segments.SegmentCount | None  # the text's SMS encoding and segments
    total_segments: int  # SMS segments (a WhatsApp message is not an SMS and costs none)


@dataclass(frozen=True)
class Plan:
    """The preview of a broadcast: who gets what, what is missing, what it costs."""

    broadcast_id: str
    languages: tuple[LanguagePlan, ...]
    missing: tuple[str, ...]  # recipient languages without their own text
    recipients: int
    messages: int
    total_segments: int  # SMS segments only
    calls: int = 0  # an urgent broadcast: families who asked to be called (broadcasts.calls)
    calls_seconds: float = 0.0  # how long placing those calls takes at AVISO_CALLS_PER_SECOND
    calls_per_second: int = 0

    @property
    def paced_units(self) -> int:
        """What the send rate limit counts: each SMS segment, and each WhatsApp message that goes out."""
        return self.total_segments + sum(row.whatsapp - row.whatsapp_unreachable for row in self.languages)

    def send_seconds(self, segments_per_second: int) -> float | None:
        """How long sending takes at the configured rate (recipients x segments / rate); None without one."""
        return self.paced_units / segments_per_second if segments_per_second > 0 else None

    def send_time(self, segments_per_second: int) -> timedelta | None:
        """send_seconds as a timedelta, for the preview's "about 3 minutes"."""
        seconds = self.send_seconds(segments_per_second)
        return None if seconds is None else timedelta(seconds=max(seconds, 1))

    @property
    def whatsapp_outside_window(self) -> int:
        """WhatsApp recipients outside the 24-hour window (with a template or not)."""
        return sum(row.whatsapp_template + row.whatsapp_unreachable for row in self.languages)

    @property
    def whatsapp_uncovered(self) -> int:
        """Of them, those no template covers: they get nothing."""
        return sum(row.whatsapp_unreachable for row in self.languages)
