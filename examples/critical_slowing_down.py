"""Critical slowing down, in plain pandas: a copyable example analysis of an rgsweep dataset.

The report does not show how the sampler's integrated autocorrelation time grows near Tc;
this script does. It loads the ``ising`` table, filters one algorithm, pivots tau_int(e) into a
T x L table, plots it, and estimates the dynamic exponent z from tau_int(Tc) ~ L^z
(Metropolis: z ~ 2.17; Wolff, per sweep-equivalent: z ~ 0.25; Nightingale & Bloete 1996,
Coddington & Baillie 1992).

    python examples/critical_slowing_down.py results/quick            # writes tau_int.png there
    python examples/critical_slowing_down.py OUT --algorithm wolff
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import analysis  # noqa: E402

TC = 2.0 / np.log1p(np.sqrt(2.0))


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="dataset folder written by `rgsweep run`")
    parser.add_argument("--algorithm", default=None, help="only tasks run with this algorithm")
    args = parser.parse_args(argv)

    # 1. load: one DataFrame per table, every row already carries L, T and its config
    ising = analysis.load(args.out).ising
    # 2. filter
    if args.algorithm:
        ising = ising[ising["algorithm_used"] == args.algorithm]
    if ising.empty:
        raise SystemExit(f"no sampling results in {args.out}")
    # 3. pivot: rows T, columns L
    tau = ising.pivot_table(index="T", columns="L", values="tau_int_e", aggfunc="mean")
    print("tau_int(e) in sweeps (rows T, columns L):")
    print(tau.round(2).to_string())

    # 4. one number: z from the temperature closest to Tc, if every L has it
    at_tc = tau.iloc[int(np.argmin(np.abs(tau.index.to_numpy() - TC)))].dropna()
    if len(at_tc) >= 2:
        z, _ = np.polyfit(np.log(at_tc.index.to_numpy(float)), np.log(at_tc.to_numpy()), 1)
        print(f"tau_int(T = {tau.index[np.argmin(np.abs(tau.index - TC))]:.4f}) ~ L^z with z = {z:.2f}")

    # 5. plot
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9"]
    for i, L in enumerate(tau.columns):
        ax.plot(tau.index, tau[L], marker="os^Dv<"[i % 6], color=colours[i % 6], label=f"L = {L}")
    ax.axvline(TC, color="0.4", ls=":", label=r"$T_c$")
    ax.set_yscale("log")
    ax.set_xlabel(r"temperature $T$ [$J/k_B$]")
    ax.set_ylabel(r"$\tau_{int}(e)$ [sweeps]")
    ax.legend()
    fig.tight_layout()
    path = Path(args.out) / "tau_int.png"
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
