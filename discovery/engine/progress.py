"""Progress bars per stage (rich), silent when stderr is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class _Task:
    def __init__(self, progress: Progress | None, task_id):
        self._progress = progress
        self._task_id = task_id

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task_id, n)


class StageProgress:
    def __init__(self, enabled: bool | None = None, console: Console | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        # Share the log handler's console so log lines print above the live bar.
        self.console = console or Console(stderr=True)

    @contextmanager
    def stage(self, description: str, total: int | None) -> Iterator[_Task]:
        if not self.enabled:
            yield _Task(None, None)
            return
        columns = (
            TextColumn("{task.description:<28}", markup=False),  # labels from configs
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console) as progress:
            task_id = progress.add_task(description, total=total)
            yield _Task(progress, task_id)
            if total is not None:
                progress.update(task_id, completed=total)
