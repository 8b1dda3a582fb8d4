"""Rich progress display for long CLI work, fed by plain callbacks so the logic stays UI-free."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

ProgressCallback = Callable[[str, int, int], None]


def make_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        redirect_stdout=False,  # a run's own output goes to its log file (runlog), not above the bar
        redirect_stderr=False,
    )


@contextmanager
def stage_progress(console: Console) -> Iterator[ProgressCallback]:
    """Yield ``progress(stage, done, total)``; each stage gets its own bar."""
    with make_progress(console) as bars:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=max(total, 1))
            bars.update(tasks[stage], completed=done, total=max(total, 1))

        yield update
