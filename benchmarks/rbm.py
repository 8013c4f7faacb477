"""RBM suite: rgsweep's fused CD-1 trainer against scikit-learn and PyTorch (CPU), one thread."""

from __future__ import annotations

import os

from .common import note, record, repeat, timed

__all__ = ["RBM_SIZES", "suite_rbm"]

RBM_SIZES = ((256, 64), (256, 256), (1024, 64), (1024, 256))


def _torch_cd1(torch, V, n_h, epochs, batch=100, lr=0.01, momentum=0.5, l2=1e-4):
    """Plain PyTorch CD-1 with the same updates as workers.rbm.training (float32, momentum, L2)."""
    g = torch.Generator().manual_seed(0)
    n, n_v = V.shape
    W = torch.randn(n_v, n_h, generator=g) * 0.01
    a, b = torch.zeros(n_v), torch.zeros(n_h)
    vW, va, vb = torch.zeros_like(W), torch.zeros_like(a), torch.zeros_like(b)
    with torch.no_grad():
        for _ in range(epochs):
            order = torch.randperm(n, generator=g)
            for s in range(0, n, batch):
                v0 = V[order[s:s + batch]]
                ph0 = torch.sigmoid(v0 @ W + b)
                h0 = torch.bernoulli(ph0, generator=g)
                pv1 = torch.sigmoid(2.0 * (h0 @ W.T + a))
                v1 = 2.0 * torch.bernoulli(pv1, generator=g) - 1.0
                ph1 = torch.sigmoid(v1 @ W + b)
                m = v0.shape[0]
                gW = (v0.T @ ph0 - v1.T @ ph1) / m - l2 * W
                vW.mul_(momentum).add_(lr * gW)
                va.mul_(momentum).add_(lr * (v0.mean(0) - v1.mean(0)))
                vb.mul_(momentum).add_(lr * (ph0.mean(0) - ph1.mean(0)))
                W += vW
                a += va
                b += vb
    return W


def suite_rbm(quick: bool) -> list[dict]:
    from workers.rbm.model import RBM

    out, reps = [], 2 if quick else 3
    sizes = ((64, 16),) if quick else RBM_SIZES
    n_rows, epochs = (500, 1) if quick else (5000, 2)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
        note("torch not installed: peer skipped (pip install 'rgsweep[bench]')")
    try:
        from sklearn.neural_network import BernoulliRBM
    except ImportError:
        BernoulliRBM = None
        note("scikit-learn not installed: peer skipped (pip install 'rgsweep[bench]')")
    try:  # pin again: the peers may have loaded their own BLAS / OpenMP after run_bench did
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(1)
    except ImportError:
        limits = None
    if limits is not None:  # the peers and rgsweep share numpy's BLAS: say which kernels
        from threadpoolctl import threadpool_info
        for lib in threadpool_info():
            if lib.get("internal_api") in ("openblas", "mkl", "blis"):
                note(f"{lib['internal_api']} {lib.get('version')} "
                      f"({lib.get('architecture') or lib.get('threading_layer')}), "
                      f"{lib.get('num_threads')} thread(s): {os.path.basename(lib['filepath'])}")
    try:
        for n_v, n_h in sizes:
            out += _rbm_size(n_v, n_h, n_rows, epochs, reps, RBM, torch, BernoulliRBM)
    finally:
        if limits is not None:
            limits.restore_original_limits()
    return out


def _rbm_size(n_v, n_h, n_rows, epochs, reps, RBM, torch, BernoulliRBM) -> list[dict]:
    """CD-1 samples per second of rgsweep, PyTorch and scikit-learn (PCD-1) at one size."""
    import numpy as np

    out = []
    params = {"n_visible": n_v, "n_hidden": n_h, "batch": 100}
    V = np.where(np.random.default_rng(0).random((n_rows, n_v)) < 0.5, -1, 1).astype(np.int8)
    per_s = lambda dt: n_rows * epochs / dt

    def ours():
        rbm = RBM(n_h, method="cd", k=1, batch_size=100, epochs=epochs, random_state=0)
        return per_s(timed(lambda: rbm.fit(V))[0])
    out.append(record("rbm", "rgsweep", params, "cd1_throughput", "samples/s",
                       repeat(ours, reps)))
    if torch is not None:
        Vt = torch.from_numpy(V.astype(np.float32))
        out.append(record("rbm", "torch", params, "cd1_throughput", "samples/s", repeat(
            lambda: per_s(timed(lambda: _torch_cd1(torch, Vt, n_h, epochs))[0]), reps)))
    if BernoulliRBM is not None:
        X = (V > 0).astype(np.float32)

        def sk():
            model = BernoulliRBM(n_components=n_h, batch_size=100, n_iter=epochs,
                                 learning_rate=0.01, random_state=0)
            return per_s(timed(lambda: model.fit(X))[0])
        out.append(record("rbm", "scikit-learn", params, "pcd1_throughput", "samples/s",
                           repeat(sk, reps)))
    return out

