"""Where an adaptive sweep's next temperatures go: the estimate a ``[refine]`` round pins down,
and the temperatures that shrink its error most.

Targets:

* ``tc``: the Binder crossing of the two largest lattice sizes by multiple-histogram
  reweighting (:func:`~analysis.transition.binder_crossings_reweighted`), the report's headline
  Tc. Every lattice size gets the same new temperatures, around that crossing, so every pair
  keeps common temperatures (the crossings of the smaller pairs lie within a few 0.001 of it
  and gain too).
* ``peaks``: the C and chi peak positions of every lattice size by multiple-histogram
  reweighting (:func:`~analysis.transition.reweighted_peaks`); the error is the largest of
  their error bars; each size gets its own new temperatures, split between its two peaks.

Placement: while the crossing's bracket is not resolved (its end runs' histograms barely
overlap), ``k`` points evenly inside the bracket, where the grid's sign change says it is;
then around a centre T* with error sigma, ``k`` points evenly over T* +- w, where
w = max(2 sigma, reach / 2, gap / 4): ``reach`` is the lattice's histogram reach at T*
(:func:`~analysis.transition.reweighting_reach`, how far reweighting carries one run) and ``gap``
the distance between the run temperatures around T* (a crossing interpolated across a wide gap
is less certain than its bootstrap says). A point closer than w / (2k) to a temperature already
sampled moves to the free spot of [T* - w, T* + w] farthest from all of them; no temperature is
ever repeated. Everything here is deterministic given the data and the Generator.
"""

from __future__ import annotations

import math

import numpy as np

from .resampling import BlockedHistogram
from .transition import MIN_OVERLAP, binder_crossings_reweighted, reweighted_peaks, reweighting_reach

__all__ = ["estimate", "propose", "DECIMALS"]

#: New temperatures are rounded to this many decimals (1e-5 in T).
DECIMALS = 5
N_BOOT = 100
_CANDIDATES = 401


def _nearest(hists: list[BlockedHistogram], T: float) -> BlockedHistogram:
    return min(hists, key=lambda h: (abs(h.T - T), h.T))


def _fallback_centre(hists: list[BlockedHistogram]) -> tuple[float, float]:
    """Where the transition is when no crossing was found: the grid maximum of the specific heat
    (error: the distance to its neighbours)."""
    from .reweighting import reweight_single

    hists = sorted(hists, key=lambda h: h.T)
    c = [float(reweight_single(h, h.T)["C"][0]) for h in hists]
    i = int(np.nanargmax(c))
    T = [h.T for h in hists]
    gap = max(T[min(i + 1, len(T) - 1)] - T[i], T[i] - T[max(i - 1, 0)])
    return T[i], gap / 2


def estimate(hists_by_L: dict[int, list[BlockedHistogram]], target: str, rng: np.random.Generator,
             n_boot: int = N_BOOT) -> dict:
    """The target's estimate from the runs so far, and the centres to place new points around.

    Returns
    -------
    dict: ``value`` and ``error`` of the target (NaN and inf if it cannot be estimated yet),
    ``what`` (which quantity), ``parts`` (every crossing or peak with its error) and
    ``centres``: {L: [(T*, sigma), ...]}.
    """
    sizes = sorted(hists_by_L)
    if target == "tc":
        cross = binder_crossings_reweighted(hists_by_L, rng, n_boot)
        parts = [{"quantity": f"Binder crossing {int(r.L_small)}/{int(r.L_large)}", "T": float(r.T_cross),
                  "error": float(r.T_cross_err)} for r in cross.itertuples()]
        last = cross[(cross["L_large"] == sizes[-1])] if not cross.empty else cross
        if last.empty or not np.isfinite(last["T_cross"].iloc[0]):
            value, error = float("nan"), float("inf")
            centre = _fallback_centre(hists_by_L[sizes[-1]])
        elif last["bracket_overlap"].iloc[0] < MIN_OVERLAP or not np.isfinite(last["T_cross_err"].iloc[0]):
            # the bracket's runs barely overlap: a place to look, not an estimate with an error
            value, error = float(last["T_cross"].iloc[0]), float("inf")
            lo, hi = float(last["T_lo"].iloc[0]), float(last["T_hi"].iloc[0])
            centre = ((lo + hi) / 2, (hi - lo) / 2, "bracket")  # the crossing is inside: fill it
        else:
            value, error = float(last["T_cross"].iloc[0]), float(last["T_cross_err"].iloc[0])
            centre = (value, error)
        return {"what": f"Binder crossing {sizes[-2]}/{sizes[-1]}", "value": value, "error": error,
                "parts": parts, "centres": {L: [centre] for L in sizes}}
    if target != "peaks":
        raise ValueError(f"unknown refine target {target!r}")
    parts, centres, errors = [], {}, []
    for L in sizes:
        peaks = reweighted_peaks(hists_by_L[L], rng, ("C", "chi"), n_boot)
        centres[L] = []
        for obs in ("C", "chi"):
            rows = peaks[peaks["observable"] == obs]
            row = rows[rows["method"] == "multi"] if (rows["method"] == "multi").any() else rows
            T, err = float(row["T_peak"].iloc[0]), float(row["T_peak_err"].iloc[0])
            if bool(row["at_edge"].iloc[0]) or not np.isfinite(err):
                err = float("inf")  # a maximum on the search boundary is not an estimate
            parts.append({"quantity": f"{obs} peak L={L}", "T": T, "error": err})
            errors.append(err)
            centres[L].append((T, err if np.isfinite(err) else _fallback_centre(hists_by_L[L])[1]))
    worst = int(np.argmax(errors))
    return {"what": "C and chi peak positions (largest error)", "value": parts[worst]["T"],
            "error": float(errors[worst]), "parts": parts, "centres": centres}


def _half_width(hists: list[BlockedHistogram], centre: float, sigma: float) -> float:
    near = _nearest(hists, centre)
    T = np.array(sorted(h.T for h in hists))
    below, above = T[T <= centre], T[T > centre]
    gap = (above[0] if above.size else T[-1]) - (below[-1] if below.size else T[0])
    sigma = sigma if np.isfinite(sigma) else gap
    return float(min(max(2 * sigma, reweighting_reach(near) / 2, gap / 4, 1e-3), 0.5 * centre))


def _place(centre: float, w: float, k: int, taken: list[float]) -> list[float]:
    """k new temperatures in [centre - w, centre + w], none within w / (2k) of ``taken``."""
    gap = w / (2 * k)
    lattice = np.linspace(centre - w, centre + w, _CANDIDATES)
    chosen: list[float] = []
    for i in range(k):
        want = centre + w * (2 * (i + 0.5) / k - 1)
        others = np.array(taken + chosen)
        if others.size == 0 or np.min(np.abs(others - want)) >= gap:
            t = want
        else:
            dist = np.min(np.abs(lattice[:, None] - others[None, :]), axis=1)
            if dist.max() < gap / 2:
                continue  # the interval is full: fewer points this round
            t = float(lattice[int(np.argmax(dist))])
        t = round(float(t), DECIMALS)
        if t > 0 and all(abs(t - o) > 10 ** -DECIMALS for o in taken + chosen):
            chosen.append(t)
    return sorted(chosen)


def propose(hists_by_L: dict[int, list[BlockedHistogram]], found: dict, target: str,
            points: int) -> dict[int, list[float]]:
    """New temperatures per lattice size (ascending) for the next round, from an
    :func:`estimate`'s centres; never a temperature that L already has."""
    sizes = sorted(hists_by_L)
    if target == "tc":
        taken = sorted({h.T for L in sizes for h in hists_by_L[L]})
        centre, sigma, *bracket = found["centres"][sizes[-1]][0]
        w = sigma if bracket else _half_width(hists_by_L[sizes[-1]], centre, sigma)
        new = sorted(_place(centre, w, points, taken))
        return {L: new for L in sizes}
    out = {}
    for L in sizes:
        taken = sorted(h.T for h in hists_by_L[L])
        centres = found["centres"][L]
        new: list[float] = []
        for j, (centre, sigma) in enumerate(centres):
            k = math.ceil(points / len(centres)) if j == 0 else points - len(new)
            if k <= 0 or not np.isfinite(centre):
                continue
            new += _place(centre, _half_width(hists_by_L[L], centre, sigma), k, taken + new)
        out[L] = sorted(new)
    return out
