"""Queues: the RQ queue names, most urgent first (workers listen in this order)."""

URGENT = "urgent"  # safety alerts: before anything else
DEFAULT = "default"
LOW = "low"  # reminders' housekeeping, expiry, reports
ALL = (URGENT, DEFAULT, LOW)

# The RQ jobs, by dotted name: a capability queues one without importing the services layer that runs it
# (bot.services.jobs builds the services, then calls the capability). tests/test_architecture.py checks
# that each name resolves.
START_BROADCAST = "bot.services.jobs.start_broadcast"
WATCH_BROADCAST = "bot.services.jobs.watch_broadcast"
SEND_BATCH = "bot.services.jobs.send_batch"
PLACE_CALLS = "bot.services.jobs.place_calls"  # an urgent broadcast's voice alert calls
SEND_REMINDERS = "bot.services.jobs.send_reminders"
SEND_PROMOTIONS = "bot.services.jobs.send_promotions"
SEND_NOTICES = "bot.services.jobs.send_notices"
CLOSE_WORKSHOP = "bot.services.jobs.close_workshop"
SYNC_WORKSHOPS = "bot.services.jobs.sync_workshops"
NOTIFY_APPROVERS = "bot.services.jobs.notify_approvers"
NOTIFY_SENDER = "bot.services.jobs.notify_sender"
JOBS = (START_BROADCAST, WATCH_BROADCAST, SEND_BATCH, PLACE_CALLS, SEND_REMINDERS, SEND_PROMOTIONS, SEND_NOTICES,
        CLOSE_WORKSHOP, SYNC_WORKSHOPS, NOTIFY_APPROVERS, NOTIFY_SENDER)
