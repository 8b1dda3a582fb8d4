"""Python's cyclic garbage collector paused around work that builds millions of small objects.

A next-best-action day makes a list of rules per person × action (a million lists), the notes a tuple per
attribute: each full collection the allocations trigger walks every live object, so the collector cost more
than the work (about a quarter of the decisioning step at 100k people, docs/DECISIONS.md "Performance").
Reference counting still frees whatever is not in a cycle while paused; the cycles wait for the collector's next
automatic run after the block. Not a full collection at the block's end: in a process the size of a Dagster run
that costs a quarter of a second a call (a unit test calling the id log 80 times took 22 s with it, 2 s without).
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic cyclic collection inside the block (nested blocks too); automatic again after it."""
    if not gc.isenabled():  # already paused by an enclosing block (or by the embedding process): leave it so
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def with_collector_paused(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run inside ``collector_paused`` (its name, signature and docstring kept: Dagster reads them)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with collector_paused():
            return fn(*args, **kwargs)

    return wrapper
