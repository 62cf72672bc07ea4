"""Twilio: REST clients, senders, the send rate limit, and the fake Twilio server for tests and benchmarks."""
