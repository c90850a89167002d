"""The virtual-time scheduler: order, ties, priorities, cancellation, and time's arrow."""

from __future__ import annotations

import math
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.world.scheduler import MESSAGE, TIMER, Scheduler


@pytest.mark.req("SIM-SCHED")
def test_events_run_in_time_order_and_now_follows() -> None:
    sched = Scheduler()
    seen: list[tuple[str, float]] = []
    for name, at in [("c", 3.0), ("a", 1.0), ("b", 2.0)]:
        sched.schedule(at, partial(lambda tag: seen.append((tag, sched.now)), name))
    sched.run()
    assert seen == [("a", 1.0), ("b", 2.0), ("c", 3.0)]
    assert sched.now == 3.0
    assert len(sched) == 0


@pytest.mark.req("SIM-SCHED")
def test_ties_run_in_insertion_order() -> None:
    sched = Scheduler()
    seen: list[int] = []
    for index in range(50):
        sched.schedule(5.0, partial(seen.append, index))
    sched.run()
    assert seen == list(range(50))


@pytest.mark.req("SIM-SCHED")
def test_timer_runs_before_message_at_equal_times_whatever_the_insertion_order() -> None:
    sched = Scheduler()
    seen: list[str] = []
    sched.schedule(1.0, lambda: seen.append("message-1"), MESSAGE)
    sched.schedule(1.0, lambda: seen.append("timer-1"), TIMER)
    sched.schedule(1.0, lambda: seen.append("message-2"))  # MESSAGE is the default
    sched.schedule(1.0, lambda: seen.append("timer-2"), TIMER)
    sched.schedule(0.5, lambda: seen.append("earlier message"), MESSAGE)
    sched.run()
    assert seen == ["earlier message", "timer-1", "timer-2", "message-1", "message-2"]


@pytest.mark.req("SIM-SCHED")
def test_timer_scheduled_for_now_by_a_message_runs_before_the_remaining_messages() -> None:
    sched = Scheduler()
    seen: list[str] = []

    def first_message() -> None:
        seen.append("message-1")
        sched.schedule(sched.now, lambda: seen.append("timer"), TIMER)

    sched.schedule(1.0, first_message)
    sched.schedule(1.0, lambda: seen.append("message-2"))
    sched.run()
    assert seen == ["message-1", "timer", "message-2"]


@pytest.mark.req("SIM-SCHED")
@pytest.mark.parametrize("bad", [0.999, -1.0, math.nan, math.inf])
def test_scheduling_in_the_past_or_at_a_non_finite_time_raises(bad: float) -> None:
    sched = Scheduler()
    sched.schedule(1.0, lambda: None)
    sched.run()
    with pytest.raises(ValueError):
        sched.schedule(bad, lambda: None)
    with pytest.raises(ValueError):
        sched.schedule_after(-0.001, lambda: None)


@pytest.mark.req("SIM-SCHED")
def test_scheduling_at_now_is_allowed_and_schedule_after_is_relative() -> None:
    sched = Scheduler(start=10.0)
    seen: list[float] = []
    sched.schedule(10.0, lambda: seen.append(sched.now))
    sched.schedule_after(2.5, lambda: seen.append(sched.now))
    sched.run()
    assert seen == [10.0, 12.5]


@pytest.mark.req("SIM-SCHED")
def test_run_until_stops_inclusive_and_sets_now() -> None:
    sched = Scheduler()
    seen: list[float] = []
    for at in (1.0, 2.0, 2.0, 3.0):
        sched.schedule(at, partial(seen.append, at))
    sched.run(until=2.0)
    assert seen == [1.0, 2.0, 2.0]
    assert sched.now == 2.0
    assert sched.peek() == 3.0
    sched.run(until=2.5)  # nothing due: time still advances
    assert sched.now == 2.5
    assert seen == [1.0, 2.0, 2.0]
    with pytest.raises(ValueError):
        sched.run(until=2.0)
    sched.run(until=10.0)
    assert seen == [1.0, 2.0, 2.0, 3.0]
    assert sched.now == 10.0


@pytest.mark.req("SIM-SCHED")
def test_run_until_includes_events_scheduled_during_the_run() -> None:
    sched = Scheduler()
    seen: list[float] = []

    def chain() -> None:
        seen.append(sched.now)
        sched.schedule_after(1.0, chain)

    sched.schedule(0.0, chain)
    sched.run(until=4.0)
    assert seen == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert sched.peek() == 5.0


@pytest.mark.req("SIM-SCHED")
def test_cancel_is_lazy_idempotent_and_skipped_by_peek_and_step() -> None:
    sched = Scheduler()
    seen: list[str] = []
    first = sched.schedule(1.0, lambda: seen.append("first"))
    second = sched.schedule(2.0, lambda: seen.append("second"))
    assert len(sched) == 2 and first.pending
    sched.cancel(first)
    sched.cancel(first)
    assert not first.pending
    assert len(sched) == 1
    assert sched.peek() == 2.0
    assert sched.step() is True
    assert seen == ["second"]
    assert not second.pending
    sched.cancel(second)  # already ran: no effect on the count
    assert len(sched) == 0
    assert sched.step() is False
    assert sched.peek() is None


@pytest.mark.req("SIM-SCHED")
def test_an_event_can_cancel_a_later_one_at_the_same_time() -> None:
    sched = Scheduler()
    seen: list[str] = []
    victim = sched.schedule(1.0, lambda: seen.append("victim"))
    sched.schedule(1.0, lambda: seen.append("survivor"))
    sched.schedule(1.0, lambda: sched.cancel(victim), TIMER)
    sched.run()
    assert seen == ["survivor"]


@pytest.mark.req("SIM-SCHED")
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=1e6, allow_nan=False),
            st.sampled_from([TIMER, MESSAGE]),
            st.booleans(),
        ),
        max_size=200,
    )
)
def test_time_never_goes_backwards_and_order_is_time_priority_insertion(
    entries: list[tuple[float, int, bool]],
) -> None:
    sched = Scheduler()
    ran: list[tuple[float, int, int]] = []
    expected: list[tuple[float, int, int]] = []
    for index, (at, priority, cancelled) in enumerate(entries):
        handle = sched.schedule(at, partial(ran.append, (at, priority, index)), priority)
        if cancelled:
            sched.cancel(handle)
        else:
            expected.append((at, priority, index))
    times: list[float] = []
    while sched.step():
        times.append(sched.now)
    assert ran == sorted(expected)
    assert times == sorted(times)
    assert len(sched) == 0


@pytest.mark.req("SIM-SCHED")
def test_clear_revokes_every_pending_event() -> None:
    sched = Scheduler()
    ran: list[int] = []
    handles = [sched.schedule(float(i), partial(ran.append, i)) for i in range(3)]
    sched.run(until=0.5)
    sched.clear()
    assert len(sched) == 0 and sched.peek() is None and not any(h.pending for h in handles)
    sched.run()
    assert ran == [0]
