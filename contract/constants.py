"""Physical constants and versions that every layer must agree on.

J = k_B = 1 throughout (docs/conventions.md). A task's id hashes its config with
:data:`contract.schemas.SCHEMA_VERSION` and, per kind, :data:`CODE_VERSIONS`.
"""

import math

__all__ = ["TC", "CODE_VERSIONS", "AIS_VERSION", "AIS_CHAINS", "AIS_START_STEPS", "AIS_MAX_STEPS", "AIS_MAX_MADD", "ais_max_steps", "ais_runs", "RBM_FLOW_CONFIGS", "ALGORITHMS", "CHECKERBOARD", "METHODS", "LOG_PARTITION", "LR_SCHEDULES",
           "RBM_INITS", "N_REPLICAS"]

#: Onsager's critical temperature 2 / ln(1 + sqrt 2) of the square-lattice Ising model.
TC = 2.0 / math.log(1.0 + math.sqrt(2.0))

#: Independent chains the multi-spin sampler runs at once, one per bit of a 64-bit word.
N_REPLICAS = 64
#: Configurations per temperature the pooled RBM's flow follows, v -> h -> v (the first stored).
RBM_FLOW_CONFIGS = 500

#: The samplers, training methods, partition-function methods and learning-rate schedules.
ALGORITHMS = ("metropolis", "wolff", "multispin", "auto")
CHECKERBOARD = ("metropolis", "multispin")  # samplers that need the two-colour checkerboard (even L)
METHODS = ("cd", "pcd")
LOG_PARTITION = ("auto", "exact", "ais")
LR_SCHEDULES = ("constant", "linear", "inverse")
#: How an RBM's weights start: i.i.d. Gaussian, or each hidden unit also anchored on one site.
RBM_INITS = ("gaussian", "site")

#: Version of the code that computes each kind of task, bumped when that code's results change
#: (not just their format: that is SCHEMA_VERSION), so new results never mix with old ones under
#: one id. Version 1 is left out of the hash, which keeps the ids made before versioning.
#: train and flow 2: fused float32 Gibbs kernels with their own random stream (workers.rbm.kernels).
#: sample 2: stored configurations get a fair global sign (``symmetrize``).
#: train and flow 3: centered PCD with global-flip moves, KL and H_eff errors, permuted nulls.
#: train 4: the ``init`` setting (site-anchored starts) and the new "auto" learning rate.
#: flow 4: one task per part (levels per temperature, the pooled RBM on a subsample), not per L.
CODE_VERSIONS = {"sample": 2, "train": 4, "flow": 4}
#: Version of the AIS estimator of ln Z_RBM, also hashed into the id of a training task that uses
#: it (:func:`contract.configs.task_id`), so a new estimator recomputes only those tasks.
AIS_VERSION = 2
#: AIS (workers.rbm.ais): chains per run, the first run's steps, the most steps of one run, and
#: the most multiply-adds of one run (chains x steps x n_visible x n_hidden), which caps the
#: steps of large RBMs: 1,000 at (4096, 1024), 4,000 at (1024, 1024), 8,000 at an eighth of
#: (4096, 1024) and below.
AIS_CHAINS, AIS_START_STEPS, AIS_MAX_STEPS = 32, 500, 8000
AIS_MAX_MADD = 32 * 1000 * 4096 * 1024


def ais_max_steps(n_visible: int, n_hidden: int, chains: int = AIS_CHAINS) -> int:
    """The most steps of one AIS run of an (n_visible, n_hidden) RBM: :data:`AIS_MAX_STEPS`, or
    fewer where :data:`AIS_MAX_MADD` binds, but never fewer than two runs' worth."""
    return max(2 * AIS_START_STEPS, min(AIS_MAX_STEPS, AIS_MAX_MADD // (chains * n_visible * n_hidden)))


def ais_runs(start_steps: int = AIS_START_STEPS, max_steps: int = AIS_MAX_STEPS) -> list[int]:
    """The steps of every run AIS makes when none converges (start, 2 start, ... <= max_steps)."""
    runs = [start_steps]
    while 2 * runs[-1] <= max_steps:
        runs.append(2 * runs[-1])
    return runs
