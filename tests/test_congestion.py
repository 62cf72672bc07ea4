"""The window of Twilio calls a batch keeps in flight: cut to 70% on 429, grown back one per round."""

from __future__ import annotations

import asyncio

import pytest

from bot.twilio.congestion import CallWindow


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def entered(window: CallWindow, calls: int) -> list[float]:
    """Make `calls` calls enter the window (which has room for them); return their entry times."""
    async def enter_all():
        return [await window.enter() for _ in range(calls)]
    return asyncio.run(enter_all())


def test_a_new_window_allows_the_configured_calls():
    window = CallWindow(128)
    assert window.allowed == 128 and window.cuts == 0


@pytest.mark.parametrize(("ceiling", "refusals", "allowed"), [
    (128, 1, 89),
    (128, 2, 62),
    (128, 7, 10),
    (128, 30, 1),  # never below one call: the batch always moves
    (5, 1, 3),
])
def test_each_round_of_too_many_cuts_the_window_to_70_percent(ceiling, refusals, allowed):
    clock = Clock()
    window = CallWindow(ceiling, clock=clock)
    for _ in range(refusals):
        started = entered(window, 1)[0]
        clock.now += 1
        window.leave(started, too_many=True)
    assert window.allowed == allowed and window.cuts == refusals


def test_refusals_of_calls_made_before_the_cut_cut_only_once():
    clock = Clock()
    window = CallWindow(100, clock=clock)
    wave = entered(window, 100)  # all in flight when Twilio starts saying too many
    clock.now += 1
    cuts = [window.leave(started, too_many=True) for started in wave[:60]]
    assert cuts.count(True) == 1 and window.allowed == 70
    later = entered(window, 1)[0]  # a call made after the cut, refused too: the smaller window is too big
    clock.now += 1
    assert window.leave(later, too_many=True) and window.allowed == 49


def test_answers_grow_the_window_back_by_one_per_round_up_to_the_ceiling():
    clock = Clock()
    window = CallWindow(40, clock=clock)
    window.leave(entered(window, 1)[0], too_many=True)  # 40 -> 28
    assert window.allowed == 28
    for started in entered(window, 28):  # one round: a window's worth of answers
        window.leave(started, too_many=False)
    assert window.size == pytest.approx(29, abs=0.05)
    for _ in range(200):
        for started in entered(window, window.allowed):
            window.leave(started, too_many=False)
    assert window.allowed == 40


def test_calls_without_an_answer_neither_cut_nor_grow_the_window():
    clock = Clock()
    window = CallWindow(40, clock=clock)
    window.leave(entered(window, 1)[0], too_many=True)  # 40 -> 28
    for started in entered(window, 28):  # timeouts, 5xx, no connection, a stop
        window.leave(started, too_many=False, answered=False)
    assert window.size == pytest.approx(28) and window.cuts == 1


def test_a_full_window_makes_the_next_call_wait_for_an_answer():
    async def scenario():
        window = CallWindow(2)
        first, _ = await window.enter(), await window.enter()
        third = asyncio.create_task(window.enter())
        await asyncio.sleep(0.01)
        waited = not third.done()
        window.leave(first, too_many=False)
        await asyncio.wait_for(third, 1)
        return waited, window.open

    assert asyncio.run(scenario()) == (True, 2)


def test_a_cut_holds_back_calls_until_the_smaller_window_has_room():
    async def scenario():
        window = CallWindow(10)
        calls = [await window.enter() for _ in range(10)]
        window.leave(calls[0], too_many=True)  # 7 allowed now, 9 still open
        waiting = asyncio.create_task(window.enter())
        await asyncio.sleep(0.01)
        held = not waiting.done()
        for started in calls[1:3]:  # 7 open: still no room (two answers grow the window by 0.28)
            window.leave(started, too_many=False)
        await asyncio.sleep(0.01)
        still_held = not waiting.done()
        window.leave(calls[3], too_many=False)  # 6 open: room for one
        await asyncio.wait_for(waiting, 1)
        return held, still_held, window.allowed, window.open

    assert asyncio.run(scenario()) == (True, True, 7, 7)


def test_a_waiting_call_that_is_cancelled_passes_its_room_on():
    async def scenario():
        window = CallWindow(1)
        first = await window.enter()
        quitter = asyncio.create_task(window.enter())
        stayer = asyncio.create_task(window.enter())
        await asyncio.sleep(0.01)
        window.leave(first, too_many=False)  # wakes the quitter, which is cancelled before it runs
        quitter.cancel()
        await asyncio.wait_for(stayer, 1)
        return window.open

    assert asyncio.run(scenario()) == 1
