"""Thermodynamics per (L, T) with error bars, from the ``ising`` and ``series`` tables.

* :func:`thermodynamics_table` — the ``ising`` table with the exact Kaufman values beside every
  measurement and the deviations in units of the error bar.
* :func:`load_histograms` — every run's ``series`` as a :class:`~analysis.resampling.BlockedHistogram`.
* :func:`bootstrap_observables` — e, C, |m|, chi, U4 recomputed from the series with errors by the
  bootstrap over independent blocks; the replicas are kept for derived estimates (Binder crossings).
* :func:`free_energy_integration` — f per spin by thermodynamic integration of the measured e.

Conventions: docs/conventions.md (per-spin e, m; C = beta^2 N Var(e); chi = beta N (<m^2> - <|m|>^2)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import exact_reference as exact
from .load import read_part, read_table
from .resampling import blocked_histogram, BlockedHistogram
from .reweighting import OBSERVABLES, bootstrap_replicas, reweight_single

__all__ = ["thermodynamics_table", "load_histograms", "bootstrap_observables",
           "free_energy_integration"]

_PAIRS = (("e", "e_err", "exact_u"), ("C", "C_err", "exact_c"))


def thermodynamics_table(ising: pd.DataFrame) -> pd.DataFrame:
    """The ``ising`` table, tidy, with z-scores against Kaufman's exact finite-L values.

    Adds ``z_e = (e - exact_u) / e_err`` and ``z_C = (C - exact_c) / C_err``; |z| >~ 3 on many
    rows means a biased sampler or an underestimated error bar.

    Parameters
    ----------
    ising : DataFrame, the ``ising`` table (one row per (L, T) task).

    Returns
    -------
    DataFrame sorted by (L, T).
    """
    frame = ising.sort_values(["L", "T"]).reset_index(drop=True).copy()
    for value, err, ref in _PAIRS:
        if {value, err, ref} <= set(frame.columns):
            frame[f"z_{value}"] = (frame[value] - frame[ref]) / frame[err]
    return frame


def _runs(out, L):
    """(L, T, task_id) of every run, from the small ``ising`` table (the series may be huge)."""
    filters = [("L", "=", int(L))] if L is not None else None
    keys = read_table(out, "ising", filters=filters, columns=["L", "T", "task_id"])
    if keys.empty:  # partial data: series without their ising row; read just the keys
        keys = read_table(out, "series", filters=filters, columns=["L", "T", "task_id"])
    return keys.drop_duplicates().sort_values(["L", "T", "task_id"]).itertuples(index=False)


def load_histograms(out, L: int | None = None) -> dict[int, list[BlockedHistogram]]:
    """Blocked energy histograms of every run in the ``series`` table.

    The series is read one run at a time, straight from the run's own part, so memory stays at
    one run's series plus the compact histograms, and time grows with the number of runs only.

    Parameters
    ----------
    out : dataset path or URI.
    L : optional, only this lattice size.

    Returns
    -------
    dict L -> list of BlockedHistogram sorted by T (empty if there is no series table).
    """
    result: dict[int, list[BlockedHistogram]] = {}
    for size, temp, task_id in _runs(out, L):
        run = read_part(out, "series", size, task_id)
        if run.empty:
            continue
        has_chain = "chain" in run.columns and run["chain"].notna().all()
        run = run.sort_values(["chain", "step"] if has_chain else ["step"], kind="stable")
        chain = run["chain"].to_numpy() if has_chain else None
        hist = blocked_histogram(run["e"].to_numpy(), run["m"].to_numpy(), int(size), float(temp), chain)
        result.setdefault(int(size), []).append(hist)
    return result


def bootstrap_observables(hists: list[BlockedHistogram], n_boot: int, rng: np.random.Generator
                          ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Observables of each run from its series, with block-bootstrap error bars.

    Parameters
    ----------
    hists : runs (any L, T).
    n_boot : number of bootstrap replicas.
    rng : the caller's Generator.

    Returns
    -------
    table : DataFrame, one row per run: L, T, tau, block_length, n_blocks, short_blocks and, for
        every observable X of :data:`~analysis.reweighting.OBSERVABLES`, X and X_err.
    replicas : dict observable -> ndarray (n_boot, n_runs), the replica values (run order as
        in ``table``), for derived estimates.
    """
    rows, reps = [], {k: np.empty((n_boot, len(hists))) for k in OBSERVABLES}
    for j, (h, weights) in enumerate(zip(hists, zip(*bootstrap_replicas(hists, n_boot, rng)))):
        full = reweight_single(h, h.T)
        row = {"L": h.L, "T": h.T, "tau": h.tau, "block_length": h.block_length,
               "n_blocks": h.n_blocks, "short_blocks": h.short_blocks}
        for r, w in enumerate(weights):
            rep = reweight_single(h, h.T, w)
            for k in OBSERVABLES:
                reps[k][r, j] = rep[k][0]
        for k in OBSERVABLES:
            row[k] = float(full[k][0])
            row[f"{k}_err"] = float(np.std(reps[k][:, j], ddof=1))
        rows.append(row)
    return pd.DataFrame(rows), reps


def _cumulative_trapezoid_operator(x):
    """Matrix A (n, n) with (A y)_i = int_{x_0}^{x_i} y dx by the trapezoid rule."""
    n = x.size
    A = np.zeros((n, n))
    for i in range(1, n):
        h = x[i] - x[i - 1]
        A[i] = A[i - 1]
        A[i, i - 1] += h / 2
        A[i, i] += h / 2
    return A


def free_energy_integration(ising: pd.DataFrame, anchor: str = "kaufman") -> pd.DataFrame:
    """Free energy per spin by thermodynamic integration of the measured energy, per L.

    d(beta f)/d beta = u, so ``beta f(beta) = beta_a f(beta_a) + int_{beta_a}^{beta} u dbeta'``
    by the trapezoid rule in beta over the measured e(T) of each L. Integration fixes f only up
    to a constant: it is anchored at the highest sampled temperature T_a, to Kaufman's exact
    finite-L f there (``anchor="kaufman"``, so what is compared is the integral of the measured
    energies) or to Onsager's infinite-lattice f (``anchor="onsager"``, no finite-L input at all;
    the column ``anchor_offset`` = Kaufman - Onsager at T_a is the error this makes: 4e-4 for
    L = 8 at T = 3.5, 9e-3 at T = 2.6, < 1e-6 for L >= 16 at T = 3.5). Errors propagate the independent e_err of every task through the
    linear quadrature. ``f_ti_exact_u`` integrates Kaufman's exact u on the same grid with the
    same anchor: its distance from ``exact_f`` is the discretisation error alone.

    Parameters
    ----------
    ising : DataFrame with L, T, e, e_err.
    anchor : "kaufman" or "onsager".

    Returns
    -------
    DataFrame: L, T, f_ti, f_ti_err, exact_f, f_ti_exact_u, anchor_T, anchor_offset,
    quadrature_err (f_ti_exact_u - exact_f) and z_f = (f_ti - f_ti_exact_u) / f_ti_err.
    """
    if anchor not in ("kaufman", "onsager"):
        raise ValueError(f"anchor must be 'kaufman' or 'onsager', got {anchor!r}")
    rows = []
    for size, group in ising.groupby("L", sort=True):
        group = group.sort_values("T", ascending=False)  # ascending beta from the anchor
        T = group["T"].to_numpy(dtype=np.float64)
        beta = 1.0 / T
        A = _cumulative_trapezoid_operator(beta)
        ref = exact.kaufman(int(size), T)
        exact_u, exact_f = ref["u"], ref["f"]
        onsager_f = exact.onsager(T[0])["f"]
        start = beta[0] * (exact_f[0] if anchor == "kaufman" else onsager_f)
        e = group["e"].to_numpy(dtype=np.float64)
        err = group["e_err"].to_numpy(dtype=np.float64)
        beta_f = start + A @ e
        beta_f_err = np.sqrt((A**2) @ err**2)
        for i in range(T.size):
            rows.append({"L": int(size), "T": T[i], "f_ti": beta_f[i] / beta[i],
                         "f_ti_err": beta_f_err[i] / beta[i], "exact_f": exact_f[i],
                         "f_ti_exact_u": (start + A[i] @ exact_u) / beta[i], "anchor": anchor,
                         "anchor_T": T[0], "anchor_offset": exact_f[0] - onsager_f})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        # The statistical test compares with the exact u integrated by the same quadrature, so
        # the discretisation error (reported apart as quadrature_err) does not pose as noise.
        frame["quadrature_err"] = frame["f_ti_exact_u"] - frame["exact_f"]
        frame["z_f"] = (frame["f_ti"] - frame["f_ti_exact_u"]) / frame["f_ti_err"].where(frame["f_ti_err"] > 0)
        frame = frame.sort_values(["L", "T"]).reset_index(drop=True)
    return frame
