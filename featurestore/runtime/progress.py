"""Progress of a long Spark step, fed by Spark's status tracker (stages, tasks done/total).

On a terminal a progress bar (tqdm) shows the tasks of the step's stages once the step has
run for a second, and goes away when it ends; log lines print above it. Off a terminal
(CI, Data Factory, spark-submit logs) one INFO line every 10 s says how far the step is.
A step shorter than that shows nothing either way.

    >>> with progress(spark, "scoring batch 2026-03-02"):
    ...     write_batch(...)
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0  # off a terminal: one line this often
BAR_AFTER_SECONDS = 1.0   # on a terminal: the bar appears once the step has run this long
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class StepProgress:
    """Where a step is: its stages seen so far and their tasks."""

    stages: int
    tasks_done: int
    tasks_total: int
    running_stage: int | None

    def text(self) -> str:
        """For example ``stage 7, 3/8 tasks of 2 stages``."""
        stage = f"stage {self.running_stage}, " if self.running_stage is not None else ""
        return f"{stage}{self.tasks_done}/{self.tasks_total} tasks of {self.stages} stage(s)"


class StageWatcher:
    """Follows the stages that run while a step runs (all of this application's active stages)."""

    def __init__(self, tracker: Any) -> None:
        self._tracker = tracker
        self._stages: dict[int, tuple[int, int]] = {}  # stage id -> (tasks done, tasks)

    def poll(self) -> StepProgress:
        """Read the active stages; a stage seen earlier and no longer active counts as done."""
        active = set()
        for stage_id in self._tracker.getActiveStageIds():
            info = self._tracker.getStageInfo(stage_id)
            if info is not None:
                active.add(stage_id)
                self._stages[stage_id] = (info.numCompletedTasks, info.numTasks)
        for stage_id, (_, total) in self._stages.items():
            if stage_id not in active:
                self._stages[stage_id] = (total, total)
        return StepProgress(len(self._stages), sum(d for d, _ in self._stages.values()),
                            sum(t for _, t in self._stages.values()), max(active) if active else None)


class _Reporter(threading.Thread):
    """Polls the watcher until stopped: a bar on a terminal, a line every 10 s off one."""

    def __init__(self, watcher: StageWatcher, step: str, on_terminal: bool) -> None:
        super().__init__(name=f"progress: {step}", daemon=True)
        self._watcher, self._step, self._on_terminal = watcher, step, on_terminal
        self._stopped = threading.Event()
        self._began = time.monotonic()
        self._bar: Any = None

    def run(self) -> None:
        next_line = self._began + HEARTBEAT_SECONDS
        while not self._stopped.wait(POLL_SECONDS):
            try:
                state = self._watcher.poll()
            except Exception:  # noqa: BLE001 - the session stopped under us: progress is not worth a failure
                logger.debug("progress of %s: status tracker unreadable", self._step, exc_info=True)
                return
            now = time.monotonic()
            if self._on_terminal and now - self._began >= BAR_AFTER_SECONDS:
                self._draw(state)
            elif not self._on_terminal and now >= next_line:
                logger.info("%s: %.0f s, %s", self._step, now - self._began, state.text())
                next_line = now + HEARTBEAT_SECONDS

    def _draw(self, state: StepProgress) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(desc=self._step, total=state.tasks_total, unit="task", leave=False,
                             file=sys.stderr, dynamic_ncols=True)
        self._bar.total = state.tasks_total
        self._bar.n = state.tasks_done
        self._bar.set_postfix_str(f"stage {state.running_stage}" if state.running_stage is not None else "",
                                  refresh=False)
        self._bar.refresh()

    def stop(self) -> None:
        self._stopped.set()
        self.join()
        if self._bar is not None:
            self._bar.close()


@contextlib.contextmanager
def progress(spark: SparkSession, step: str, on_terminal: bool | None = None) -> Iterator[None]:
    """Show the progress of ``step`` (Spark work in the block) while it runs.

    Args:
        spark: the session whose stages the step runs.
        step: what the step does, for example ``"writing customer_profile"``.
        on_terminal: draw a bar (True) or log lines (False); default: whether stderr is a terminal.
    """
    terminal = sys.stderr.isatty() if on_terminal is None else on_terminal
    reporter = _Reporter(StageWatcher(spark.sparkContext.statusTracker()), step, terminal)
    with contextlib.ExitStack() as stack:
        if terminal:
            from tqdm.contrib.logging import logging_redirect_tqdm

            stack.enter_context(logging_redirect_tqdm())  # log lines print above the bar
        reporter.start()
        try:
            yield
        finally:
            reporter.stop()
