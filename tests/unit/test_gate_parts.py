"""The ledger's small parts, on their own."""

from __future__ import annotations

import pytest

from gate import DropReason, InvalidIdError, VirtualClock
from gate._bounded_order import BoundedOrder
from gate._deadline_queue import DeadlineQueue
from gate.validation import check_cap, check_id, check_reason, check_timeout


def test_bounded_order_forgets_the_oldest_and_keeps_a_re_added_key_in_place() -> None:
    order = BoundedOrder(2)
    assert order.add("a") is None and order.add("b") is None
    assert order.add("a") is None  # already there: keeps its place, forgets nothing
    assert order.add("c") == "a"
    assert "a" not in order and "b" in order and len(order) == 2
    order.discard("b")
    order.discard("missing")
    assert len(order) == 1


def test_deadline_queue_pops_due_entries_in_order_and_compacts_stale_ones() -> None:
    queue = DeadlineQueue()
    for deadline, key in [(3.0, "c"), (1.0, "a"), (1.0, "a2"), (2.0, "b")]:
        queue.push(deadline, key)
    assert queue.peek() == (1.0, "a")
    assert queue.pop_due(2.0) == [(1.0, "a"), (1.0, "a2"), (2.0, "b")]
    assert queue.pop_due(2.5) == [] and len(queue) == 1
    for i in range(200):
        queue.push(10.0 + i, f"stale{i}")
    queue.compact(lambda _deadline, key: key == "c", live=1)
    assert len(queue) == 1 and queue.pop() == (3.0, "c")
    with pytest.raises(IndexError):
        queue.pop()


def test_validation_names_the_problem() -> None:
    assert check_id("request", "r1") == "r1"
    with pytest.raises(InvalidIdError, match="request id must not be empty"):
        check_id("request", "")
    with pytest.raises(ValueError, match="max_live must be a positive int"):
        check_cap("max_live", 0)
    with pytest.raises(ValueError, match="max_live"):
        check_cap("max_live", True)
    assert check_timeout(2) == 2.0
    with pytest.raises(ValueError, match="timeout"):
        check_timeout(True)
    with pytest.raises(ValueError, match="not a flag reason"):
        check_reason(DropReason.RETIRED)
    check_reason(DropReason.CANCELLED)


def test_virtual_clock_only_moves_forward() -> None:
    clock = VirtualClock(5.0)
    assert clock.advance(0.5) == 5.5
    clock.set(6.0)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(1.0)
    with pytest.raises(ValueError, match="non-negative"):
        clock.advance(-1.0)
    with pytest.raises(ValueError, match="finite"):
        VirtualClock(float("nan"))
