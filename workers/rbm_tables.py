"""Rows of the per-checkpoint RBM tables that more than one task writes (training and flows).

Each function returns equal-length column arrays for one checkpoint (or one layer); the caller
adds its key columns (epoch, layer, ...) with :func:`with_constants` and concatenates the blocks
with :func:`stack`.  Definitions: ``workers.spectra`` (Wishart spectrum, Marchenko-Pastur edges,
Theorem 1 checks) and ``workers.alignment`` (RG block alignment).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .alignment import block_alignment, block_correlation
from .spectra import spectrum_summary, wishart_eigenvalues

__all__ = ["spectrum_rows", "alignment_rows", "with_constants", "stack", "columns_of"]


def spectrum_rows(W: np.ndarray, init_std: float) -> dict:
    """The ``spectra`` columns of one weight matrix W (n_visible, n_hidden): one row per
    non-zero eigenvalue of W W^T, with the MP edges for the initial ``init_std`` and the
    per-matrix summary repeated on every row."""
    n_v, n_h = W.shape
    eigs = wishart_eigenvalues(W)
    s = spectrum_summary(eigs, init_std, n_v, n_h)
    n = len(eigs)
    return {"rank": np.arange(n), "eigenvalue": eigs, "mp_lower": np.full(n, s["mp_lower"]),
            "mp_upper": np.full(n, s["mp_upper"]),
            "lambda_max": np.full(n, s["lambda_max"]), "n_outliers": np.full(n, s["n_outliers"]),
            "effective_rank": np.full(n, s["effective_rank"]),
            "numerical_rank": np.full(n, s["numerical_rank"]),
            "psd_ok": np.full(n, bool(s["psd_ok"])), "rank_ok": np.full(n, bool(s["rank_ok"]))}


def alignment_rows(field: np.ndarray, L: int, blocks, b_hidden=None, V=None) -> list[dict]:
    """The ``rg_alignment`` columns of the receptive fields ``field`` (N, units), one dict per
    block size in ``blocks``.

    ``corr`` (|corr| of p(h_j = 1 | v) with the best block's mean spin on the configurations V)
    needs the hidden biases and V, and is meaningful only when ``field`` is the RBM's own W;
    without them it is NaN. p(h | v) does not depend on the block: it is computed once.
    """
    units = field.shape[1]
    act = None
    if b_hidden is not None and V is not None:
        act = expit(np.asarray(b_hidden, dtype=np.float64) + np.asarray(V, dtype=np.float64) @ field)
    out = []
    for block in blocks:
        al = block_alignment(field, L, block)
        corr = (block_correlation(field, b_hidden, L, block, al["row"], al["col"], V, act=act)
                if act is not None else np.full(units, np.nan))
        out.append({"unit": np.arange(units), "block": np.full(units, block), "score": al["score"],
                    "baseline": al["baseline"], "row": al["row"], "col": al["col"], "corr": corr})
    return out


def with_constants(columns: dict, **constants) -> dict:
    """``columns`` with every constant broadcast to a column of the same length (constants first)."""
    n = len(next(iter(columns.values())))
    return {**{k: [v] * n for k, v in constants.items()}, **columns}


def stack(blocks: list[dict]) -> dict:
    """Blocks of equal-length column arrays -> one column dict."""
    return {k: np.concatenate([np.asarray(blk[k]) for blk in blocks]) for k in blocks[0]}


def columns_of(rows: list[dict]) -> dict:
    """A list of row dicts (all with the same keys) as a dict of columns."""
    return {k: [r[k] for r in rows] for k in rows[0]}
