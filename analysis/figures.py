"""The report's figures: matplotlib (Agg), PNG, Okabe-Ito colours, labelled axes with units.

Every function takes tidy DataFrames (or solved histograms) and a path, writes one PNG and
returns the path. Units: T in J/k_B; e, f in J per spin; C in k_B per spin; chi in 1/J per
spin (chi = beta N Var(m)); U4, KL per spin (nats), R^2 and alignment scores are dimensionless.
Colours: Okabe & Ito, "Color Universal Design" (2008), safe for the common colour-vision
deficiencies; each L also gets its own marker so nothing depends on colour alone.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import exact_reference as exact  # noqa: E402
from .figure_output import save_figure  # noqa: E402

__all__ = ["OKABE_ITO", "curve_style", "tc_line", "save_figure", "thermodynamics_figure",
           "binder_figure", "peaks_figure", "finite_size_figure", "free_energy_figure",
           "spectra_figure", "receptive_fields_figure", "flow_diagram_figure", "flow_fields_figure"]

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_T_LABEL = r"temperature $T$ [$J/k_B$]"


def curve_style(i):
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": _MARKERS[i % len(_MARKERS)]}


def tc_line(ax):
    ax.axvline(exact.TC, color="0.4", ls=":", lw=1, label=r"$T_c$ (Onsager)")


def thermodynamics_figure(thermo: pd.DataFrame, path) -> Path:
    """e, |m|, C, chi and U4 against T per L, with Kaufman's exact finite-L u and c overlaid."""
    panels = [("e", "e_err", r"energy $e$ [$J$/spin]"), ("m_abs", "m_abs_err", r"$\langle|m|\rangle$ [per spin]"),
              ("C", "C_err", r"heat capacity $C$ [$k_B$/spin]"), ("chi", "chi_err", r"susceptibility $\chi$ [$1/J$]"),
              ("binder", "binder_err", r"Binder cumulant $U_4$")]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    axes = axes.ravel()
    t_dense = np.linspace(thermo["T"].min(), thermo["T"].max(), 200)
    for i, (L, g) in enumerate(thermo.groupby("L")):
        st = curve_style(i)
        for ax, (col, err, label) in zip(axes, panels):
            ax.errorbar(g["T"], g[col], yerr=g[err], ls="none", ms=4, capsize=2, label=f"L = {L}", **st)
            ax.set_ylabel(label)
        ref = exact.kaufman(int(L), t_dense)
        axes[0].plot(t_dense, ref["u"], color=st["color"], lw=1)
        axes[2].plot(t_dense, ref["c"], color=st["color"], lw=1)
    axes[1].plot(t_dense, exact.spontaneous_magnetization(t_dense), "k--", lw=1, label=r"Onsager $m_0$, $L=\infty$")
    axes[0].plot([], [], color="0.3", lw=1, label="Kaufman exact (same L)")
    for ax in axes[:5]:
        ax.set_xlabel(_T_LABEL)
        tc_line(ax)
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    z = thermo[["L", "T", "z_e", "z_C"]] if {"z_e", "z_C"} <= set(thermo.columns) else None
    ax = axes[5]
    if z is not None:
        for i, (L, g) in enumerate(z.groupby("L")):
            st = curve_style(i)
            ax.plot(g["T"], g["z_e"], ls="none", ms=4, label=f"e, L = {L}", color=st["color"], marker=st["marker"])
            ax.plot(g["T"], g["z_C"], ls="none", ms=5, mfc="none", label=f"C, L = {L}", color=st["color"],
                    marker=st["marker"])
        ax.axhspan(-2, 2, color="0.9")
        ax.set_ylabel("(measured - exact) / error")
        ax.set_xlabel(_T_LABEL)
        ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def binder_figure(table: pd.DataFrame, crossings: pd.DataFrame, path) -> Path:
    """U4 against T per L; crossings of successive L with their error bars; exact Tc."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, zoom in zip(axes, (False, True)):
        for i, (L, g) in enumerate(table.groupby("L")):
            ax.errorbar(g["T"], g["binder"], yerr=g["binder_err"], ms=4, capsize=2, lw=0.8,
                        label=f"L = {L}", **curve_style(i))
        tc_line(ax)
        ax.axhline(exact.BINDER_CRITICAL, color="0.6", ls="--", lw=0.8, label=r"$U_4^*$ (torus, $L=\infty$)")
        ax.set_xlabel(_T_LABEL)
        ax.set_ylabel(r"Binder cumulant $U_4 = 1 - \langle m^4\rangle / 3\langle m^2\rangle^2$")
        if zoom:
            ax.set_xlim(exact.TC - 0.08, exact.TC + 0.08)
            ax.set_ylim(0.45, 0.7)
            for j, row in crossings.reset_index(drop=True).iterrows():
                if np.isfinite(row["T_cross"]):
                    ax.errorbar([row["T_cross"]], [row["U_cross"]], xerr=[row["T_cross_err"]], color="k",
                                marker="x", ms=8, capsize=3)
                    ax.annotate(f"{int(row['L_small'])}/{int(row['L_large'])}", (row["T_cross"], row["U_cross"]),
                                textcoords="offset points", xytext=(5, 5 + 8 * j), fontsize=8)
            ax.set_title("zoom near $T_c$; x: crossings of successive L with bootstrap errors", fontsize=9)
    axes[0].legend(fontsize=8)
    return save_figure(fig, path)


def peaks_figure(curves: dict, peaks: pd.DataFrame, path) -> Path:
    """Multiple-histogram C(T) and chi(T) per L with their peaks; Kaufman's exact c(T).

    ``curves`` maps (L, observable) -> (T grid, reweighted values, run T, run values, run errors).
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    labels = {"C": r"heat capacity $C$ [$k_B$/spin]", "chi": r"susceptibility $\chi$ [$1/J$]"}
    sizes = sorted({k[0] for k in curves})
    for ax, obs in zip(axes, ("C", "chi")):
        for i, L in enumerate(sizes):
            if (L, obs) not in curves:
                continue
            st = curve_style(i)
            t, y, rt, ry, re = curves[(L, obs)]
            ax.plot(t, y, color=st["color"], lw=1.2)
            ax.errorbar(rt, ry, yerr=re, ls="none", ms=4, capsize=2, label=f"L = {L}", **st)
            if obs == "C":
                full = np.linspace(min(np.min(rt), t[0]), max(np.max(rt), t[-1]), 300)
                ax.plot(full, exact.kaufman(int(L), full)["c"], color=st["color"], lw=0.8, ls="--")
            p = peaks[(peaks["L"] == L) & (peaks["observable"] == obs) & (peaks["method"] == "multi")]
            for _, row in p.iterrows():
                ax.errorbar([row["T_peak"]], [row["height"]], xerr=[row["T_peak_err"]],
                            yerr=[row["height_err"]], color="k", marker="*", ms=10, capsize=3)
        tc_line(ax)
        ax.set_xlabel(_T_LABEL)
        ax.set_ylabel(labels[obs])
        ax.set_yscale("log" if obs == "chi" else "linear")
    axes[0].plot([], [], "k--", lw=1, label="Kaufman exact c")
    axes[0].plot([], [], "k*", ms=8, label="reweighted peak")
    axes[0].legend(fontsize=8)
    axes[0].set_title("lines: multiple-histogram reweighting; points: runs", fontsize=9)
    return save_figure(fig, path)


def finite_size_figure(peaks: pd.DataFrame, fits: dict, path) -> Path:
    """T_peak(L) against L^-1 with the fit Tc + a L^(-1/nu); chi_max(L) against L (log-log)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    multi = peaks[peaks["method"] == "multi"]
    for i, obs in enumerate(("C", "chi")):
        p = multi[multi["observable"] == obs].sort_values("L")
        if p.empty:
            continue
        st = curve_style(i)
        axes[0].errorbar(1.0 / p["L"], p["T_peak"], yerr=p["T_peak_err"], ls="none", capsize=3,
                         label=f"{obs} peak", **st)
        fit = fits.get(f"T_{obs}")
        if fit:
            x = np.linspace(0, 1.0 / p["L"].min(), 100)
            with np.errstate(divide="ignore"):
                axes[0].plot(x, fit["Tc"] + fit["a"] * np.where(x > 0, x, 0) ** (1.0 / fit["nu"]),
                             color=st["color"], lw=1,
                             label=f"fit: $T_c$ = {fit['Tc']:.4f} ± {fit['Tc_err']:.4f}")
    axes[0].axhline(exact.TC, color="0.4", ls=":", label=r"exact $T_c$")
    axes[0].set_xlabel(r"$1/L$ [1/lattice spacing]")
    axes[0].set_ylabel(r"peak temperature $T_{peak}$ [$J/k_B$]")
    axes[0].legend(fontsize=8)
    p = multi[multi["observable"] == "chi"].sort_values("L")
    if not p.empty:
        axes[1].errorbar(p["L"], p["height"], yerr=p["height_err"], ls="none", capsize=3,
                         label=r"$\chi_{max}$", **curve_style(0))
        fit = fits.get("chi_max")
        x = np.geomspace(p["L"].min(), p["L"].max(), 50)
        if fit:
            axes[1].plot(x, fit["amplitude"] * x ** fit["exponent"], color=OKABE_ITO[0], lw=1,
                         label=rf"fit: $\gamma/\nu$ = {fit['exponent']:.3f} ± {fit['exponent_err']:.3f}")
        anchor = np.exp(np.mean(np.log(p["height"]) - exact.GAMMA_OVER_NU * np.log(p["L"])))
        axes[1].plot(x, anchor * x ** exact.GAMMA_OVER_NU, color="0.4", ls="--", lw=1,
                     label=r"exact slope $\gamma/\nu$ = 7/4")
        axes[1].set_xscale("log")
        axes[1].set_yscale("log")
        axes[1].set_xticks(p["L"], [str(int(v)) for v in p["L"]])  # the sizes, not 8x10^0, 9x10^0
        axes[1].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axes[1].yaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 5.0)))  # 1, 2, 5, 10, ...
        for fmt in (axes[1].yaxis.set_major_formatter, axes[1].yaxis.set_minor_formatter):
            fmt(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axes[1].legend(fontsize=8)
    axes[1].set_xlabel(r"lattice size $L$ [lattice spacings]")
    axes[1].set_ylabel(r"peak susceptibility $\chi_{max}$ [$1/J$]")
    return save_figure(fig, path)


def free_energy_figure(fe: pd.DataFrame, path) -> Path:
    """Thermodynamic-integration f minus Kaufman's exact f, per L, with the grid-only error."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for i, (L, g) in enumerate(fe.groupby("L")):
        st = curve_style(i)
        axes[0].errorbar(g["T"], g["f_ti"], yerr=g["f_ti_err"], ls="none", ms=4, capsize=2,
                         label=f"L = {L}", **st)
        axes[0].plot(g["T"], g["exact_f"], color=st["color"], lw=1)
        axes[1].errorbar(g["T"], g["f_ti"] - g["exact_f"], yerr=g["f_ti_err"], ls="none", ms=4,
                         capsize=2, label=f"L = {L}", **st)
        axes[1].plot(g["T"], g["f_ti_exact_u"] - g["exact_f"], color=st["color"], lw=1, ls="--")
    axes[1].axhline(0, color="0.5", lw=0.8)
    axes[1].plot([], [], "k--", lw=1, label="same quadrature on exact u")
    for ax in axes:
        ax.set_xlabel(_T_LABEL)
        tc_line(ax)
    axes[0].set_ylabel(r"free energy $f$ [$J$/spin] (lines: Kaufman)")
    axes[1].set_ylabel(r"$f_{TI} - f_{exact}$ [$J$/spin]")
    axes[1].legend(fontsize=8)
    return save_figure(fig, path)


def _mp_cdf(x, lo, hi, s2, q):
    """Marchenko-Pastur CDF on a grid x (numerical integral of the density)."""
    inside = np.clip(x, lo, hi)
    t = np.linspace(lo, hi, 2001)[1:-1]
    pdf = np.sqrt((hi - t) * (t - lo)) / (2 * np.pi * s2 * q * t)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(t))])
    return np.interp(inside, t, cdf / cdf[-1])


def spectra_figure(spectra: pd.DataFrame, rbm: pd.DataFrame, path) -> Path:
    """Eigenvalues of Sigma = W W^T at initialisation and after training, each against the
    Marchenko-Pastur law fitted to its own bulk.

    One panel per temperature (below, at, above Tc) for the largest L and the widest hidden
    layer: the empirical CDFs of the non-zero eigenvalues at epoch 0 (the null: a Wishart draw)
    and at the final epoch, with the MP CDF of each one's fitted sigma (dashed) and the trained
    spectrum's upper MP edge (dotted): eigenvalues right of it are the modes learning pulled out
    of the bulk. Log eigenvalue axis.
    """
    spectra = spectra[spectra["L"] == spectra["L"].max()]
    spectra = spectra[spectra["n_hidden"] == spectra["n_hidden"].max()]
    temps = _three_temperatures(spectra["T"].unique())
    fig, axes = plt.subplots(1, len(temps), figsize=(4.6 * len(temps), 4.2), squeeze=False)
    for ax, T in zip(axes[0], temps):
        at_T = spectra[np.isclose(spectra["T"], T)]
        one = at_T[at_T["task_id"] == sorted(at_T["task_id"].unique())[0]]
        first, last = one["epoch"].min(), one["epoch"].max()
        q = min(int(one["n_visible"].iloc[0]), int(one["n_hidden"].iloc[0]))
        for k, (epoch, label) in enumerate(((first, "initialisation"), (last, "trained"))):
            rows = one[one["epoch"] == epoch]
            eig = np.sort(rows["eigenvalue"].to_numpy())
            eig = eig[eig > 0]
            colour = OKABE_ITO[2 * k]
            ax.step(eig, np.arange(1, eig.size + 1) / eig.size, where="post", color=colour,
                    lw=1.5, label=f"epoch {epoch} ({label}), {int(rows['n_outliers'].iloc[0])} outliers")
            lo, hi, sigma = rows[["mp_lower", "mp_upper", "sigma_fit"]].iloc[0]
            if sigma > 0:
                x = np.geomspace(max(lo, hi * 1e-3), hi, 300)
                ax.plot(x, _mp_cdf(x, lo, hi, sigma**2, q), color=colour, ls="--", lw=1)
        ax.axvline(hi, color="0.4", ls=":", lw=1, label="upper MP edge of the trained bulk")
        ax.plot([], [], color="0.4", ls="--", lw=1, label="MP law fitted to each bulk")
        ax.set_xscale("log")
        ax.set_title(f"L={one['L'].iloc[0]}, n_h={one['n_hidden'].iloc[0]}, T={T:.3f}", fontsize=9)
        ax.set_xlabel(r"eigenvalue $\lambda$ of $\Sigma = WW^T$ [dimensionless]")
        ax.set_ylabel(r"fraction of eigenvalues $\leq \lambda$")
        ax.legend(fontsize=6, loc="lower right")
    return save_figure(fig, path)


def _three_temperatures(temps):
    temps = np.sort(np.asarray(temps, dtype=np.float64))
    below = temps[temps < exact.TC - 0.05]
    above = temps[temps > exact.TC + 0.05]
    at = temps[np.argmin(np.abs(temps - exact.TC))]
    chosen = [below[len(below) // 2] if below.size else None, at, above[len(above) // 2] if above.size else None]
    return [t for t in chosen if t is not None]


def receptive_fields_figure(params: pd.DataFrame, path, n_units: int = 6) -> Path:
    """Receptive fields W[:, j] as L x L images below, at and above Tc (final epoch)."""
    temps = _three_temperatures(params["T"].unique())
    fig, axes = plt.subplots(len(temps), n_units, figsize=(1.9 * n_units, 2.1 * len(temps)), squeeze=False)
    for i, T in enumerate(temps):
        row = params[np.isclose(params["T"], T)].sort_values("task_id").iloc[0]
        L, nv, nh = int(row["L"]), int(row["n_visible"]), int(row["n_hidden"])
        W = np.asarray(row["W"], dtype=np.float64).reshape(nv, nh)
        order = np.argsort(-np.sum(W**2, axis=0))  # strongest units first
        for j in range(n_units):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= nh:
                ax.set_visible(False)
                continue
            field = W[:, order[j]].reshape(L, L)
            lim = np.abs(field).max() or 1.0
            ax.imshow(field, cmap="PuOr", vmin=-lim, vmax=lim)  # diverging, colour-blind safe
            if j == 0:
                ax.set_ylabel(f"T = {T:.3f}\n(row)", fontsize=8)
            ax.set_title(f"unit {order[j]}", fontsize=7)
    fig.suptitle(f"receptive fields $W_{{ij}}$ (L = {L}, n_h = {nh}, epoch {int(row['epoch'])}); "
                 "purple < 0 < orange; axes: column, row", fontsize=9)
    return save_figure(fig, path)


def flow_diagram_figure(flow: pd.DataFrame, steps: pd.DataFrame, fixed: pd.DataFrame, path) -> Path:
    """The three RG flows of one L: block-spin T -> T', RBM flow T_eff per step, stacked layers.

    ``flow`` is the ``rg_flow`` rows of one L, ``steps`` its :func:`analysis.flow.flow_steps`
    and ``fixed`` its :func:`analysis.flow.blockspin_fixed_points`. Block spins whose T' left
    the sampled range are drawn as open triangles at the edge of the range.
    """
    L = int(flow["L"].iloc[0])
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.6))
    ax = axes[0]
    lo, hi = flow["T"].min(), flow["T"].max()
    pad = 0.04 * (hi - lo)
    bs = steps[steps["kind"] == "blockspin"]
    for i, (level, g) in enumerate(bs.groupby("level")):
        st = curve_style(i)
        size = flow[(flow["kind"] == "blockspin") & (flow["level"] == level)]["size"].iloc[0]
        ax.errorbar(g["T"], g["T_eff"], yerr=g["T_eff_err"], ls="-", lw=0.8, ms=4, capsize=2,
                    label=f"level {level} ({L} -> {size})", **st)
        for side, y, marker in ((-1, lo - pad, "v"), (1, hi + pad, "^")):
            c = g[g["side"] == side]
            ax.plot(c["T"], [y] * len(c), ls="none", marker=marker, mfc="none", color=st["color"])
        if i == 0:  # arrows T -> T' of the first level: down below the fixed point, up above it
            for t, t1 in zip(g["T"], g["T_eff"].fillna(g["side"].map({-1: lo - pad, 1: hi + pad}))):
                if np.isfinite(t1) and abs(t1 - t) > 1e-9:
                    ax.annotate("", (t, t1), (t, t), arrowprops={"arrowstyle": "->", "color": st["color"],
                                                                 "alpha": 0.5, "lw": 0.8})
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=0.8, label="T' = T")
    ax.axhline(exact.TC, color="0.4", ls=":", lw=1)
    tc_line(ax)
    for r in fixed.itertuples():
        ax.errorbar([r.T_star], [r.T_star], xerr=[r.T_star_err] if np.isfinite(r.T_star_err) else None,
                    color="k", marker="*", ms=9, capsize=3, ls="none")
    ax.plot([], [], "k*", ms=8, label="fixed point T* (T' = T)")
    ax.plot([], [], "kv", mfc="none", label="T' outside the sampled range")
    ax.set_xlim(lo - 2 * pad, hi + 2 * pad)
    ax.set_ylim(lo - 2 * pad, hi + 2 * pad)
    ax.set_xlabel(_T_LABEL)
    ax.set_ylabel(r"renormalized temperature $T'$ [$J/k_B$]")
    ax.set_title(f"block spins, L = {L}: T' < T below T*, T' > T above", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1]
    rf = flow[flow["kind"] == "rbmflow"]
    cmap = plt.get_cmap("cividis")  # 15+ starting T: a sequential colour-blind-safe map
    for T, g in rf.groupby("T"):
        g = g.sort_values("level")
        ax.errorbar(g["level"], g["T_eff"], yerr=g["T_eff_err"], lw=1, ms=3, marker="o", capsize=1.5,
                    color=cmap((T - lo) / (hi - lo) if hi > lo else 0.5))
    ax.axhline(exact.TC, color="0.4", ls=":", lw=1, label=r"$T_c$ (Onsager)")
    if not rf.empty:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(lo, hi))
        fig.colorbar(sm, ax=ax, label=r"starting $T$ [$J/k_B$]")
        ax.legend(fontsize=7)
    ax.set_xlabel(r"RBM flow step $v \to h \to v$")
    ax.set_ylabel(r"effective temperature $T_{eff}$ [$J/k_B$]")
    ax.set_title(f"RBM flow, L = {L}", fontsize=9)
    st_rows = flow[flow["kind"] == "stacked"]
    for ax, col, label in ((axes[2], "extent", "receptive-field extent [lattice spacings]"),
                           (axes[3], "mean_alignment", r"mean block alignment at $b^k$ [dimensionless]")):
        for i, (layer, g) in enumerate(st_rows.groupby("level")):
            g = g.sort_values("T")
            ax.plot(g["T"], g[col], lw=1, ms=4, label=f"layer {layer} (n_h = {g['size'].iloc[0]})", **curve_style(i))
        if col == "extent":
            ax.axhline(np.sqrt((L * L - 1) / 6.0), color="0.5", ls="--", lw=0.8, label="uniform field (maximum)")
        tc_line(ax)
        ax.set_xlabel(_T_LABEL)
        ax.set_ylabel(label)
        ax.set_title(f"stacked RBMs, L = {L}", fontsize=9)
        if not st_rows.empty:
            ax.legend(fontsize=7)
    return save_figure(fig, path)


def flow_fields_figure(fields: dict, L: int, path, n_units: int = 4) -> Path:
    """Projected receptive fields W_1 ... W_k of every stacked layer, below, at and above Tc.

    ``fields`` maps T -> [F_1, F_2, ...] (:func:`analysis.flow.projected_fields`), F_k of shape
    (L*L, n_k); the strongest units (largest ||F[:, j]||) of each layer are shown.
    """
    temps = _three_temperatures(list(fields))
    n_layers = max(len(fields[T]) for T in temps)
    fig, axes = plt.subplots(len(temps) * n_layers, n_units,
                             figsize=(1.9 * n_units, 2.0 * len(temps) * n_layers), squeeze=False)
    for i, T in enumerate(temps):
        for k in range(n_layers):
            row = axes[i * n_layers + k]
            F = fields[T][k] if k < len(fields[T]) else np.zeros((L * L, 0))
            order = np.argsort(-np.sum(F**2, axis=0))
            for j, ax in enumerate(row):
                ax.set_xticks([])
                ax.set_yticks([])
                if j >= F.shape[1]:
                    ax.set_visible(False)
                    continue
                img = F[:, order[j]].reshape(L, L)
                lim = np.abs(img).max() or 1.0
                ax.imshow(img, cmap="PuOr", vmin=-lim, vmax=lim)
                ax.set_title(f"unit {order[j]}", fontsize=7)
                if j == 0:
                    ax.set_ylabel(f"T = {T:.3f}\nlayer {k + 1}", fontsize=8)
    fig.suptitle(f"stacked RBMs, L = {L}: projected receptive fields $W_1 \\cdots W_k$ (final epoch); "
                 "purple < 0 < orange", fontsize=9)
    return save_figure(fig, path)
