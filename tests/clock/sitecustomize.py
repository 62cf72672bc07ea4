"""Test runs with the clock moved (AVISO_TEST_CLOCK, see tests/conftest.py): the Python processes the tests
start (aviso worker, gunicorn, aviso dev) find this module on PYTHONPATH and move their clock by the same
offset as the test process, so every process agrees on the day."""

import os

if os.environ.get("TEST_CLOCK_OFFSET_SECONDS"):
    from datetime import UTC, datetime, timedelta

    import time_machine

    offset = timedelta(seconds=float(os.environ["TEST_CLOCK_OFFSET_SECONDS"]))
    time_machine.travel(datetime.now(UTC) + offset, tick=True).start()
