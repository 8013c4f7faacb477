"""What a task costs in core-seconds, predicted from its configuration alone (no numba, no Ray).

Every task is split into the phases its worker code marks (:mod:`contract.timing`): a sample
task's Monte Carlo (``mc``) and the rest; a training task's fit, partition function (exact or
AIS), measurements, spectra, alignment, RBM Gibbs sampling and transport; a flow task's
block-spin levels, stacked and pooled fits and the pooled RBM's flow. Each phase is a linear
model ``sum_f c_f X_f`` in a few *work features* X_f that follow from the configuration
(multiply-adds of the matrix products, sweeps, rows written, calls), with
coefficients c_f >= 0 fitted to measured phase CPU times by ``rgsweep bench sweep`` on this
machine (non-negative least squares on relative errors) and stored in ``cost_model.json`` beside
this module. The Monte Carlo feature is already in seconds (the sampler tables of
:mod:`contract.sampler_costs`), so its coefficient, one per sampler, is a correction factor.

The numbers are CPU seconds of one worker process (one BLAS thread): core-seconds. They do not
include starting Ray or the worker processes, or the driver's writes.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from contract.configs import lnz_method
from contract.constants import AIS_CHAINS, AIS_START_STEPS, N_REPLICAS, RBM_FLOW_CONFIGS, ais_max_steps, ais_runs
from contract.sampler_costs import (PILOT_MAX_FACTOR, PILOT_MIN, PILOT_TOL, choose_algorithm, sweep_ns,
                                    tau_sweeps)

from .plan import Task

__all__ = ["MODEL_PATH", "PHASE_MODEL", "features", "fit_features", "ais_features", "gibbs_features", "predict", "predict_phases", "load_model",
           "model_key", "sample_schedule", "checkpoint_count", "lnz_method", "CostModelError", "task_seconds"]

MODEL_PATH = Path(__file__).with_name("cost_model.json")
#: The training task's short model chains per checkpoint (workers.tasks.train.MODEL_F_STEPS).
MODEL_F_STEPS = 100

#: Which fitted model a measured phase of each kind belongs to (phases not listed: "rest").
PHASE_MODEL = {
    ("sample", "mc"): "mc",
    ("train", "fit"): "fit", ("flow", "stack_fit"): "fit", ("flow", "pool_fit"): "fit",
    ("train", "lnZ"): "lnZ", ("train", "measures"): "measures", ("train", "gibbs"): "gibbs",
    ("train", "transport"): "transport", ("flow", "pool_flow"): "pool_flow",
    ("train", "spectra"): "spectra", ("flow", "spectra"): "spectra",
    ("train", "alignment"): "alignment", ("flow", "alignment"): "alignment",
    ("flow", "blockspin"): "blockspin",
}


def model_key(kind: str, name: str) -> str:
    """The coefficient table of a phase model: "<kind>.rest" for a kind's unnamed phases, the
    model's own name otherwise (shared by the kinds that run the same code)."""
    return f"{kind}.rest" if name == "rest" else name


def sample_schedule(config) -> dict:
    """How a sample task will run, as the sampler decides it: the algorithm, chains, thin, and
    sweeps (sweep-equivalents for Wolff) of burn-in, pilot and measurement, from the tabulated
    tau_int where ``thin = "auto"`` (the run measures its own)."""
    L, T, n = config.L, config.T, config.samples
    algorithm = choose_algorithm(L, T, n) if config.algorithm == "auto" else config.algorithm
    chains = N_REPLICAS if algorithm == "multispin" else 1
    per_chain = -(-n // chains)
    pilot, thin = 0, config.thin
    if thin == "auto":
        tau = tau_sweeps(L, T, algorithm)
        first = max(PILOT_MIN, per_chain)
        pilot = first
        while pilot < PILOT_TOL * tau and pilot < PILOT_MAX_FACTOR * first:
            pilot *= 2
        thin = max(1, math.ceil(2.0 * tau))
    return {"algorithm": algorithm, "chains": chains, "thin": int(thin), "burn_in": config.burn_in,
            "pilot": pilot, "measure": per_chain * int(thin)}


def checkpoint_count(config) -> int:
    """Checkpoints a training task measures: the initialisation and every listed epoch after it
    (the spec always lists the last; workers.rbm.training calls back at exactly these)."""
    return len({0} | {c for c in config.checkpoints if 0 < c <= config.epochs})


def fit_features(epochs: int, n: int, n_v: int, n_h: int, k: int, batch: int, method: str = "pcd"
                 ) -> dict[str, float]:
    """Work of fitting one RBM: multiply-adds (positive phase, k Gibbs steps, the persistent
    chains' last hidden step, two outer products), elementwise work per unit, minibatch updates."""
    passes = 2 * k + 3 + (method == "pcd")
    return {"fit_madd": epochs * n * n_v * n_h * passes, "fit_units": epochs * n * (n_v + n_h) * k,
            "fit_batches": epochs * -(-n // batch), "fit_calls": 1.0}


def ais_features(calls: int, n_v: int, n_h: int, steps: int | None = None, chains: int = AIS_CHAINS
                 ) -> dict[str, float]:
    """Work of ``calls`` AIS estimates of ``steps`` annealing steps in all: multiply-adds,
    elementwise work per unit, steps, runs.

    The default is every run up to the step limit: what an estimate that never converges costs.
    It is a typical cost rather than a bound: a converged estimate adds a fresh run on its last
    schedule, and convergence often comes before the limit (six RBMs trained at (1024, 256) ran
    2,500 to 23,500 temperatures, 13,200 on average, against 15,500 priced; at (256, 64) 5,800 on
    average; at (4096, 1024), where the limit is 1,000, 1,500 or 2,500)."""
    if steps is None:
        steps = sum(ais_runs(AIS_START_STEPS, ais_max_steps(n_v, n_h, chains)))
    return {"ais_madd": calls * steps * chains * n_v * n_h, "ais_units": calls * steps * chains * (n_v + n_h),
            "ais_steps": calls * steps, "lnz_calls": calls}


def gibbs_features(draws: int, n_v: int, n_h: int) -> dict[str, float]:
    """Work of ``draws`` block-Gibbs steps of one chain each (both half-steps)."""
    return {"gibbs_madd": 2 * draws * n_v * n_h, "gibbs_units": draws * (n_v + n_h)}


def _spectra(n_v: int, n_h: int) -> dict[str, float]:
    small = min(n_v, n_h)
    return {"spectra_madd": n_v * n_h * small + small ** 3, "spectra_calls": 1.0}


def _alignment(L: int, n_h: int, blocks: int, n_test: int) -> dict[str, float]:
    return {"align_sites": blocks * n_h * L * L, "align_madd": n_test * L * L * n_h, "align_calls": 1.0}


def _add(total: dict, part: dict, times: float = 1.0) -> dict:
    for key, value in part.items():
        total[key] = total.get(key, 0.0) + times * value
    return total


def _train_samples(task: Task, by_id: dict[str, Task]) -> int:
    dep = by_id.get(task.deps[0]) if task.deps else None
    return dep.config.samples if dep is not None else 0


def features(task: Task, by_id: dict[str, Task]) -> dict[str, dict[str, float]]:
    """{model: {feature: X}} of one task; ``by_id`` gives its inputs' sizes."""
    c, N = task.config, task.L * task.L
    if task.kind == "sample":
        s = sample_schedule(c)
        sweeps = s["burn_in"] + s["pilot"] + s["measure"]
        stored_meas = s["measure"] * s["chains"]
        # seconds by the sampler tables, one coefficient per sampler (the tables time the kernels;
        # the per-sweep measuring and call overheads differ between them)
        seconds = sweeps * N * s["chains"] * sweep_ns(c.L, c.T, s["algorithm"]) * 1e-9
        return {"mc": {f"mc_{s['algorithm']}_seconds": seconds, "mc_sweeps": sweeps},
                "rest": {"sample_spins": c.samples * N, "sample_series": stored_meas, "sample_calls": 1.0}}
    if task.kind == "train":
        n = _train_samples(task, by_id)
        n_train = math.floor(n * (1.0 - c.held_out))
        n_test = n - n_train
        n_v, n_h, ck = c.n_visible, c.n_hidden, checkpoint_count(c)
        weights = n_v * n_h
        if lnz_method(c) == "exact":
            small = min(n_v, n_h, 62)
            lnz = {"exact_madd": ck * 2.0 ** small * small * max(n_v, n_h), "lnz_calls": ck}
        else:
            lnz = ais_features(ck, n_v, n_h)
        draws = c.gibbs_chains * c.gibbs_steps
        return {
            "fit": fit_features(c.epochs, n_train, n_v, n_h, c.k, c.batch_size, c.method),
            "lnZ": lnz,
            "measures": {"measure_madd": ck * (n_train + n_test + 2 * MODEL_F_STEPS * min(n_test, c.gibbs_chains))
                         * weights,
                         "measure_calls": ck},
            "spectra": _add({}, _spectra(n_v, n_h), ck),
            "alignment": _add({}, _alignment(task.L, n_h, len(c.block_sizes), n_test), ck),
            "gibbs": gibbs_features(draws, n_v, n_h),
            "transport": {"transport_madd": (ck - 1) * (n_v * n_h * n_h + n_h ** 3)},
            "rest": {"train_spins": n * N, "train_params": ck * weights, "train_calls": 1.0},
        }
    # flow: a levels part has its temperature's block-spin levels and a stack of RBMs; the pool
    # part one RBM on pool_samples configurations, followed from every temperature
    sizes = [by_id[tid].config.samples if tid in by_id else 0 for _, tid in c.sources]
    loaded = {"rest": {"flow_spins": sum(sizes) * N, "flow_calls": 1.0}}
    if c.part == "pool":  # v -> h -> v steps from each T's first configurations, each matched
        followed = sum(min(n, RBM_FLOW_CONFIGS) for n in sizes)
        return {**loaded, "fit": fit_features(c.epochs, min(c.pool_samples, sum(sizes)), N, c.rbm_flow_hidden,
                                              c.k, c.batch_size, c.method),
                "pool_flow": {"flow_madd": 2 * followed * c.rbm_flow_steps * N * c.rbm_flow_hidden,
                              "flow_matches": len(sizes) * (c.rbm_flow_steps + 1)}}
    (n,) = sizes
    sizes_in = [N] + list(c.layers)
    fit, spectra, align = {}, {}, {}
    for depth, (n_in, n_out) in enumerate(zip(sizes_in, sizes_in[1:]), start=1):
        _add(fit, fit_features(c.epochs, n, n_in, n_out, c.k, c.batch_size, c.method))
        _add(spectra, _spectra(n_in, n_out))
        _add(align, _alignment(task.L, n_out, len(c.block_sizes), n if depth == 1 else 0))
    return {**loaded, "fit": fit, "spectra": spectra, "alignment": align,
            "blockspin": {"block_spins": n * N, "block_calls": 1}}


@lru_cache(maxsize=8)
def _cached_model(path: str, mtime_ns: int) -> dict:  # re-read when the file changes
    return json.loads(Path(path).read_text())


class CostModelError(ValueError):
    """The cost model file is missing or not a cost model."""


def load_model(path: str | Path | None = None) -> dict:
    """The calibration: {"coefficients": {model: {feature: seconds per unit}}, "calibrated": ...}.
    Raises :class:`CostModelError` (one line) if it cannot be read."""
    path = str(path or MODEL_PATH)
    try:
        model = _cached_model(path, Path(path).stat().st_mtime_ns)
    except (OSError, ValueError) as err:
        raise CostModelError(f"no cost model at {path} ({err}); `rgsweep bench sweep --save-model "
                             f"{path}` makes one") from None
    if not isinstance(model, dict) or not isinstance(model.get("coefficients"), dict):
        raise CostModelError(f"{path} is not a cost model (no coefficients)")
    return model


def predict_phases(task: Task, by_id: dict[str, Task], model: dict | None = None) -> dict[str, float]:
    """Predicted CPU seconds of one task by model (phase group); a feature the calibration has
    no coefficient for counts 0."""
    coef = (model or load_model())["coefficients"]  # a feature without a coefficient counts 0
    out = {}
    for name, feats in features(task, by_id).items():
        kind_coef = coef.get(model_key(task.kind, name), {})
        out[name] = sum(kind_coef.get(f, 0.0) * x for f, x in feats.items())
    return out


def predict(task: Task, by_id: dict[str, Task], model: dict | None = None) -> float:
    """Predicted core-seconds of one task."""
    return sum(predict_phases(task, by_id, model).values())


def task_seconds(plan, model: dict | None = None) -> dict[str, float]:
    """Predicted core-seconds of every task of the plan (a :class:`~orchestrator.plan.Plan`), by id."""
    by_id, model = plan.by_id(), model or load_model()
    return {t.id: predict(t, by_id, model) for t in plan}
