"""Figures of the RBM section: the physics an RBM reproduces, and every signature beside its null.

Matplotlib (Agg), PNG, Okabe-Ito colours with one marker per curve (nothing depends on colour
alone), axes labelled in words with units: T in J/k_B, e in J per spin, C in k_B per spin, chi in
1/J per spin, KL in nats per spin; ratios, R^2, scores and counts are dimensionless.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import exact_reference as exact
from .figures import curve_style, plt, save_figure, tc_line
from .rbm_signatures import GROUP, SIGNATURE_LABELS

__all__ = ["rbm_physics_figure", "signature_null_figure", "hidden_units_figure"]

_T_LABEL = r"temperature $T$ [$J/k_B$]"
_PHYSICS = (("e", r"energy $e$ [$J$/spin]"), ("m_abs", r"$\langle|m|\rangle$ [per spin]"),
            ("C", r"heat capacity $C$ [$k_B$/spin]"), ("chi", r"susceptibility $\chi$ [$1/J$]"))


def _seed_mean(frame: pd.DataFrame, col: str, by) -> pd.DataFrame:
    """Mean of ``col`` over seeds with the standard error (one seed: its own ``col_err``)."""
    g = frame.groupby(by)
    out = g[col].agg(["mean", "std", "count"]).reset_index()
    own = g[f"{col}_err"].mean().reset_index(drop=True) if f"{col}_err" in frame.columns else np.nan
    out["err"] = np.where(out["count"] > 1, out["std"] / np.sqrt(out["count"]), own)
    return out


def rbm_physics_figure(rbm: pd.DataFrame, path) -> Path:
    """e, |m|, C and chi of RBM-generated configurations against T, over MC and Kaufman.

    Filled markers: the RBMs' own samples (mean and standard error over seeds, per L and hidden
    size); open black markers: Monte Carlo on the very samples the RBMs were trained on; lines:
    Kaufman's exact e and C of the same finite torus.
    """
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    axes = axes.ravel()
    keys = sorted(rbm.groupby(["L", "n_hidden"]).groups)
    for i, (L, nh) in enumerate(keys):
        g = rbm[(rbm["L"] == L) & (rbm["n_hidden"] == nh)]
        for ax, (col, label) in zip(axes, _PHYSICS):
            m = _seed_mean(g, col, "T")
            ax.errorbar(m["T"], m["mean"], yerr=m["err"], ls="-", lw=0.8, ms=4, capsize=2,
                        label=f"RBM, L = {L}, $n_h$ = {nh}", **curve_style(i))
            ax.set_ylabel(label)
    for j, L in enumerate(sorted(rbm["L"].unique())):
        g = rbm[rbm["L"] == L]
        for ax, (col, _) in zip(axes, _PHYSICS):
            mc = g.groupby("T")[[f"mc_{col}", f"mc_{col}_err"]].first().reset_index()
            ax.errorbar(mc["T"], mc[f"mc_{col}"], yerr=mc[f"mc_{col}_err"], ls="none", ms=6,
                        mfc="none", color="k", marker=curve_style(j)["marker"], capsize=2,
                        label=f"Monte Carlo, L = {L}")
        dense = np.linspace(g["T"].min(), g["T"].max(), 200)
        ref = exact.kaufman(int(L), dense)
        axes[0].plot(dense, ref["u"], color="0.3", lw=0.8)
        axes[2].plot(dense, ref["c"], color="0.3", lw=0.8)
    axes[0].plot([], [], color="0.3", lw=0.8, label="Kaufman exact (same L)")
    for ax in axes:
        ax.set_xlabel(_T_LABEL)
        tc_line(ax)
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def signature_null_figure(table: pd.DataFrame, names: list[str], path) -> Path:
    """Signature curves against T (error bars), each with its null dashed in the same colour."""
    n = len(names)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.9 * rows), squeeze=False)
    keys = sorted(table.groupby(GROUP).groups)
    style_of = {k: i for i, k in enumerate(keys)}
    for ax, name in zip(axes.ravel(), names):
        data = table[table["signature"] == name]
        for key, g in data.groupby(GROUP):
            st = curve_style(style_of[key])
            g = g.sort_values("T")
            L, nh, method = key
            ax.errorbar(g["T"], g["value"], yerr=g["err"].fillna(0), ms=4, capsize=2, lw=1,
                        label=f"L = {L}, $n_h$ = {nh}", **st)
            if g["null"].notna().any():
                ax.errorbar(g["T"], g["null"], yerr=g["null_err"].fillna(0), ls="--", lw=0.8,
                            capsize=0, color=st["color"], marker="none")
        ax.plot([], [], ls="--", color="0.4", lw=0.8, label=_NULL_LABEL.get(_base(name), "null"))
        tc_line(ax)
        ax.set_xlabel(_T_LABEL)
        ax.set_ylabel(_label(name))
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax in axes.ravel()[:n]:
        ax.legend(fontsize=6)
    return save_figure(fig, path)


_NULL_LABEL = {"alignment": "null: sites permuted", "alignment_excess": "null: excess at epoch 0",
               "corr_excess": "null: excess at epoch 0"}


def _base(name: str) -> str:
    head, _, tail = name.rpartition("_b")
    return head if tail.isdigit() else name


def _label(name: str) -> str:
    head, _, tail = name.rpartition("_b")
    if tail.isdigit():
        words = {"alignment": "block-alignment score", "alignment_excess": "alignment excess over null",
                 "corr_excess": "|corr| excess over null"}
        return f"{words.get(head, head)}, b = {tail}"
    return SIGNATURE_LABELS.get(name, name) + ("" if name.startswith("rel_") else "")


def hidden_units_figure(table: pd.DataFrame, path) -> Path:
    """|RBM/MC - 1| of e and C against the number of hidden units, one line per T, per L.

    Where the line drops to the noise floor, that many hidden units reproduce the physics at
    that temperature (Torlai & Melko 2016); near Tc it takes more.
    """
    sizes = sorted(table["L"].unique())
    fig, axes = plt.subplots(len(sizes), 2, figsize=(10, 3.8 * len(sizes)), squeeze=False)
    cmap = plt.get_cmap("coolwarm")
    for row, L in zip(axes, sizes):
        data = table[table["L"] == L]
        temps = sorted(data["T"].unique())
        for k, T in enumerate(temps):
            g = data[data["T"] == T].sort_values("n_hidden")
            colour = cmap(k / max(len(temps) - 1, 1))
            for ax, col in zip(row, ("rel_e", "rel_C")):
                ax.errorbar(g["n_hidden"], np.abs(g[col]), yerr=g[f"{col}_err"], color=colour,
                            marker="o", ms=3, lw=1, capsize=2, label=f"T = {T:.3f}")
        for ax, what in zip(row, ("e", "C")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel(r"hidden units $n_h$")
            ax.set_ylabel(f"|RBM {what} / MC {what} - 1|, L = {L}")
            ax.axvline(L * L, color="0.5", ls=":", lw=1)
        row[0].legend(fontsize=6, ncol=2)
    return save_figure(fig, path)
