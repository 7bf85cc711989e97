"""Run many independent measurements on a local process pool or a Dask cluster.

Every task is a pure function of its parameters (a module-level function and
picklable, hashable arguments), and results come back in the order the tasks
were given, so a figure's data are the same bytes whichever executor computed
them.  Dask is optional: it is imported only when a scheduler address is given.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from ..errors import ArgumentError, shown


@dataclasses.dataclass
class Progress:
    """Progress lines on stderr: what is being computed, n/total, elapsed time.

    Lines are written at most every ``interval`` seconds (and for the last task).
    """

    enabled: bool = True
    interval: float = 5.0
    stream: object = None

    def say(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream or sys.stderr, flush=True)

    def tracker(self, label: str, total: int) -> "_Tracker":
        return _Tracker(self, label, total)


class _Tracker:
    def __init__(self, progress: Progress, label: str, total: int):
        self.progress = progress
        self.label = label
        self.total = total
        self.done = 0
        self.start = time.perf_counter()
        self.last = -float("inf")
        progress.say(f"[{label}] {total} task(s)")

    def step(self) -> None:
        self.done += 1
        now = time.perf_counter()
        if self.done == self.total or now - self.last >= self.progress.interval:
            self.last = now
            elapsed = now - self.start
            left = elapsed / self.done * (self.total - self.done)
            self.progress.say(f"[{self.label}] {self.done}/{self.total} done, {elapsed:.1f} s elapsed"
                              + (f", ~{left:.0f} s left" if self.done < self.total else ""))


def default_workers() -> int:
    return os.cpu_count() or 1


def check_workers(workers) -> int:
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1024:
        raise ArgumentError(f"Argument 'workers' must be an integer from 1 to 1024, not {shown(workers)}")
    return workers


def run_tasks(func, params, *, workers: int | None = None, scheduler: str | None = None, label: str = "tasks",
              progress: Progress | None = None) -> list:
    """``[func(*p) for p in params]``, computed in parallel, in the order of ``params``.

    Parameters
    ----------
    func : callable
        A module-level function (picklable), pure: its result depends only on its arguments.
    params : sequence of tuple
        The argument tuples.
    workers : int, optional
        Local worker processes (default ``os.cpu_count()``); 1 runs in this process.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:port``) or a ``dask.distributed.Client``;
        the tasks then run on that cluster instead of locally.
    label : str
        Name in the progress lines.
    progress : Progress, optional

    Returns
    -------
    list
        The results, in the order of ``params``.
    """
    params = [tuple(p) for p in params]
    progress = progress or Progress(enabled=False)
    tracker = progress.tracker(label, len(params))
    if not params:
        return []
    if scheduler is not None:
        return _run_dask(func, params, scheduler, tracker)
    workers = check_workers(workers)
    if workers == 1 or len(params) == 1:
        results = []
        for p in params:
            results.append(func(*p))
            tracker.step()
        return results
    return _run_pool(func, params, min(workers, len(params)), tracker)


def check_scheduler(address) -> str:
    """A Dask scheduler address, ``[protocol://]host:port``."""
    import re

    if not isinstance(address, str) or not re.fullmatch(r"([a-z]+://)?\[?[\w.:-]*[\w\]]:\d{1,5}", address):
        raise ArgumentError(f"Argument 'scheduler' (--scheduler) must be a Dask scheduler address such as "
                            f"tcp://host:8786, not {shown(address)}")
    return address


def _run_pool(func, params, workers, tracker) -> list:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results = [None] * len(params)
    # 'spawn' gives each worker a clean interpreter: no state inherited from the caller (threads,
    # caches), so a task's result cannot depend on what ran before it in the parent.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        futures = {pool.submit(func, *p): i for i, p in enumerate(params)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            tracker.step()
    except BaseException:
        # The pool's own thread cancels the tasks not yet started.  Cancelling them from here raced with it
        # when the workers were stopped by the same signal (SIGTERM to the process group): it then marked
        # the cancelled tasks as failed and printed an InvalidStateError traceback (Python < 3.12).
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def _run_dask(func, params, scheduler, tracker) -> list:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ArgumentError(
            "Argument 'scheduler' needs Dask's distributed scheduler, which is not installed; "
            "pip install 'nbrnn[dask]' (or \"dask[distributed]\"), or drop --scheduler to use local processes"
        ) from None
    own = not isinstance(scheduler, Client)
    if own:
        check_scheduler(scheduler)
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, ValueError, TimeoutError) as exc:
            raise ArgumentError(f"Argument 'scheduler' ({scheduler!r}): no Dask scheduler answers there "
                                f"({type(exc).__name__}: {exc})") from None
    else:
        client = scheduler
    try:
        # pure=False: every task is submitted even if two have equal arguments, and keys never collide
        # with an earlier run's on a long-lived cluster.
        futures = [client.submit(func, *p, pure=False) for p in params]
        index = {f.key: i for i, f in enumerate(futures)}
        results = [None] * len(params)
        for future in as_completed(futures):
            results[index[future.key]] = future.result()
            tracker.step()
        return results
    finally:
        if own:
            client.close()
