"""Long work of the dashboard (planning a scenario, sampling layouts) in threads of the server process.

DuckDB lets one process write the file, and the dashboard server is that process: a background callback of Dash's
Diskcache or Celery managers runs in another process and could not write, so long jobs run in a thread here and the
page polls them with a ``dcc.Interval``.

A job is a function ``fn(progress, cancel)``: it reports ``progress(phase, fraction)`` and checks the
``threading.Event`` ``cancel`` between steps. Jobs of one ``lane`` run one at a time per server (two planners
starting two regrids at once would only slow each other down and race for names).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

log = logging.getLogger("gridgov.dashboards")

State = Literal["running", "done", "failed", "cancelled"]
JobFn = Callable[[Callable[[str, float], None], threading.Event], Any]


class JobBusy(RuntimeError):
    """Another job of the same lane is still running; its id is ``job_id``."""

    def __init__(self, lane: str, job_id: str) -> None:
        super().__init__(f"a {lane} job ({job_id}) is already running")
        self.lane = lane
        self.job_id = job_id


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job.

    Attributes
    ----------
    job_id, lane
        Identity and lane of the job.
    state
        ``running``, ``done``, ``failed`` or ``cancelled``.
    phase, fraction
        The last progress report (fraction 0–1).
    result
        What ``fn`` returned (``done`` only).
    error
        The exception ``fn`` raised (``failed`` only).
    started, finished
        ``time.time()`` stamps; ``finished`` is None while running.
    """

    job_id: str
    lane: str
    state: State
    phase: str = ""
    fraction: float = 0.0
    result: Any = None
    error: BaseException | None = None
    started: float = 0.0
    finished: float | None = None

    @property
    def over(self) -> bool:
        """True once the job has stopped, whichever way."""
        return self.state != "running"


@dataclass
class _Job:
    status: JobStatus
    cancel: threading.Event = field(default_factory=threading.Event)


class JobRunner:
    """Runs jobs in daemon threads and keeps the last ``keep`` of them for polling.

    Parameters
    ----------
    keep
        Finished jobs remembered (older ones are forgotten; polling a forgotten id gives None).
    cancelled_types
        Exception types that mean "stopped through the cancel flag" rather than failure.

    Examples
    --------
    >>> runner = JobRunner()
    >>> job = runner.start(lambda progress, cancel: 42, lane="demo")
    >>> runner.wait(job, timeout=5).result
    42
    """

    def __init__(self, *, keep: int = 32, cancelled_types: tuple[type[BaseException], ...] = ()) -> None:
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._keep = keep
        self._cancelled_types = cancelled_types

    def start(self, fn: JobFn, *, lane: str) -> str:
        """Start ``fn(progress, cancel)`` in a new thread and return the job id.

        Raises
        ------
        JobBusy
            When a job of ``lane`` is still running.
        """
        with self._lock:
            busy = self._running_locked(lane)
            if busy is not None:
                raise JobBusy(lane, busy)
            job_id = f"{lane}-{next(self._ids)}"
            job = _Job(JobStatus(job_id=job_id, lane=lane, state="running", phase="start", started=time.time()))
            self._jobs[job_id] = job
            self._forget_locked()
        thread = threading.Thread(target=self._run, args=(job_id, fn), name=f"gridgov-job-{job_id}", daemon=True)
        thread.start()
        return job_id

    def _run(self, job_id: str, fn: JobFn) -> None:
        job = self._jobs[job_id]

        def progress(phase: str, fraction: float) -> None:
            with self._lock:
                if job.status.state == "running":
                    job.status = replace(job.status, phase=str(phase), fraction=min(max(float(fraction), 0.0), 1.0))

        try:
            result = fn(progress, job.cancel)
        except BaseException as exc:  # the thread must record every ending, or the page would poll for ever
            cancelled = job.cancel.is_set() and (not self._cancelled_types or isinstance(exc, self._cancelled_types))
            state: State = "cancelled" if cancelled else "failed"
            if state == "failed":
                log.warning("job %s failed: %s: %s", job_id, type(exc).__name__, exc)
            with self._lock:
                job.status = replace(job.status, state=state, error=exc, finished=time.time())
            return
        with self._lock:
            job.status = replace(job.status, state="done", result=result, fraction=1.0, phase="done",
                                 finished=time.time())
        log.info("job %s done in %.1f s", job_id, job.status.finished - job.status.started)  # type: ignore[operator]

    def get(self, job_id: str | None) -> JobStatus | None:
        """The job's current status, or None for an unknown (or forgotten) id."""
        with self._lock:
            job = self._jobs.get(job_id or "")
            return job.status if job else None

    def cancel(self, job_id: str | None) -> bool:
        """Ask a running job to stop (it stops at its next check); True when it was running."""
        with self._lock:
            job = self._jobs.get(job_id or "")
            if job is None or job.status.state != "running":
                return False
            job.cancel.set()
            return True

    def running(self, lane: str) -> str | None:
        """Id of the running job of ``lane``, if any."""
        with self._lock:
            return self._running_locked(lane)

    def wait(self, job_id: str, *, timeout: float = 60.0, poll: float = 0.02) -> JobStatus:
        """Block until the job stops (for scripts and tests; the page polls instead)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.get(job_id)
            if status is None:
                raise KeyError(job_id)
            if status.over:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still running after {timeout:g} s")
            time.sleep(poll)

    def _running_locked(self, lane: str) -> str | None:
        return next((j for j, job in self._jobs.items()
                     if job.status.lane == lane and job.status.state == "running"), None)

    def _forget_locked(self) -> None:
        finished = [j for j, job in self._jobs.items() if job.status.state != "running"]
        for job_id in finished[: max(len(self._jobs) - self._keep, 0)]:
            del self._jobs[job_id]


def _cancel_types() -> tuple[type[BaseException], ...]:
    from gridgov.planning import PlanCancelled

    return (PlanCancelled,)


#: The server's one runner (one process serves one app).
RUNNER = JobRunner(cancelled_types=_cancel_types())
