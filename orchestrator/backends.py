"""Where tasks run: ``serial`` (this process), ``process`` (a standard-library pool) or ``ray``.

All three run :func:`orchestrator.execute.run_task` and speak one small protocol to the
scheduler: ``submit(task, inputs) -> handle``, ``wait(handles) -> finished handles``,
``outcome(handle)``, ``payload(handle)`` (what a dependent task receives) and ``close(abort)``
(``abort``: stop at once, killing work in flight).
This is the only module that imports Ray (README, "Layout"), and only inside :class:`RayBackend`.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from .execute import FAULT_ENV, THREAD_ENV, Outcome, limit_threads, payload_of, run_task, warmup
from .plan import Task

__all__ = ["make_backend", "SerialBackend", "ProcessBackend", "RayBackend", "BACKENDS"]

BACKENDS = ("ray", "process", "serial")
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_AUTH_ENV = "RAY_AUTH_MODE"
#: Times Ray resubmits a task whose worker or node died (not a task that raised).
SYSTEM_RETRIES = 5


def _crash(task: Task, err: BaseException) -> Outcome:
    return Outcome(task.id, error=f"{type(err).__name__}: {err}",
                   traceback="".join(traceback.format_exception(err)))


class _Done:
    """A finished serial 'future'."""

    def __init__(self, outcome: Outcome):
        self.value = outcome


class SerialBackend:
    """Runs each task in the driver process when submitted. No parallelism, no extra processes."""

    name = "serial"
    max_in_flight = 1

    def __init__(self):
        self.workers = 1
        self._limits = None

    def start(self) -> None:
        self._limits = limit_threads()  # same single-thread BLAS as the pool and Ray workers
        warmup()

    def submit(self, task: Task, inputs: dict[str, Any]) -> _Done:
        return _Done(run_task(task, inputs))

    def wait(self, handles: list) -> list:
        return list(handles)

    def outcome(self, handle: _Done) -> Outcome:
        return handle.value

    def payload(self, handle: _Done) -> Any:
        return payload_of(handle.value)

    def close(self, abort: bool = False) -> None:
        if self._limits is not None:
            self._limits.restore_original_limits()


_worker_limits = None


def _init_pool_worker() -> None:
    global _worker_limits
    _worker_limits = limit_threads()  # kept alive for the worker's lifetime


class _Job:
    """One task on the process pool; survives the pool it was first sent to."""

    __slots__ = ("task", "inputs", "future", "lost")

    def __init__(self, task: Task, inputs: dict[str, Any]):
        self.task, self.inputs, self.future, self.lost = task, inputs, None, 0


def _broken(future: cf.Future) -> bool:
    return future.done() and not future.cancelled() and isinstance(future.exception(), BrokenProcessPool)


class ProcessBackend:
    """A ``concurrent.futures`` process pool (spawned workers: no fork after threads started).

    A worker that dies (the OOM killer's SIGKILL, a segfault) breaks a standard pool and fails
    everything in flight; here the pool is replaced and the tasks that were in flight are
    resubmitted, each at most :data:`SYSTEM_RETRIES` times (as Ray does for lost workers).
    """

    name = "process"

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self.max_in_flight = 2 * self.workers
        self.pool: cf.ProcessPoolExecutor | None = None
        self._jobs: set[_Job] = set()
        self.restarts = 0

    def _new_pool(self) -> None:
        for _ in range(SYSTEM_RETRIES + 1):
            self.pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                               initializer=_init_pool_worker)
            try:
                # One worker compiles and fills numba's cache; then every worker loads it, so no
                # task pays a worker's start-up inside the sweep.
                self.pool.submit(warmup).result()
                cf.wait([self.pool.submit(warmup, 0.2) for _ in range(self.workers)])
                return
            except BrokenProcessPool:  # killed while starting: another pool
                self.pool.shutdown(wait=False, cancel_futures=True)
        raise ChildProcessError(f"the worker processes of the pool died {SYSTEM_RETRIES + 1} times while "
                                "starting (out of memory?); nothing in flight was lost: rerun to resume")

    def start(self) -> None:
        os.environ.update({k: v for k, v in THREAD_ENV.items() if k not in os.environ})
        self._new_pool()

    def submit(self, task: Task, inputs: dict[str, Any]) -> _Job:
        job = _Job(task, inputs)
        self._jobs.add(job)
        try:
            job.future = self.pool.submit(run_task, task, inputs)
        except BrokenProcessPool as err:  # a worker died since the last wait: this job is lost too
            job.future = cf.Future()
            job.future.set_exception(err)
            self._replace_pool()
        return job

    def _replace_pool(self) -> None:
        """A worker died: kill what is left of the pool, start a new one, resubmit the lost
        (again if the new pool dies while they are being sent; each job at most SYSTEM_RETRIES)."""
        while True:
            # not done: in flight on the dead pool; cancelled: not yet resent when a new pool died
            lost = [job for job in self._jobs
                    if _broken(job.future) or not job.future.done() or job.future.cancelled()]
            retry = [job for job in lost if job.lost < SYSTEM_RETRIES]
            self._kill_workers()
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.restarts += 1
            print(f"rgsweep: a worker process died; {len(lost)} task(s) in flight, "
                  f"{len(retry)} resubmitted to a new pool", file=sys.stderr, flush=True)
            self._new_pool()
            for job in lost:
                job.lost += 1
            try:
                for job in retry:
                    job.future = self.pool.submit(run_task, job.task, job.inputs)
                return
            except BrokenProcessPool:
                continue

    def wait(self, handles: list) -> list:
        while True:
            by_future = {job.future: job for job in handles}
            done, _ = cf.wait(by_future, return_when=cf.FIRST_COMPLETED)
            finished = [by_future[f] for f in done]
            if any(_broken(job.future) and job.lost < SYSTEM_RETRIES for job in finished):
                self._replace_pool()
                # a resubmitted job has a new future, still running: not finished (taking its
                # outcome would block on it and fail it if the new pool died too)
                finished = [job for job in finished if job.future.done() and not _broken(job.future)]
            if finished:
                return finished

    def outcome(self, handle: _Job) -> Outcome:
        self._jobs.discard(handle)
        try:
            return handle.future.result()
        except BrokenProcessPool as err:
            return _crash(handle.task, RuntimeError(
                f"its worker process died {handle.lost} times ({err})"))
        except Exception as err:  # noqa: BLE001 - a crashed worker process is a task failure
            return _crash(handle.task, err)

    def payload(self, handle: _Job) -> Any:
        return payload_of(handle.future.result())

    def _kill_workers(self) -> None:
        processes = list((getattr(self.pool, "_processes", None) or {}).values())
        for proc in processes:
            if proc.is_alive():
                proc.kill()
        for proc in processes:
            proc.join(10)

    def close(self, abort: bool = False) -> None:
        """Shut the pool down; with ``abort`` (an interrupt, an error in the driver) the
        workers are killed at once instead of finishing their tasks."""
        if self.pool is None:
            return
        if abort:
            self._kill_workers()
        self.pool.shutdown(wait=not abort, cancel_futures=True)
        self.pool = None


@contextmanager
def _signals_pass_through():
    """Ray's blocking calls check for signals inside Cython and wrap an exception that a signal
    handler raised (the CLI's Stop on SIGTERM) in a SystemError; raise the handler's own."""
    try:
        yield
    except SystemError as err:
        cause = err.__cause__
        if cause is not None and not isinstance(cause, Exception):  # Stop, KeyboardInterrupt
            raise cause from None
        raise


@contextmanager
def _keep_sigterm_handler():
    """``ray.init`` installs its own SIGTERM handler in the driver (it logs a stack and exits
    with status 15); the driver's own (the CLI's stop: one line, exit 143) is put back."""
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if main and handler is not None:
            signal.signal(signal.SIGTERM, handler)


@contextmanager
def _environ(values: dict[str, str]):
    """os.environ with ``values`` set (over any existing value), restored on exit."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _ray_run(task: Task, dep_ids: tuple[str, ...], *dep_values: Any) -> tuple[Outcome, Any]:
    """Ray entry point: refs passed as top-level arguments arrive resolved (nested ones would not)."""
    outcome = run_task(task, dict(zip(dep_ids, dep_values)))
    # the payload travels once, as its own object; the driver only needs the encoded parts
    return dataclasses.replace(outcome, payload=None), payload_of(outcome)


class RayBackend:
    """Embedded local Ray on loopback (default) or a running cluster (``address``).

    Sample tasks return two objects: the outcome and the samples table, so a dependent
    training task receives the samples as an object ref straight from the object store.
    """

    name = "ray"
    #: Seconds between two looks at a joined cluster's CPU count (nodes come and go).
    RESIZE_EVERY_S = 5.0

    def __init__(self, workers: int | None = None, address: str | None = None):
        self.address = address
        self.workers = workers
        self._max_in_flight = 2 * (workers or os.cpu_count() or 1)
        # On a joined cluster without --workers the bound follows the cluster's CPUs: an
        # autoscaling cluster starts small, and a bound fixed at start would keep it small.
        self._follow_cluster = address is not None and workers is None
        self._sized_at = 0.0
        self._started_here = False
        self._tasks: dict[Any, Task] = {}
        self._payloads: dict[Any, Any] = {}

    @property
    def max_in_flight(self) -> int:
        """Tasks kept pending: twice the workers (Ray's ``limit_pending_tasks`` pattern)."""
        if self._follow_cluster and time.monotonic() - self._sized_at > self.RESIZE_EVERY_S:
            self._resize()
        return self._max_in_flight

    def _resize(self) -> None:
        import ray

        if ray.is_initialized():
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 0)))
            self._max_in_flight = 2 * self.workers
        self._sized_at = time.monotonic()

    def start(self) -> None:
        if self.address is None:
            # Ray binds its services to all interfaces unless this is "0" when ray is imported.
            os.environ.setdefault(_LOOPBACK_ENV, "0")
            # Token auth, as Ray's default for a new local cluster, but said explicitly: Ray then
            # skips its notice on every run (a user's own RAY_AUTH_MODE wins).
            os.environ.setdefault(_AUTH_ENV, "token")
        import ray

        env = dict(THREAD_ENV)
        if os.environ.get(FAULT_ENV):
            env[FAULT_ENV] = os.environ[FAULT_ENV]
        with _keep_sigterm_handler():
            self._init(ray, env)
        if self.workers is None:
            self._resize()
        # System failures (a worker process or a whole node lost) are retried by Ray; task
        # exceptions never reach Ray: run_task turns them into failure outcomes.
        self._run = ray.remote(num_cpus=1, max_retries=SYSTEM_RETRIES, num_returns=2)(_ray_run)
        warm = ray.remote(num_cpus=1)(warmup)
        with _signals_pass_through():
            ray.get(warm.remote())  # one worker compiles and fills numba's cache ...
            ray.get([warm.remote(0.2) for _ in range(min(self.workers, 64))])  # ... then all load it

    def _init(self, ray, env: dict[str, str]) -> None:
        if ray.is_initialized():  # a Ray this process already joined (a notebook, a test session)
            self._started_here = False
        elif self.address is None:
            # The embedded instance binds every service to loopback only.  Ray reads the switch
            # once, at import; if ray was imported before (a notebook), set the constant it read.
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False
            # The workers inherit the environment from the raylet, which inherits it from this
            # process. A runtime_env would instead make Ray start new workers for it, beside
            # the ones it prestarts at init, during the first seconds of the sweep.
            with _environ(env):
                ray.init(num_cpus=self.workers or os.cpu_count(), include_dashboard=False,
                         _node_ip_address="127.0.0.1", log_to_driver=False,
                         configure_logging=False)
            self._started_here = True
        else:
            ray.init(address=self.address, log_to_driver=False, runtime_env={"env_vars": env})
            self._started_here = True

    def submit(self, task: Task, inputs: dict[str, Any]) -> Any:
        dep_ids = tuple(inputs)
        ref, payload = self._run.remote(task, dep_ids, *(inputs[d] for d in dep_ids))
        self._tasks[ref] = task
        self._payloads[ref] = payload
        return ref

    def wait(self, handles: list) -> list:
        import ray

        with _signals_pass_through():
            done, _ = ray.wait(handles, num_returns=1)
        return done

    def outcome(self, handle: Any) -> Outcome:
        import ray

        task = self._tasks.pop(handle)
        try:
            result = ray.get(handle)
            if not result.ok or task.kind != "sample":
                self._payloads.pop(handle, None)
        except Exception as err:  # noqa: BLE001 - worker died, node lost, ...
            self._payloads.pop(handle, None)
            return _crash(task, err)
        return result

    def payload(self, handle: Any) -> Any:
        return self._payloads.pop(handle)

    def close(self, abort: bool = False) -> None:
        """Disconnect (and stop an embedded Ray); with ``abort``, tasks in flight on a joined
        cluster are cancelled first (an embedded Ray's workers end with it)."""
        import ray

        if abort and ray.is_initialized():
            for ref in list(self._tasks):
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - already finished or its node gone
                    pass
        if self._started_here and ray.is_initialized():
            ray.shutdown()


def make_backend(name: str, workers: int | None = None, address: str | None = None):
    """The backend called ``name`` (one of :data:`BACKENDS`)."""
    if name == "serial":
        return SerialBackend()
    if name == "process":
        return ProcessBackend(workers)
    if name == "ray":
        return RayBackend(workers, address)
    raise ValueError(f"--backend must be one of {' | '.join(BACKENDS)}, got {name!r}")
