"""The fake Twilio REST server for tests, benchmarks and staging: `FakeTwilio`, or `python -m bot.twilio.fake`."""

from bot.twilio.fake.server import FakeTwilio

__all__ = ["FakeTwilio"]
