"""Rows of the per-checkpoint RBM tables that more than one task writes (training and flows).

Each function returns equal-length column arrays for one checkpoint (or one layer); the caller
adds its key columns (epoch, layer, ...) with :func:`with_constants` and concatenates the blocks
with :func:`stack`.  Definitions: ``workers.measures.spectra`` (Wishart spectrum, Marchenko-Pastur edges,
Theorem 1 checks) and ``workers.measures.alignment`` (RG block alignment).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from workers.measures.alignment import block_alignment, block_correlation, block_means
from workers.measures.spectra import spectrum_summary, wishart_eigenvalues

__all__ = ["spectrum_rows", "alignment_rows", "with_constants", "stack", "columns_of"]


def spectrum_rows(W: np.ndarray) -> dict:
    """The ``spectra`` columns of one weight matrix W (n_visible, n_hidden): one row per
    non-zero eigenvalue of W W^T, with the per-matrix summary against the Marchenko-Pastur
    law fitted to its bulk (:func:`workers.measures.spectra.spectrum_summary`) repeated on every row."""
    n_v, n_h = W.shape
    eigs = wishart_eigenvalues(W)
    s = spectrum_summary(eigs, n_v, n_h)
    n = len(eigs)
    return {"rank": np.arange(n), "eigenvalue": eigs, **{k: np.full(n, v) for k, v in s.items()}}


def alignment_rows(field: np.ndarray, L: int, blocks, b_hidden=None, V=None, perm=None) -> list[dict]:
    """The ``rg_alignment`` columns of the receptive fields ``field`` (N, units), one dict per
    block size in ``blocks``.

    ``corr`` (|corr| of p(h_j = 1 | v) with the best block's mean spin on the configurations V)
    needs the hidden biases and V, and is meaningful only when ``field`` is the RBM's own W;
    without them it is NaN. p(h | v) does not depend on the block: it is computed once.

    The null (``perm``, a permutation of the N sites): the same fields with their sites
    shuffled, ``field[perm]``, i.e. the same weights with the lattice geometry taken away.
    ``null_score`` is its block score, ``excess = score - null_score``, and ``null_corr`` the
    |corr| of the permuted model's p(h | v) with its own best block. Where every field tracks
    the magnetisation (the ordered phase) corr is large for the null too. Without ``perm`` the
    null columns are NaN.
    """
    units = field.shape[1]
    nan = np.full(units, np.nan)
    null_field = None if perm is None else np.asarray(field)[np.asarray(perm)]

    def activations(f):
        if b_hidden is None or V is None:
            return None
        return expit(np.asarray(b_hidden, dtype=np.float64) + np.asarray(V, dtype=np.float64) @ f)

    act = activations(field)
    null_act = activations(null_field) if null_field is not None else None
    out = []
    for block in blocks:
        al = block_alignment(field, L, block)
        means = block_means(V, L, block) if act is not None else None  # shared with the null
        corr = (block_correlation(field, b_hidden, L, block, al["row"], al["col"], V, act=act, means=means)
                if act is not None else nan)
        null_score, null_corr = nan, nan
        if null_field is not None:
            nl = block_alignment(null_field, L, block)
            null_score = nl["score"]
            if null_act is not None:
                null_corr = block_correlation(null_field, b_hidden, L, block, nl["row"], nl["col"], V,
                                              act=null_act, means=means)
        out.append({"unit": np.arange(units), "block": np.full(units, block), "score": al["score"],
                    "baseline": al["baseline"], "null_score": null_score,
                    "excess": al["score"] - null_score, "row": al["row"], "col": al["col"],
                    "corr": corr, "null_corr": null_corr})
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
