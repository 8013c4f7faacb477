"""Sweep suite: calibrate the cost model (``orchestrator/cost_model.json``) by measurement, and
check its predictions against measured runs.

The calibration runs a fixed design of small sweeps (each sampler at L = 8 ... 64; RBMs with
exact and AIS partition functions at L = 8 ... 32; a flow task) on the process backend with
every core busy, as a sweep runs, reads every task's recorded phase CPU times from its manifest,
and measures the training, AIS and Gibbs phases directly at the paper's largest sizes (one copy
per core at once). It fits each phase model's coefficients by non-negative least squares on
*relative* residuals (every task counts alike, whatever its size). Run it on an otherwise idle
machine: CPU seconds grow when other work shares the caches and memory bandwidth. Records: per kind, predicted / measured core-seconds of the calibration
design under the stored model and under the fresh fit, and of every ``--measured`` folder.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import tempfile

import numpy as np

from .common import note, record

__all__ = ["DESIGN", "calibrate", "fit_model", "suite_sweep"]

_RBM = {"epochs": 10, "checkpoints": [0, 5, 10], "seeds": [0]}

#: The calibration design: (name, spec). Spans the features of every phase model; about four
#: minutes on one core here (``quick``: the first two, shrunk).
DESIGN = [
    ("metropolis", {"lattice_sizes": [8, 16, 32, 64], "temperatures": [2.269185, 2.6, 3.2],
                    "sampling": {"algorithm": "metropolis", "burn_in": 500, "samples": 1000, "thin": "auto"}}),
    ("multispin", {"lattice_sizes": [16, 32, 64], "temperatures": [2.269185, 3.0],
                   "sampling": {"algorithm": "multispin", "burn_in": 500, "samples": 4000, "thin": "auto"}}),
    ("wolff", {"lattice_sizes": [16, 32, 64], "temperatures": [1.8, 2.269185, 3.0],
               "sampling": {"algorithm": "wolff", "burn_in": 200, "samples": 2000, "thin": 2}}),
    ("rbm", {"lattice_sizes": [8, 16], "temperatures": [2.269185, 3.0],
             "sampling": {"algorithm": "auto", "burn_in": 500, "samples": 2000, "thin": "auto"},
             "rbm": {"n_hidden": [16, "N/4"], **_RBM}}),
    ("rbm-large", {"lattice_sizes": [32], "temperatures": [2.6],
                   "sampling": {"algorithm": "auto", "burn_in": 500, "samples": 2000, "thin": "auto"},
                   "rbm": {"n_hidden": [16, "N/4"], "epochs": 4, "checkpoints": [0, 4], "seeds": [0]}}),
    ("flow", {"lattice_sizes": [8, 16], "temperatures": [2.0, 2.269185, 2.6],
              "sampling": {"algorithm": "auto", "burn_in": 500, "samples": 1000, "thin": "auto"},
              "rg_flow": {"block": 2, "layers": ["N/4", "N/16"], "rbm_flow_steps": 5, "epochs": 5,
                          "lattice_sizes": [8, 16]}}),
    ("flow-large", {"lattice_sizes": [16, 32], "temperatures": [2.1, 2.4],
                    "sampling": {"algorithm": "auto", "burn_in": 500, "samples": 2000, "thin": "auto"},
                    "rg_flow": {"block": 2, "layers": ["N/4"], "rbm_flow_steps": 10, "epochs": 2,
                                "lattice_sizes": [32]}}),
]


def _spec(name: str, body: dict, quick: bool):
    from orchestrator.spec import parse_spec

    raw = {"sweep": {"name": f"calibrate-{name}", "seed": 7, "lattice_sizes": body["lattice_sizes"],
                     "temperatures": body["temperatures"]}, "sampling": dict(body["sampling"])}
    for section in ("rbm", "rg_flow"):
        if section in body:
            raw[section] = dict(body[section])
    if quick:
        raw["sweep"]["lattice_sizes"] = [L for L in body["lattice_sizes"] if L <= 16]
        raw["sampling"]["samples"] = min(raw["sampling"]["samples"], 500)
    return parse_spec(raw)


def calibrate(root: str, quick: bool = False, walls: dict | None = None) -> list:
    """Run the design under ``root`` on every core; the measured rows of every task (and, into
    ``walls``, each design sweep's end-to-end wall seconds)."""
    from orchestrator.forecast import measured_costs
    from orchestrator.runner import run_sweep

    rows = []
    design = DESIGN[:2] if quick else DESIGN
    for name, body in design:
        out = os.path.join(root, name)
        summary = run_sweep(_spec(name, body, quick), out, backend="process", workers=os.cpu_count(), check=False)
        if walls is not None:
            walls[name] = summary.wall_s
        rows += measured_costs(out)
    return rows


def _forecast_records(model: dict) -> list[dict]:
    """The shipped specs as the model predicts them: core-hours, critical path, wall time on 2
    and 64 workers (the figures the main job's targets are about)."""
    from pathlib import Path

    from orchestrator.forecast import forecast
    from orchestrator.plan import make_plan
    from orchestrator.spec import load_spec

    out = []
    root = Path(__file__).resolve().parents[1] / "sweeps"
    for path in sorted(root.glob("*.toml")):
        f = forecast(make_plan(load_spec(path)), [2, 64], model=model)
        params = {"set": f"{path.stem}, forecast"}
        out += [record("sweep", "rgsweep", params, "core_hours", "h", [f["core_hours"]]),
                record("sweep", "rgsweep", params, "critical_path", "s", [f["critical_path_s"]]),
                record("sweep", "rgsweep", params, "wall_2_workers", "s", [f["predicted_wall_s"]["2"]]),
                record("sweep", "rgsweep", params, "wall_64_workers", "s", [f["predicted_wall_s"]["64"]])]
    return out


#: Phases measured directly at the paper's largest sizes, where a whole task would take too long:
#: (n_visible, n_hidden, fit samples for one epoch, AIS inverse temperatures, Gibbs steps of 100 chains).
LARGE = [(4096, 1024, 2000, 200, 100), (4096, 64, 4000, 800, 400), (1024, 1024, 2000, 200, 100)]
QUICK_LARGE = [(256, 64, 500, 20, 20)]


def _large_rows(quick: bool) -> list[tuple[str, dict, float]]:
    """:func:`_measure_large` in one process per core at once; each row's mean over them."""
    from concurrent.futures import ProcessPoolExecutor

    import multiprocessing

    copies = os.cpu_count() or 1
    with ProcessPoolExecutor(copies, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = list(pool.map(_measure_large, [quick] * copies))
    return [(model, feats, float(np.mean([run[i][2] for run in runs])))
            for i, (model, feats, _) in enumerate(runs[0])]


def _measure_large(quick: bool) -> list[tuple[str, dict, float]]:
    """(phase model, features, CPU seconds) of one training epoch, one AIS run of a fixed number of
    temperatures, and Gibbs sampling at each size of :data:`LARGE`, with the default recipe."""
    import time

    from orchestrator.execute import limit_threads

    limit_threads()
    from orchestrator.costs import ais_features, fit_features, gibbs_features
    from orchestrator.plan import make_plan
    from orchestrator.spec import parse_spec
    from workers.rbm.model import RBM
    from workers.rbm.partition import log_partition_ais
    from workers.tasks.train import RBM_SETTINGS

    rows = []
    for n_v, n_h, n, betas, steps in (QUICK_LARGE if quick else LARGE):
        L = int(round(n_v ** 0.5))
        spec = parse_spec({"sweep": {"name": "large", "seed": 1, "lattice_sizes": [L], "temperatures": [2.5]},
                           "sampling": {"samples": n}, "rbm": {"n_hidden": [n_h], "epochs": 1}})
        cfg = next(t.config for t in make_plan(spec) if t.kind == "train")
        rng = np.random.default_rng(1)
        V = np.where(rng.random((n, n_v)) < 0.5, -1, 1).astype(np.int8)
        rbm = RBM(n_hidden=n_h, random_state=1, **{k: getattr(cfg, k) for k in RBM_SETTINGS})
        t0 = time.process_time()
        rbm.fit(V)
        rows.append(("fit", fit_features(1, n, n_v, n_h, cfg.k, cfg.batch_size), time.process_time() - t0))
        t0 = time.process_time()
        # one run of a fixed length (start = limit): the features are exact
        log_partition_ais(rbm.W_, rbm.a_, rbm.b_, rng, data=V, start_steps=betas, max_steps=betas)
        rows.append(("lnZ", ais_features(1, n_v, n_h, steps=betas), time.process_time() - t0))
        t0 = time.process_time()
        rbm.sample(100, steps, rng, init=V[:100], flip_moves=True)
        rows.append(("gibbs", gibbs_features(100 * steps, n_v, n_h), time.process_time() - t0))
    return rows


def _phase_targets(task, cost) -> dict[str, float]:
    """Measured CPU seconds per phase model of one task (unlisted phases: the kind's "rest")."""
    from orchestrator.costs import PHASE_MODEL, model_key

    out: dict[str, float] = {}
    for phase, seconds in cost.get("phases", {}).items():
        name = model_key(task.kind, PHASE_MODEL.get((task.kind, phase), "rest"))
        out[name] = out.get(name, 0.0) + seconds
    return out


def fit_model(rows, direct=()) -> dict:
    """Coefficients per phase model, fitted to measured task rows (:func:`calibrate`) and
    directly measured phases (``direct``: (model, features, seconds))."""
    from scipy.optimize import nnls

    from orchestrator.costs import features, lnz_method, model_key

    samples: dict[str, list[tuple[dict, float]]] = {}
    for task, cost, by_id in rows:
        targets = _phase_targets(task, cost)
        for name, feats in features(task, by_id).items():
            key = model_key(task.kind, name)
            if name == "lnZ" and lnz_method(task.config) == "ais":
                # the steps an AIS estimate runs are decided by its convergence, not known from
                # the configuration (the features price the most it can run): its coefficients
                # come from the fixed-length runs measured directly (``direct``)
                continue
            samples.setdefault(key, []).append((feats, targets.get(key, 0.0)))
    for key, feats, seconds in direct:
        samples.setdefault(key, []).append((feats, seconds))
    coefficients = {}
    for key, data in sorted(samples.items()):
        names = sorted({f for feats, _ in data for f in feats})
        X = np.array([[feats.get(f, 0.0) for f in names] for feats, _ in data])
        y = np.array([t for _, t in data])
        scale = np.where(X.max(axis=0) > 0, X.max(axis=0), 1.0)  # conditioning
        weight = 1.0 / np.maximum(y, 1e-3)  # relative residuals; a 1 ms floor
        c, _ = nnls((X / scale) * weight[:, None], y * weight)
        coefficients[key] = {f: float(v / s) for f, v, s in zip(names, c, scale)}
    return {"coefficients": coefficients,
            "calibrated": {"at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                           "machine": platform.processor() or platform.machine(),
                           "cpus": os.cpu_count(), "tasks": len(rows)}}


def _records(label: str, table: dict) -> list[dict]:
    out = []
    for kind, e in sorted(table.items()):
        params = {"set": label, "kind": kind, "tasks": e["tasks"]}
        out.append(record("sweep", "rgsweep", params, "measured_core_s", "s", [e["measured_s"]]))
        out.append(record("sweep", "rgsweep", params, "predicted_core_s", "s", [e["predicted_s"]]))
        out.append(record("sweep", "rgsweep", params, "predicted_over_measured", "x", [e["ratio"]]))
    return out


def suite_sweep(quick: bool, save_model: str | None = None, measured: list[str] = ()) -> list[dict]:
    """Calibrate; compare the stored and the fresh model on the design and on ``measured`` runs."""
    from orchestrator.costs import MODEL_PATH, CostModelError, load_model
    from orchestrator.forecast import compare, measured_costs

    runs = {out: measured_costs(out) for out in measured}  # a wrong folder fails before the work
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rgsweep-calibrate-") as root:
        rows = calibrate(root, quick, walls)
    fresh = fit_model(rows, _large_rows(quick))
    if save_model and quick:
        note("--quick: the shrunk design does not cover every phase; the cost model is not saved")
    elif save_model:
        with open(save_model + ".tmp", "w") as f:
            json.dump(fresh, f, indent=1, sort_keys=True)
        os.replace(save_model + ".tmp", save_model)
        note(f"cost model written to {save_model}")
    records = _records("design, fresh fit", compare(rows, fresh))
    cores = os.cpu_count() or 1
    for name, wall in walls.items():  # end to end, on every core: start-up, tasks, writes
        records.append(record("sweep", "rgsweep", {"set": f"design {name}", "workers": cores},
                              "end_to_end_wall", "s", [wall]))
    try:
        stored = load_model(MODEL_PATH)
    except CostModelError as err:
        note(str(err))
        stored = None
    if stored is not None:
        records += _records("design, stored model", compare(rows, stored))
    for out, found in runs.items():
        if not found:
            note(f"{out}: no task of its spec records its cost (a run before costs were recorded, "
                 "or an older code version)")
        for label, model in (("stored model", stored), ("fresh fit", fresh)):
            if model is not None and found:
                records += _records(f"{os.path.basename(os.path.normpath(out))}, {label}", compare(found, model))
    records += _forecast_records(fresh if quick or stored is None else stored)
    return records
