"""Deprecated: the old module path of the broadcast jobs, kept for jobs queued before the package layout.

Remove in the release after next: RQ finds a queued job's function by the dotted name stored with it.
"""

from bot.services.jobs import send_batch, start_broadcast
from bot.services.jobs import watch_broadcast as watch

__all__ = ["send_batch", "start_broadcast", "watch"]
