"""The task entry points every backend runs: config in, plain table columns out.

Each runner takes ``(config, spawn_key, inputs)`` — the task's typed config
(:mod:`contract.configs`), the spawn key its random stream derives from
(``SeedSequence(config.seed, spawn_key=spawn_key)``) and its dependencies' outputs — and returns ``{table name: {column: values}}``.  The orchestrator adds
the task key columns and checks the columns against the explicit schemas.  Nothing here knows
about Ray, processes or files.  One module per kind: :mod:`.sample`, :mod:`.train`, :mod:`.flow`.
"""

from __future__ import annotations

import time

import numpy as np

from workers.ising.simulate import simulate
from workers.rbm.model import RBM
from workers.tasks.flow import flow_task
from workers.tasks.sample import sample_task, symmetrize
from workers.tasks.train import train_task

__all__ = ["RUNNERS", "sample_task", "train_task", "flow_task", "symmetrize", "warmup"]

RUNNERS = {"sample": sample_task, "train": train_task, "flow": flow_task}


def warmup() -> float:
    """Compile (or load from numba's on-disk cache) every kernel on a tiny problem; seconds taken."""
    t0 = time.perf_counter()
    seed = np.random.SeedSequence(0)
    for algorithm in ("metropolis", "wolff", "multispin"):
        simulate(4, 2.5, algorithm, 2, 2, 1, seed)
    V = np.where(np.random.default_rng(0).random((8, 4)) < 0.5, 1, -1).astype(np.int8)
    for method in ("cd", "pcd"):
        RBM(2, method=method, batch_size=4, epochs=1, random_state=0).fit(V).sample(
            2, 1, np.random.default_rng(0))
    return time.perf_counter() - t0
