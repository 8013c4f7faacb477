"""Every table's explicit pyarrow schema, in one place.

Writers validate against these and never infer.  Every row carries ``task_id``, ``L``, ``T`` and
the config fields that matter, so pandas needs no joins (README, "The dataset").
Bump :data:`SCHEMA_VERSION` whenever a schema or the meaning of a column changes: it is part of
every task id, so old results are never mistaken for new ones. A table that one kind of task
writes alone may instead change with that kind's code version (``contract.constants``), which
leaves the other kinds' ids alone (``rbm`` got its ``init`` column so, with train version 4).
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["SCHEMA_VERSION", "SCHEMAS", "TABLES", "TIMING_COLUMNS", "TASK_TABLES"]

SCHEMA_VERSION = 2

_f64, _f32, _i32, _i64, _str = pa.float64(), pa.float32(), pa.int32(), pa.int64(), pa.string()


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, typ, nullable=True) for name, typ in fields])


_KEY = (("task_id", _str), ("L", _i32), ("T", _f64))
_SAMPLING_CONFIG = (("algorithm", _str), ("algorithm_used", _str), ("burn_in", _i64),
                    ("n_samples", _i64), ("thin", _i64), ("thin_auto", pa.bool_()),
                    ("symmetrize", pa.bool_()), ("seed", _i64))
# ``layer`` is 1 for the RBMs of the training stage and k for layer k of a stacked RBM (rg_flow).
_TRAIN_KEY = _KEY + (("sample_task", _str), ("n_visible", _i32), ("n_hidden", _i32), ("method", _str),
                     ("rbm_seed", _i64), ("layer", _i32))

# KL and the effective-Hamiltonian fit (raw and beyond the magnetisation), each with its error.
_FIDELITY = tuple((name + suffix, _f64) for name in (
    "kl_per_spin", "heff_slope", "heff_r2", "heff_partial_slope", "heff_partial_r2")
    for suffix in ("", "_err"))

SCHEMAS: dict[str, pa.Schema] = {
    "ising": _schema(
        *_KEY, *_SAMPLING_CONFIG, ("n_measurements", _i64),
        ("e", _f64), ("e_err", _f64), ("m_abs", _f64), ("m_abs_err", _f64), ("m2", _f64), ("m4", _f64),
        ("C", _f64), ("C_err", _f64), ("chi", _f64), ("chi_err", _f64),
        ("binder", _f64), ("binder_err", _f64), ("tau_int_e", _f64), ("tau_int_m", _f64),
        ("acceptance", _f64), ("exact_u", _f64), ("exact_c", _f64), ("exact_f", _f64),
        ("exact_lnZ", _f64), ("wall_s", _f64), ("flips_per_ns", _f64),
    ),
    "samples": _schema(*_KEY, ("index", _i32), ("spins", pa.binary())),
    "series": _schema(*_KEY, ("chain", _i32), ("step", _i32), ("e", _f64), ("m", _f64)),
    "rbm": _schema(
        *_TRAIN_KEY, ("k", _i32), ("learning_rate", _f64), ("momentum", _f64), ("lr_schedule", _str),
        ("epochs", _i32), ("batch_size", _i32), ("l1", _f64), ("l2", _f64), ("init_std", _f64),
        ("init", _str), ("n_train", _i64), ("n_test", _i64),
        ("centering", pa.bool_()), ("flip_moves", pa.bool_()), ("averaging", _f64),
        ("lnZ_rbm", _f64), ("lnZ_rbm_err", _f64), ("lnZ_method", _str),
        ("nll_train", _f64), ("nll_test", _f64), *_FIDELITY,
        ("e", _f64), ("e_err", _f64), ("m_abs", _f64), ("m_abs_err", _f64),
        ("C", _f64), ("C_err", _f64), ("chi", _f64), ("chi_err", _f64),
        ("mc_e", _f64), ("mc_e_err", _f64), ("mc_m_abs", _f64), ("mc_m_abs_err", _f64),
        ("mc_C", _f64), ("mc_C_err", _f64), ("mc_chi", _f64), ("mc_chi_err", _f64),
        ("w1_e", _f64), ("w1_m", _f64), ("m_pos_frac", _f64), ("flip_rate", _f64),
        ("wall_s", _f64), ("train_samples_per_s", _f64),
    ),
    "rbm_params": _schema(
        *_TRAIN_KEY, ("epoch", _i32), ("init_std", _f64),
        ("a", pa.list_(_f32)), ("b", pa.list_(_f32)), ("W", pa.list_(_f32)),
    ),
    "free_energy": _schema(
        *_TRAIN_KEY, ("epoch", _i32), ("lnZ_rbm", _f64), ("lnZ_rbm_err", _f64), ("lnZ_method", _str),
        ("lnZ_ising", _f64), ("nll_train", _f64), ("nll_test", _f64),
        ("F_data_mean", _f64), ("F_model_mean", _f64), *_FIDELITY,
    ),
    "spectra": _schema(
        *_TRAIN_KEY, ("epoch", _i32), ("rank", _i32), ("eigenvalue", _f64),
        ("sigma_fit", _f64), ("mp_lower", _f64), ("mp_upper", _f64), ("n_outliers", _i32),
        ("mp_ks", _f64), ("lambda_max", _f64), ("lambda_min", _f64), ("effective_rank", _f64),
        ("numerical_rank", _i32),
    ),
    "rg_alignment": _schema(
        *_TRAIN_KEY, ("epoch", _i32), ("unit", _i32), ("block", _i32), ("score", _f64),
        ("baseline", _f64), ("null_score", _f64), ("excess", _f64), ("row", _i32), ("col", _i32),
        ("corr", _f64), ("null_corr", _f64),
    ),
    "transport": _schema(
        *_TRAIN_KEY, ("epoch", _i32), ("w2_to_init", _f64), ("w2_to_prev", _f64), ("path_length", _f64),
    ),
    "rg_flow": _schema(
        *_KEY, ("source_task", _str), ("kind", _str), ("level", _i32), ("size", _i32),
        ("T_eff", _f64), ("T_eff_err", _f64), ("e", _f64), ("e_err", _f64), ("m_abs", _f64),
        ("m_abs_err", _f64), ("binder", _f64), ("binder_err", _f64), ("extent", _f64),
        ("mean_alignment", _f64), ("match_chi2", _f64),
    ),
    "failures": _schema(
        *_KEY, ("kind", _str), ("error", _str), ("traceback", _str), ("attempt", _i32),
        ("failed_at", _str),
    ),
}

#: The tables each task kind writes (its manifest, written after them, commits the task).
TASK_TABLES = {
    "sample": ("samples", "series", "ising"),
    "train": ("rbm_params", "free_energy", "spectra", "rg_alignment", "transport", "rbm"),
    "flow": ("rg_flow", "rbm_params", "spectra", "rg_alignment"),
}

#: Every table, in the order the README documents them.
TABLES = tuple(SCHEMAS)

#: Columns that measure the machine rather than the physics; excluded when comparing runs.
TIMING_COLUMNS = frozenset({"wall_s", "flips_per_ns", "train_samples_per_s", "failed_at"})
