"""Every Redis key Aviso writes, in one place. No key or value holds a plaintext phone number."""

PREFIX = "aviso"

# Contact state: a hash per contact, named by the keyed hash of channel and number (identity.py).
# Fields: lang, at, pending, pending_until, opted_out, num (Fernet-encrypted E.164), ch, wa_seen.
CONTACT = PREFIX + ":contact:{key}"
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
