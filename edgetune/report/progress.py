"""One progress bar style for all long work: description, bar, count, elapsed and ETA."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def progress_bar(console: Any, description: str, total: int) -> Iterator[Any]:
    """Yields `advance(step_description=None)`; the bar goes to `console` (stderr under --json)."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
    ) as prog:
        task = prog.add_task(description, total=total)

        def advance(what: str | None = None) -> None:
            prog.update(task, advance=1, description=f"{description} {what}" if what else description)

        yield advance
