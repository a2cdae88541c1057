"""The calendar series, kept current as time passes.

One small task recomputes every calendar's state each second and stores its
section anew only when a value changed, so the ``/metrics`` body changes at session
boundaries and reloads, not every second (and the targets' part of it not even then).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping

from .calendars import ALWAYS_CALENDAR, Calendar
from .catalogue import calendar as M
from .logs import log_change
from .model import ALWAYS
from .probe import Sample
from .redact import error_text
from .render import render
from .snapshot import SnapshotStore

PERIOD_SECONDS = 1.0
SECTION = "calendars"
"""The store section of the calendar series."""

TargetCalendar = tuple[str, str, str]
"""(kind, target, calendar)."""


def calendar_samples(
    calendars: Iterable[Calendar], targets: Iterable[TargetCalendar], now: float
) -> list[Sample]:
    """Every calendar's state at ``now`` and which calendar each target follows."""
    out: list[Sample] = []
    for cal in calendars:
        state = cal.state(now)
        labels = (cal.name,)
        out.append(Sample(M.OPEN, labels, 1.0 if state.open else 0.0))
        if state.session_open is not None:
            out.append(Sample(M.SESSION_OPEN, labels, state.session_open))
        if state.session_close is not None:
            out.append(Sample(M.SESSION_CLOSE, labels, state.session_close))
        out.append(Sample(M.WARMUP, labels, cal.warmup))
    out.extend(Sample(M.TARGET_CALENDAR, t, 1.0) for t in targets)
    return out


class CalendarRefresher:
    """Owns the calendar snapshot: recomputed every PERIOD_SECONDS by one task."""

    def __init__(
        self,
        store: SnapshotStore,
        now: Callable[[], float] = time.time,
        period: float = PERIOD_SECONDS,
    ) -> None:
        self.store = store
        self.now = now
        self.period = period
        self.calendars: Mapping[str, Calendar] = {ALWAYS: ALWAYS_CALENDAR}
        self.targets: tuple[TargetCalendar, ...] = ()
        self._text: Mapping[str, str] | None = None
        self._error: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def configure(
        self, calendars: Mapping[str, Calendar], targets: Iterable[TargetCalendar]
    ) -> None:
        """Follow these calendars and targets from now on; start the task if needed.
        Session tables are built in a thread (an exchange calendar takes a moment)."""
        now = self.now()
        # a calendar that fails here fails again in refresh(), which logs it
        await asyncio.gather(
            *(asyncio.to_thread(c.prepare, now) for c in calendars.values()),
            return_exceptions=True,
        )
        self.calendars = dict(calendars)
        self.targets = tuple(sorted(targets))
        self.refresh()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="calendars")

    def refresh(self) -> bool:
        """Recompute; store a snapshot only if something changed. True if it did."""
        try:
            samples = calendar_samples(self.calendars.values(), self.targets, self.now())
        except Exception as exc:  # a broken calendar keeps the last good series
            self._note(error_text(exc))
            return False
        self._note(None)
        text = render(samples)
        if text == self._text:
            return False
        self._text = text
        self.store.put_section(SECTION, text)
        return True

    def _note(self, error: str | None) -> None:
        messages = ("calendar computation failed", "calendar computation recovered")
        log_change(self._error, error, messages, {"task": "calendars"}, error=error)
        self._error = error

    async def _loop(self) -> None:
        while True:
            now = self.now()
            await asyncio.sleep(self.period - now % self.period + 0.001)  # just past the tick
            self.refresh()

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The refresh task, once started."""
        return self._task

    async def stop(self) -> None:
        """Cancel the task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
