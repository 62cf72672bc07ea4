"""Deprecated: the old module path of the workshop jobs, kept for jobs queued before the package layout.

Remove in the release after next: reminders are scheduled weeks ahead under this name.
"""

from bot.services.jobs import close_workshop, send_notices, send_promotions, send_reminders

__all__ = ["close_workshop", "send_notices", "send_promotions", "send_reminders"]
