"""AIS suite: rgsweep's fused float32 annealing against the same annealing in plain float64 numpy.

The peer is what one writes with numpy (and what rgsweep ran before): per step, the log-weight
increments with ``logaddexp`` and one block-Gibbs step, float64 matrix products. Both anneal
the same RBM along the same number of inverse temperatures with the same number of chains;
the figure is chain-steps per second (one chain advanced by one inverse temperature).
"""

from __future__ import annotations

from .common import record, repeat, timed

__all__ = ["AIS_SIZES", "suite_ais", "numpy_ais_log_weights"]

AIS_SIZES = ((1024, 256), (4096, 1024))


def numpy_ais_log_weights(W, a, b, a0, betas, n, rng):
    """Log importance weights of n AIS chains in float64 numpy (the peer)."""
    import numpy as np

    n_v, n_h = W.shape
    v = np.where(rng.random((n, n_v)) < 0.5 * (1.0 + np.tanh(a0)), 1.0, -1.0)
    log_w = np.zeros(n)
    da = a - a0
    x = v @ W + b
    for k in range(1, len(betas)):
        beta, beta_prev = betas[k], betas[k - 1]
        log_w += (beta - beta_prev) * (v @ da)
        log_w += (np.logaddexp(0.0, beta * x) - np.logaddexp(0.0, beta_prev * x)).sum(axis=1)
        if k == len(betas) - 1:
            break
        h = (rng.random((n, n_h)) < 0.5 * (1.0 + np.tanh(0.5 * beta * x))).astype(np.float64)
        field = beta * (h @ W.T) + (1.0 - beta) * a0 + beta * a
        v = np.where(rng.random((n, n_v)) < 0.5 * (1.0 + np.tanh(field)), 1.0, -1.0)
        x = v @ W + b
    return log_w


def suite_ais(quick: bool) -> list[dict]:
    import numpy as np

    from workers.rbm.ais import anneal

    out, reps = [], 2 if quick else 3
    sizes = ((256, 64),) if quick else AIS_SIZES
    for n_v, n_h in sizes:
        rng = np.random.default_rng(0)
        W = rng.normal(size=(n_v, n_h)) * 0.05
        a, b, a0 = rng.normal(size=n_v) * 0.1, rng.normal(size=n_h) * 0.1, np.zeros(n_v)
        for chains in (32, 160):
            steps = max(10, int(2e9 / (chains * n_v * n_h)) if not quick else 20)
            betas = np.linspace(0.0, 1.0, steps + 1)
            params = {"n_visible": n_v, "n_hidden": n_h, "chains": chains, "steps": steps}
            per_s = lambda dt: chains * steps / dt  # noqa: E731
            out.append(record("ais", "rgsweep", params, "chain_steps", "chain-steps/s", repeat(
                lambda: per_s(timed(lambda: anneal(W, a, b, a0, betas.astype(np.float32), chains, rng))[0]),
                reps)))
            out.append(record("ais", "numpy-float64", params, "chain_steps", "chain-steps/s", repeat(
                lambda: per_s(timed(lambda: numpy_ais_log_weights(W, a, b, a0, betas, chains, rng))[0]),
                reps)))
    return out
