"""How much memory and disk a sweep's tasks need, and whether this machine has it.

Estimates are per task, from its configuration alone (no numba, no Ray): a worker process's
baseline (Python, numpy, numba's compiled kernels, pyarrow: ~230 MB measured) plus the arrays
the task holds at its peak.  The coefficients were fitted to the peak resident set size
(``VmHWM``) of single tasks run in fresh processes on the development machine: sampling tasks at
L = 16 ... 256 with 4,000-16,000 samples (within 5 %), training tasks at L = 16, 32, 64 with
n_h = N/4 and N (within 22 %, most within 11 %), flow tasks at L = 32 (6 temperatures) and
L = 64 (8 temperatures x 4,000 samples: 1.75 GB measured, 1.94 GB estimated).  They are estimates
for a refusal check, not a guarantee: an OS, a BLAS or a Python build can move them.

:func:`check` compares them with the machine before a run (README, "Resources"): a task larger
than the machine's memory, workers that together would not fit in the memory available, or
results larger than the free space of OUT's disk stop the run with the numbers, before anything
is written; ``--no-resource-check`` overrides.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from contract.constants import RBM_FLOW_CONFIGS

from .plan import Plan, Task

__all__ = ["Estimate", "Machine", "task_estimate", "machine", "check", "fmt_bytes"]

MB = 1e6
#: A worker process with numpy, numba's kernels and pyarrow loaded, before its task.
BASE_BYTES = 230 * MB
#: sampling: fixed overhead, and bytes per stored spin (int8 configurations, the packed copy,
#: the global-sign pass): fitted 2.1 at L = 128 and 256.
SAMPLE_FIXED, SAMPLE_PER_SPIN = 64 * MB, 2.2
#: training and flows: fixed overhead, bytes per training spin (the unpacked data, its held-out
#: copies and float64 observables), per weight (float32 training state, float64 checkpoints,
#: the permuted-site null, alignment and spectra work) and per weight per checkpoint kept.
TRAIN_FIXED, TRAIN_PER_SPIN, TRAIN_PER_WEIGHT, PER_WEIGHT_CHECKPOINT = 107 * MB, 11.7, 114.0, 8.0
#: a flow task's RBM in training: float32 weights, their gradient and velocity
FLOW_PER_WEIGHT = 16.0
#: Parquet bytes per stored spin (bit-packed, barely compressible), per sample of the series,
#: per weight per checkpoint (float32 plus Parquet overhead), and per task for the small tables.
DISK_PER_SPIN, DISK_PER_SAMPLE, DISK_PER_WEIGHT, DISK_FIXED = 1 / 8, 16.0, 5.0, 0.5 * MB


@dataclass(frozen=True)
class Estimate:
    memory_bytes: float  # peak resident set of the process that runs the task
    disk_bytes: float    # its committed Parquet parts


@dataclass(frozen=True)
class Machine:
    memory_total: float      # bytes of RAM
    memory_available: float  # bytes the kernel says can be had now without swapping
    cores: int
    disk_free: float | None  # free bytes on OUT's file system; None where unknown (object stores)


def _samples(task: Task, plan: dict[str, Task]) -> int:
    return plan[task.deps[0]].config.samples if task.deps and task.deps[0] in plan else 0


def task_estimate(task: Task, plan: dict[str, Task]) -> Estimate:
    """Peak memory and disk of one task; ``plan`` maps ids to tasks (for its inputs' sizes)."""
    c, N = task.config, task.L * task.L
    if task.kind == "sample":
        spins = c.samples * N
        return Estimate(BASE_BYTES + SAMPLE_FIXED + SAMPLE_PER_SPIN * spins,
                        DISK_FIXED + DISK_PER_SPIN * spins + DISK_PER_SAMPLE * c.samples)
    if task.kind == "train":
        weights, kept = c.n_visible * c.n_hidden, len(c.checkpoints)
        spins = _samples(task, plan) * N
        return Estimate(BASE_BYTES + TRAIN_FIXED + TRAIN_PER_SPIN * spins
                        + (TRAIN_PER_WEIGHT + PER_WEIGHT_CHECKPOINT * kept) * weights,
                        DISK_FIXED + DISK_PER_WEIGHT * kept * weights)
    # flow: a levels part trains on its temperature's samples; the pool on pool_samples of all
    # of L's, and keeps each temperature's first RBM_FLOW_CONFIGS to follow (unpacked one
    # temperature at a time: ~2 bytes per spin of the largest, passing). The weights in training
    # are small beside them (fitted on flow tasks at L = 32 and 64: 10.9 bytes per spin, weights ~0).
    # Every part also receives its dependencies' packed samples (1/8 byte per spin).
    sizes = [plan[tid].config.samples for _, tid in c.sources if tid in plan] or [0]
    packed = sum(plan[tid].config.samples for tid in task.deps if tid in plan) * N / 8
    if c.part == "pool":
        held = (min(c.pool_samples, sum(sizes)) + sum(min(n, RBM_FLOW_CONFIGS) for n in sizes)) * N
        return Estimate(BASE_BYTES + TRAIN_FIXED + TRAIN_PER_SPIN * held + 2 * max(sizes) * N + packed
                        + FLOW_PER_WEIGHT * N * c.rbm_flow_hidden, DISK_FIXED)
    layers = [a * b for a, b in zip([N] + list(c.layers), c.layers)]
    return Estimate(BASE_BYTES + TRAIN_FIXED + TRAIN_PER_SPIN * sum(sizes) * N + packed
                    + FLOW_PER_WEIGHT * max(layers), DISK_FIXED + DISK_PER_WEIGHT * sum(layers))


def _meminfo() -> dict[str, float]:
    info = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = float(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return info


def _free_space(path: str) -> float | None:
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:  # OUT may not exist yet
        probe = probe.parent
    try:
        return float(shutil.disk_usage(probe).free)
    except OSError:
        return None


def machine(out_root: str | None = None) -> Machine:
    """This machine's memory and cores, and the free space under ``out_root`` (a local path)."""
    info = _meminfo()
    total = info.get("MemTotal") or float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return Machine(memory_total=total, memory_available=info.get("MemAvailable", total),
                   cores=os.cpu_count() or 1,
                   disk_free=_free_space(out_root) if out_root is not None else None)


def fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n >= size or unit == "MiB":
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"  # pragma: no cover


def _where(task: Task) -> str:
    return f"{task.kind} task L={task.L}" + (f" T={task.T:g}" if task.T == task.T else " (pooled RBM)")


def check(plan: Plan, todo: list[Task], workers: int, here: Machine, memory: bool = True) -> list[str]:
    """One line per way in which running ``todo`` on ``workers`` processes of ``here`` would
    exhaust it: a task larger than the memory, concurrent tasks larger than the memory available,
    results larger than the free disk. Empty when it fits. ``memory=False`` checks the disk only
    (the tasks run on the hosts of a cluster, not here)."""
    by_id = plan.by_id()
    est = {t.id: task_estimate(t, by_id) for t in todo}
    problems: list[str] = []
    if not todo:
        return problems
    big = max(todo, key=lambda t: est[t.id].memory_bytes)
    peak = est[big.id].memory_bytes
    if memory and peak > here.memory_total:
        problems.append(f"the {_where(big)} needs about {fmt_bytes(peak)} of memory, more than this "
                        f"machine's {fmt_bytes(here.memory_total)}: make it smaller (sampling.samples, "
                        "rbm.n_hidden, lattice_sizes) or run it on a larger machine")
    elif memory:
        sizes = sorted((e.memory_bytes for e in est.values()), reverse=True)
        together = sum(sizes[:workers])
        if workers > 1 and together > here.memory_available:
            fit = max(1, sum(1 for k in range(1, workers + 1) if sum(sizes[:k]) <= here.memory_available))
            problems.append(f"{workers} workers running the largest tasks at once need about "
                            f"{fmt_bytes(together)} of memory, more than the "
                            f"{fmt_bytes(here.memory_available)} available: use --workers {fit}")
    disk = sum(e.disk_bytes for e in est.values())
    if here.disk_free is not None and disk > here.disk_free:
        problems.append(f"the results need about {fmt_bytes(disk)} of disk, more than the "
                        f"{fmt_bytes(here.disk_free)} free for OUT: free space or choose another --out")
    return problems
