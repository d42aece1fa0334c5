"""The dashboard's job runner: jobs in threads with progress, cancel, errors and one job per lane."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from dashboards.jobs import RUNNER, JobBusy, JobRunner
from gridgov.planning import PlanCancelled


def test_result_and_progress() -> None:
    runner = JobRunner()
    gate = threading.Event()

    def work(progress: Any, cancel: threading.Event) -> int:
        progress("cut", 0.5)
        gate.wait(5)
        return 7

    job = runner.start(work, lane="plan")
    deadline = time.monotonic() + 5
    while (status := runner.get(job)) and status.phase != "cut" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert status is not None and status.state == "running" and status.fraction == 0.5 and not status.over
    assert runner.running("plan") == job
    gate.set()
    done = runner.wait(job, timeout=5)
    assert done.state == "done" and done.result == 7 and done.fraction == 1.0 and done.finished is not None
    assert runner.running("plan") is None


def test_one_job_per_lane() -> None:
    runner = JobRunner()
    gate = threading.Event()
    first = runner.start(lambda progress, cancel: gate.wait(5), lane="plan")
    with pytest.raises(JobBusy) as busy:
        runner.start(lambda progress, cancel: 1, lane="plan")
    assert busy.value.job_id == first
    other = runner.start(lambda progress, cancel: 2, lane="outlier")  # another lane runs alongside
    assert runner.wait(other, timeout=5).result == 2
    gate.set()
    runner.wait(first, timeout=5)
    assert runner.wait(runner.start(lambda progress, cancel: 3, lane="plan"), timeout=5).result == 3


def test_cancel_stops_at_the_next_check() -> None:
    runner = JobRunner(cancelled_types=(PlanCancelled,))
    started = threading.Event()

    def work(progress: Any, cancel: threading.Event) -> None:
        started.set()
        while not cancel.wait(0.01):
            progress("sample", 0.1)
        raise PlanCancelled("cancelled")

    job = runner.start(work, lane="outlier")
    assert started.wait(5)
    assert runner.cancel(job)
    status = runner.wait(job, timeout=5)
    assert status.state == "cancelled" and isinstance(status.error, PlanCancelled)
    assert not runner.cancel(job), "a stopped job cannot be cancelled again"
    assert not runner.cancel("nope") and runner.get("nope") is None


def test_failure_keeps_the_exception() -> None:
    runner = JobRunner()

    def work(progress: Any, cancel: threading.Event) -> None:
        raise ValueError("bad input")

    status = runner.wait(runner.start(work, lane="plan"), timeout=5)
    assert status.state == "failed" and isinstance(status.error, ValueError) and str(status.error) == "bad input"


def test_an_error_after_cancel_of_another_kind_is_a_failure() -> None:
    runner = JobRunner(cancelled_types=(PlanCancelled,))

    def work(progress: Any, cancel: threading.Event) -> None:
        cancel.wait(5)
        raise RuntimeError("broke while stopping")

    job = runner.start(work, lane="plan")
    runner.cancel(job)
    assert runner.wait(job, timeout=5).state == "failed"


def test_old_jobs_are_forgotten() -> None:
    runner = JobRunner(keep=3)
    jobs = [runner.start(lambda progress, cancel: 0, lane="plan") for _ in range(1)]
    runner.wait(jobs[0], timeout=5)
    for _ in range(5):
        jobs.append(job := runner.start(lambda progress, cancel: 0, lane="plan"))
        runner.wait(job, timeout=5)
    assert runner.get(jobs[0]) is None and runner.get(jobs[-1]) is not None


def test_server_runner_treats_plan_cancelled_as_cancel() -> None:
    def work(progress: Any, cancel: threading.Event) -> None:
        cancel.wait(5)
        raise PlanCancelled("stopped")

    job = RUNNER.start(work, lane="test-lane")
    RUNNER.cancel(job)
    assert RUNNER.wait(job, timeout=5).state == "cancelled"


def test_regrid_passes_cancel_to_the_planner(tiny_store: Any) -> None:
    from gridgov import regrid

    stop = threading.Event()
    stop.set()
    before = len(tiny_store.layouts())
    with pytest.raises(PlanCancelled):
        regrid.regrid(tiny_store, name="never", n_grids=2, tolerance=0.5, cancel=stop)
    assert len(tiny_store.layouts()) == before, "a cancelled run saves nothing"
