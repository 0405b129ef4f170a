"""The timing seam: one `Timing` per run, from its options or the default that tests switch."""

from __future__ import annotations

import asyncio

import pytest

from resumable import InvalidOptionError, MemoryStore, StoreError, Timing, job, resumable
from resumable._timing import DEFAULT, FAST, default
from resumable.testing import FailingStore, fast_timing


def test_fast_timing_switches_the_default_and_puts_it_back() -> None:
    """Inside the block the default is the fast timing (with the changes given); after it,
    whatever it was before, also when the block raises."""
    before = default()
    with fast_timing(save=0.25) as timing:
        inside = default()
        with pytest.raises(ZeroDivisionError), fast_timing():
            1 / 0  # noqa: B018 - leave the inner block by an exception

        assert inside is default()

    assert before is default()
    assert timing is inside
    assert (0.25, FAST.claim, FAST.backoff) == (timing.save, timing.claim, timing.backoff)


async def test_a_run_keeps_the_timing_it_started_with() -> None:
    """The writer holds the timing resolved at the start: switching the default during the
    run changes nothing for it."""
    async with job("kept", cursor=0, store=MemoryStore(), triggers=[]) as j:
        with fast_timing():
            held = j.timing

    assert DEFAULT is held


async def test_the_timing_option_beats_the_default() -> None:
    """timing= gives a job its own budgets, whatever the default is."""
    mine = Timing(save=30.0)
    with fast_timing():
        async with job("own", cursor=0, store=MemoryStore(), triggers=[], timing=mine) as j:
            held = j.timing

    assert mine is held


def test_the_fixture_switches_the_default(resumable_fast_timing: Timing) -> None:
    """The plugin's resumable_fast_timing fixture is fast_timing() around the test."""
    assert FAST == resumable_fast_timing
    assert resumable_fast_timing is default()


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "1", True])
def test_a_timing_refuses_what_is_not_seconds(value: object) -> None:
    """Every field of a Timing is 0 or more seconds, a finite number."""
    with pytest.raises(InvalidOptionError, match=r"Timing\(save=\.\.\.\) must be 0 or more"):
        Timing(save=value)  # type: ignore[arg-type]


def test_the_timing_option_takes_only_a_timing() -> None:
    """timing= is a Timing or None, checked when the job is declared."""
    with pytest.raises(InvalidOptionError, match="timing= must be a Timing"):
        resumable(timing=10.0)  # type: ignore[call-overload]


async def test_a_save_gives_up_within_the_runs_save_budget() -> None:
    """A save against a store that stays down raises after the run's save budget (0.05 s
    here), not the default ten seconds; every attempt in between waits the run's backoff."""
    loop, broken = asyncio.get_running_loop(), FailingStore()
    timing = Timing(save=0.05, backoff=0.001, backoff_max=0.001, jitter=0)
    async with job("down", cursor=0, store=broken, triggers=[], timing=timing) as j:
        j.advance(1)
        broken.forever = True
        started = loop.time()
        with pytest.raises(StoreError, match="'down'") as caught:
            await j.save()
        took = loop.time() - started
        broken.forever = False

    assert took < DEFAULT.save / 2
    assert broken.failures > 3  # retried at the millisecond backoff, not once or twice
    assert "attempt(s)" in str(caught.value)
