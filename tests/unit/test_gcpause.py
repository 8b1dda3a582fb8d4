"""The cyclic collector paused around large Python work: paused inside, back (and run once) after."""

import gc
import inspect
import weakref

import pytest

from mos_pipelines.gcpause import collector_paused, with_collector_paused


class Node:
    other: object = None


def test_paused_inside_and_enabled_after_even_on_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_nested_block_leaves_the_outer_pause_alone():
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block did not switch the collector back on early
    assert gc.isenabled()


def test_no_automatic_collection_inside_and_automatic_again_after():
    runs: list[str] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            runs.append(phase)

    gc.callbacks.append(count)
    try:
        with collector_paused():
            kept = [[i] for i in range(50 * gc.get_threshold()[0])]  # fifty times what starts a collection
            inside = len(runs)
        kept += [[i] for i in range(50 * gc.get_threshold()[0])]
        after = len(runs) - inside
    finally:
        gc.callbacks.remove(count)
    assert inside == 0
    assert after > 0


def test_a_cycle_made_while_paused_waits_for_the_collector():
    with collector_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        alive = weakref.ref(a)
        del a, b
        assert alive() is not None  # garbage, but nothing collects it automatically while paused
    gc.collect()
    assert alive() is None  # an ordinary cycle: the collector frees it once it runs


def test_the_wrapped_function_keeps_its_name_signature_and_result():
    seen = []

    def work(rows: list[int], *, scale: int = 2) -> int:
        """Sum, scaled."""
        seen.append(gc.isenabled())
        return sum(rows) * scale

    wrapped = with_collector_paused(work)
    assert wrapped([1, 2], scale=3) == 9
    assert seen == [False]
    assert gc.isenabled()
    assert wrapped.__name__ == "work" and wrapped.__doc__ == "Sum, scaled."
    assert inspect.signature(wrapped) == inspect.signature(work)  # Dagster reads an asset's parameters from it
