"""Workshops: registrations and waitlists, reminders, announcing content changes to registrants."""
