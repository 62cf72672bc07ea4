"""Web: the Twilio webhook, the JSON API, the dashboard, the phone simulator, health."""
