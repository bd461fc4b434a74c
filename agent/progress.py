"""Progress of long work on stderr, shown only on a terminal (rich); for the CLI only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def byte_progress(label: str, total_bytes: int | None) -> Iterator[Callable[[int], None]]:
    """A transient bar for reading ``total_bytes`` (None: unknown); yields ``advance(n)``."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(label, total=total_bytes or None)
        yield lambda n: progress.advance(task, n)
