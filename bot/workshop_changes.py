"""Deprecated: the old module path of the workshop sync job, kept for jobs queued before the package layout.

Remove in the release after next.
"""

from bot.services.jobs import sync_workshops as sync_job

__all__ = ["sync_job"]
