"""What the dashboard calls the codes it shows (kinds, broadcast states, roles, failure reasons, audit
actions, templates and their variables, worker states), in the staff member's language.

The codes come from data, so the strings are listed here for gettext to find: templates call
label("kind", broadcast.kind). Contexts tell translators apart the same English word used for a broadcast's
state, a count of recipients and a column of jobs (Spanish agrees them in gender and number)."""

from __future__ import annotations

from flask_babel import lazy_gettext, lazy_pgettext

GROUPS = {
    "kind": {
        "update": lazy_gettext("Update"),
        "verified": lazy_gettext("Verified alert"),
        "all_clear": lazy_gettext("All clear"),
        "correction": lazy_gettext("Correction"),
    },
    "kind_hint": {
        "update": lazy_gettext("News families should know, such as a route or time change."),
        "verified": lazy_gettext("Activity confirmed by a named source (for example school police)."),
        "all_clear": lazy_gettext("Things are back to normal."),
        "correction": lazy_gettext("Corrects an alert that went out; reaches exactly the same families."),
    },
    "state": {
        "draft": lazy_pgettext("broadcast state", "Sent back (not sent)"),
        "pending_approval": lazy_pgettext("broadcast state", "Waiting for approval"),
        "approved": lazy_pgettext("broadcast state", "Approved, starting"),
        "scheduled": lazy_pgettext("broadcast state", "Scheduled"),
        "sending": lazy_pgettext("broadcast state", "Sending"),
        "done": lazy_pgettext("broadcast state", "Done"),
        "cancelled": lazy_pgettext("broadcast state", "Cancelled"),
        "failed": lazy_pgettext("broadcast state", "Failed"),
    },
    "role": {
        "sender": lazy_gettext("sender"),
        "approver": lazy_gettext("approver"),
        "admin": lazy_gettext("admin"),
    },
    "template": {
        "route_change": lazy_gettext("Dismissal route change"),
        "staffed_corners": lazy_gettext("Staffed corners"),
        "activity_verified": lazy_gettext("Verified activity nearby"),
        "all_clear": lazy_gettext("All clear"),
        "correction": lazy_gettext("Correction"),
        "emergency_card": lazy_gettext("Update the emergency card"),
        "workshop": lazy_gettext("Workshop announcement"),
    },
    "variable": {
        "date": lazy_gettext("Date"),
        "route": lazy_gettext("Route"),
        "corners": lazy_gettext("Corners"),
        "hours": lazy_gettext("Hours"),
        "location": lazy_gettext("Location"),
        "time": lazy_gettext("Time"),
        "correction": lazy_gettext("What is correct"),
        "title": lazy_gettext("Title"),
        "when": lazy_gettext("When"),
        "place": lazy_gettext("Place"),
    },
    # Failed sends by Twilio error code, skipped recipients by the fan-out's reason.
    "reason": {
        "21610": lazy_gettext("the family texted STOP (21610)"),
        "21211": lazy_gettext("not a valid number (21211)"),
        "63016": lazy_gettext("WhatsApp 24-hour window closed (63016)"),
        "20429": lazy_gettext("Twilio was too busy, even after retries (20429)"),
        "timeout": lazy_gettext("no answer from Twilio in time"),
        "opted_out": lazy_gettext("opted out"),
        "whatsapp_window_closed": lazy_gettext("WhatsApp 24-hour window closed, no approved template"),
        "contact_gone": lazy_gettext("the family deleted their data"),
        "no_translation": lazy_gettext("no text in their language"),
    },
    "action": {
        # Translators: the audit log reads "<name (id)> <action> <what>",
        # e.g. "Ms. Rivera (ab12cd34) created Update · BELMONT".
        "created": lazy_gettext("created"),
        "approved": lazy_gettext("approved"),
        "rejected": lazy_gettext("sent back"),
        "cancelled": lazy_gettext("cancelled"),
        "scheduled": lazy_gettext("scheduled"),
        "sending": lazy_gettext("started sending"),
        "published": lazy_gettext("published"),
        "rolled back": lazy_gettext("rolled back to"),
        # Translators: followed by the audit log's word for the dashboard: "Ms. Rivera (ab12cd34) signed in to the
        # dashboard".
        "signed in": lazy_gettext("signed in to the"),
        "staff added": lazy_gettext("added to the roster"),
        "staff removed": lazy_gettext("removed from the roster"),
        "staff edited": lazy_gettext("changed on the roster"),
        "first admin": lazy_gettext("added as the first admin"),
        "token issued": lazy_gettext("issued an API token for"),
        "token revoked": lazy_gettext("revoked an API token of"),
        "twilio setup": lazy_gettext("set up Twilio"),
    },
    "worker_state": {
        "busy": lazy_gettext("busy"),
        "idle": lazy_gettext("idle"),
        "started": lazy_gettext("starting"),
        "suspended": lazy_gettext("suspended"),
    },
}


def label(group: str, code: str, default: str | None = None) -> str:
    """The staff member's word for a code of a group; default (else the code itself) for an unknown code."""
    found = GROUPS[group].get(str(code))
    if found is None:
        return str(code) if default is None else default
    return str(found)
