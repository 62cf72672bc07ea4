"""Every Redis key Aviso writes, in one place. No key or value holds a plaintext phone number."""

PREFIX = "aviso"

# Contact state: a hash per contact, named by the keyed hash of channel and number (identity.py), or of
# channel and WhatsApp user id (BSUID) for a family that hides its number behind a WhatsApp username.
# Fields: lang, at, pending, pending_until, opted_out, num (Fernet-encrypted E.164 or user id), ch,
# wa_seen; uid (Fernet-encrypted user id, when num is the number), aliases (the CONTACT_ALIAS names
# that lead here, comma-separated, so FORGET erases them).
CONTACT = PREFIX + ":contact:{key}"
# Another name of a contact: the keyed hash of a WhatsApp user id (or number) seen with the contact's own
# number (or user id) -> that contact's key, so later payloads carrying only one of them find the family.
# Set at every message to expire when its contact does (aliases.lifetime); FORGET deletes it.
CONTACT_ALIAS = PREFIX + ":alias:{key}"
# A processed inbound message: the TwiML answered, so Twilio's retries get the same answer.
INBOUND_MESSAGE = PREFIX + ":inbound:{sid}"
INBOUND_PENDING = "\x00pending"  # value while the first delivery is being answered
INBOUND_TTL_SECONDS = 2 * 24 * 3600
INBOUND_CLAIM_SECONDS = 30
# Analytics: aggregate keyword counts, field "{command}:{language}", one hash per local day.
KEYWORD_STATS = PREFIX + ":stats:keywords:{day}"
KEYWORD_STATS_TTL_SECONDS = 400 * 24 * 3600
# Content: the JSON of each published version, the active version, and the publish history.
CONTENT_VERSION = PREFIX + ":content:version:{version}"
CONTENT_META = PREFIX + ":content:meta:{version}"
CONTENT_ACTIVE = PREFIX + ":content:active"
CONTENT_HISTORY = PREFIX + ":content:history"
# Outbox: outbound messages recorded instead of sent when no Twilio account is configured.
OUTBOX = PREFIX + ":outbox"
OUTBOX_MAX = 1000

# Alert subscriptions. A school's subscribers: a set of contact keys. A contact's own schools live in
# its contact hash, field "schools" (comma-separated school codes), so a subscriber costs one hash.
SCHOOL_SUBSCRIBERS = PREFIX + ":school:{code}:subscribers"
# Audience counts (owned by bot/people/audience_counts.py, written in the same script as each subscriber change):
# a hash per scope, "{language}|{channel}" -> reachable subscribers; the district's counts each family
# once. Beside each, "{scope}:wa:{language}": a sorted set of WhatsApp subscribers' contact keys scored by
# their last message (for the 24-hour window). Counts and contact keys only, never a number.
COUNTS_ALL = PREFIX + ":counts:all"
COUNTS_SCHOOL = PREFIX + ":counts:school:"

# ---- Broadcasts (owned by bot/broadcasts/ and bot/twilio/ratelimit.py) ---------------------------
# A broadcast: a hash with fields doc (the Broadcast as JSON), status, started_at, finished_at,
# audience (recipients snapshotted when sending began) and failure (why it failed). It holds staff
# text only, no family data, so it is kept a year for the audit trail, like its code and counts.
BROADCAST = PREFIX + ":bcast:{id}"
BROADCAST_CODE = PREFIX + ":bcast:code:{code}"  # verification code (upper case) -> broadcast id
BROADCAST_CORRECTIONS = PREFIX + ":bcast:{id}:corrections"  # ids of the corrections of broadcast id
BROADCASTS_RECENT = PREFIX + ":bcasts"  # sorted set: broadcast id scored by creation time
BROADCAST_COUNTS = PREFIX + ":bcast:{id}:counts"  # aggregate outcome and status-callback counters
BROADCAST_TTL_SECONDS = 365 * 24 * 3600
# Per-recipient records, named by contact key (never a number), kept 30 days after the last write:
# long enough to send a correction to exactly the same people and for late status callbacks.
BROADCAST_OUTCOMES = PREFIX + ":bcast:{id}:out"  # contact key -> sending:<ts>:<run> | sent:<sid> |
#                                                  failed:<code> | skipped:<reason>
BROADCAST_SIDS = PREFIX + ":bcast:{id}:sids"  # message sid -> contact key[|last final status]
BROADCAST_RUN = PREFIX + ":bcast:{id}:run"  # fan-out state: batches, policy, job id per batch
BROADCAST_BATCH = PREFIX + ":bcast:{id}:batch:{n}"  # contact keys of batch n, comma-separated
BROADCAST_DONE_BATCHES = PREFIX + ":bcast:{id}:done"  # set of finished batch numbers
BROADCAST_LEASE = PREFIX + ":bcast:{id}:lease:{n}"  # token of the worker running batch n (expires)
BROADCAST_RECIPIENT_TTL_SECONDS = 30 * 24 * 3600
# An urgent broadcast's voice alert calls (bot.broadcasts.calls): run state and counts (audience, placed,
# completed, no-answer, busy, failed, skipped), the callees (comma-separated contact keys), one record per
# callee (claim:<token>:<ts> | placed:<sid> | skipped:<reason> | failed:<code>), call sid -> final status.
CALL_RUN = PREFIX + ":bcast:{id}:calls"
CALL_CALLEES = PREFIX + ":bcast:{id}:calls:todo"
CALL_OUTCOMES = PREFIX + ":bcast:{id}:calls:out"
CALL_STATUSES = PREFIX + ":bcast:{id}:calls:sids"
CALL_LEASE = PREFIX + ":bcast:{id}:calls:lease"  # token of the worker placing the calls (expires)
# Shared send-rate limiter, per sender (messaging service sid or from-number: Aviso's own, never a
# family's): a sorted set of recent grants and a hash with the running segment sum and next slot.
RATE_LIMIT_LOG = PREFIX + ":ratelimit:{sender}:log"
RATE_LIMIT_STATE = PREFIX + ":ratelimit:{sender}:state"

# ---- Staff (owned by bot/people/staff.py) --------------------------------------------------------
# The roster: one hash, staff id -> JSON record (name, role, schools, Fernet-encrypted phone).
STAFF = PREFIX + ":staff"
STAFF_BY_PHONE = PREFIX + ":staff:phone:{hash}"  # keyed hash of the phone number -> staff id
STAFF_TOKENS = PREFIX + ":staff:tokens"  # sha256 of an API token -> its record (staff id, created, expires)
STAFF_TOKENS_USED = PREFIX + ":staff:tokens:used"  # sha256 of an API token -> when it last worked
APPROVAL_NOTICE = PREFIX + ":notice:{id}:{what}"  # a notice about a broadcast's approval, sent once

# ---- Keys at rest (owned by bot/people/key_rotation.py) ---------------------------------------------------
# A keyed fingerprint of the naming key (AVISO_SECRET_KEY): a process started with another key refuses
# to run rather than silently treat every contact and staff member as a stranger.
NAMING_KEY = PREFIX + ":keys:naming"
# `aviso rekey` in progress: a hash with cursor (SCAN's), key (a fingerprint of the newest encryption
# key it re-encrypts under), scanned and rekeyed (counts). Deleted when a run finishes.
REKEY = PREFIX + ":keys:rekey"

# ---- Audit (owned by bot/people/audit.py) --------------------------------------------------------
AUDIT = PREFIX + ":audit"  # list of JSON entries, newest first
AUDIT_MAX = 100_000
# The same entries again per school (a broadcast's owning schools), for the content, and per subject
# (a broadcast id), so a school's audit page and a broadcast's "sent back" reason read only their own.
AUDIT_SCHOOL = PREFIX + ":audit:school:{code}"
AUDIT_CONTENT = PREFIX + ":audit:content"
AUDIT_SUBJECT = PREFIX + ":audit:subject:{subject}"
AUDIT_SCOPE_MAX = 10_000
AUDIT_SUBJECT_MAX = 100

# ---- Workshops (owned by bot/workshops/) ---------------------------------------------------------
# A contact's own sign-ups live in its contact hash, fields "workshops" (ids it holds a seat for) and
# "waitlisted" (ids it waits for), comma-separated. Only registrations' Lua scripts write them, in
# the same step as the sets below, so a promotion never races a conversation's save.
WORKSHOP_SEATS = PREFIX + ":ws:{id}:seats"  # sorted set: contact key -> sign-up time (epoch ms)
WORKSHOP_WAITLIST = PREFIX + ":ws:{id}:waitlist"  # sorted set: contact key -> sign-up time, first first
WORKSHOP_META = PREFIX + ":ws:{id}:meta"  # hash: capacity (as last published), for FORGET's promotion
WORKSHOP_PROMOTED = PREFIX + ":ws:{id}:promoted"  # set: contact keys given a seat, notice not yet sent
# One registration's exactly-once record of what was sent for it: marker -> sending:<ms>:<token> |
# sent:<sid> | failed:<code>. Markers: rem:<offset>:<due epoch>, promoted:<ms>, changed:<n>,
# cancelled:<n>. Deleted with the registration (cancel, FORGET, workshop closed).
WORKSHOP_REGISTRATION = PREFIX + ":ws:{id}:reg:{contact}"
WORKSHOPS_INDEX = PREFIX + ":ws:index"  # set: workshop ids that have (or had) registrations
# Content switches already handled (change and cancellation notices, rescheduled reminders):
# hash with version (the content version registrants were last told about) and serial (switches).
WORKSHOPS_SYNCED = PREFIX + ":ws:synced"
WORKSHOPS_SYNC_LOCK = PREFIX + ":ws:sync:lock"
# Registration data is deleted this long after a workshop ends (attendance sheets are printed before).
WORKSHOP_RETENTION_SECONDS = 2 * 24 * 3600

# ---- Dashboard (owned by bot/web/dashboard/) -------------------------------
# Sign-in codes (owned by bot/people/signin.py): one per request, named by a keyed hash of the staff number
# (keyring.keyed_hash), never the number, and the ticket the requesting browser holds in its session.
# A hash with code (a keyed hash of the code, never the code), staff (id, "" off the roster), at (epoch
# seconds) and left (wrong tries left).
DASHBOARD_CODE = PREFIX + ":dash:code:{number}:{ticket}"
# Back-off of code requests per number hash (who; "{hash}:known" for browsers that signed in with it):
# a hash with asks, issued and next (epoch seconds before which no code is issued). Expires after an hour.
DASHBOARD_BACKOFF = PREFIX + ":dash:backoff:{who}"
DASHBOARD_NOTICE = PREFIX + ":dash:notice:{number}"  # set while a staff member was told of a flood of requests
DASHBOARD_FAILURES = PREFIX + ":dash:failures:{bucket}"  # wrong codes district-wide in an hour (epoch // 3600)
DASHBOARD_SLOWED_SLOT = PREFIX + ":dash:slowed"  # while slowed: set for a minute after each new code
DASHBOARD_SLOWED_ERA = PREFIX + ":dash:era"  # counts slowings; a code made in an earlier one dies unchecked
# Attempt counters for sign-in per keyed hash of a client address (never the address plainly); kind is
# codes-address or checks-address. They expire.
DASHBOARD_LIMIT = PREFIX + ":dash:limit:{kind}:{who}"
# A signed-in dashboard session: sha256 of the session id (the cookie holds the id) -> staff id.
# It expires with the session; logout deletes it, and removal from the roster ends it.
DASHBOARD_SESSION = PREFIX + ":dash:session:{sid}"
# Progress snapshots of a broadcast as its page watched it fan out (for the chart): a list of JSON
# [epoch seconds, sent, delivered, failed, skipped]. Counts only; kept as long as recipient records.
DASHBOARD_PROGRESS = PREFIX + ":dash:progress:{id}"
DASHBOARD_PROGRESS_MAX = 600

# ---- Broadcast indexes (owned by bot/broadcasts/index.py; written only by bot/broadcasts/store.py's scripts) --
# Sorted sets of broadcast ids scored by creation time: {scope}, {scope}:status:{status},
# {scope}:kind:{kind}, where scope is the district's or one school's; and {sender}:status:{status}
# per staff id. A broadcast's hash holds what they need beside it: owners, kind, by, score.
BROADCAST_INDEX_ALL = PREFIX + ":bidx:all"
BROADCAST_INDEX_SCHOOL = PREFIX + ":bidx:school:"
BROADCAST_INDEX_SENDER = PREFIX + ":bidx:by:"
