"""Closed forms: Kaufman's finite torus (lnZ, f, u, c, the c peak) and Onsager's infinite plane.

Per-spin quantities: f = -T lnZ / N, u = <E>/N, c = beta^2 (<E^2> - <E>^2) / N, m = sum(s)/N,
with the conventions of :mod:`.enumeration`, which they are validated against.

References
----------
B. Kaufman, Phys. Rev. 76, 1232 (1949).
A. E. Ferdinand and M. E. Fisher, Phys. Rev. 185, 832 (1969).
P. D. Beale, Phys. Rev. Lett. 76, 78 (1996).
L. Onsager, Phys. Rev. 65, 117 (1944); C. N. Yang, Phys. Rev. 85, 808 (1952).
"""

import numpy as np
from scipy import integrate, optimize, special

from contract.constants import TC
from workers.exact.enumeration import T_MIN_ANALYTIC, check_L, shaped, temperature_array

__all__ = ["kaufman", "kaufman_c_peak", "onsager", "spontaneous_magnetization"]


# --------------------------------------------------------------------------- Kaufman


def _gamma_jets(K, L):
    """gamma_l(K) and its first two K-derivatives for l = 0 .. 2L-1, each shape (n_T, 2L).

    cosh gamma_l = cosh 2K coth 2K - cos(pi l / L)  (l >= 1, gamma_l > 0) and
    gamma_0 = 2K + ln tanh K, negative above Tc (Ferdinand & Fisher 1969). With
    s = sinh 2K everything is written in s and 1 - cos = 2 sin^2 so that nothing cancels near
    Tc (s = 1) or at small angles; gamma'' uses the expanded numerator P(s) because the
    textbook form (y'' - cosh(gamma) gamma'^2) / sinh(gamma) loses ~2 log10(s) digits at low T.
    """
    s = np.sinh(2 * K)[:, None]
    ch = np.cosh(2 * K)[:, None]
    theta = np.pi * np.arange(2 * L) / L
    omc = 2 * np.sin(theta / 2) ** 2  # 1 - cos(theta), exact near theta = 0
    cos = np.cos(theta)
    q1 = (s - 1) ** 2 + omc * s  # s (cosh gamma - 1)
    q2 = s * s + omc * s + 1  # s (cosh gamma + 1)
    sinh_g = np.sqrt(q1) * np.sqrt(q2) / s
    gamma = np.log1p(q1 / s + sinh_g)
    d1 = 2 * ch * (s - 1) * (s + 1) / s**2 / sinh_g
    # gamma'' = P(s) / (s^2 Q^{3/2}), Q = q1 q2; P from expanding [y''(y^2-1) - y y'^2] s^5.
    coef = [np.full_like(cos, 4.0), -12 * cos, 8 * cos**2 + 12, -28 * cos, 4 * cos**2 + 24,
            -20 * cos, 4 * cos**2 + 8, -4 * cos]  # of s^0 .. s^7
    small = s <= 1
    x = np.where(small, s, 1 / s)  # a polynomial in s for s <= 1, in 1/s above: never overflows
    p_small = sum(c * x**k for k, c in enumerate(coef))
    p_large = sum(c * x ** (7 - k) for k, c in enumerate(coef))
    q_small = ((x - 1) ** 2 + omc * x) * (x * x + omc * x + 1)
    q_large = ((1 - x) ** 2 + omc * x) * (1 + omc * x + x * x)
    d2 = np.where(small, p_small / (x * x * q_small**1.5), x * p_large / q_large**1.5)
    # l = 0 is the one mode whose gamma changes sign; its derivatives are explicit.
    sign0 = np.sign(s[:, 0] - 1)
    gamma[:, 0] *= sign0
    d1[:, 0] = 2 + 2 / s[:, 0]
    d2[:, 0] = -4 * ch[:, 0] / s[:, 0] ** 2
    return gamma, d1, d2


def _factor_jets(a, a1, a2, kind):
    """log|2cosh a| or log|2sinh a| and its first two K-derivatives, given a, a', a''."""
    x = np.abs(a)
    e = np.exp(-2 * x)
    if kind == "cosh":
        lam = x + np.log1p(e)
        t = np.tanh(a)
        sech2 = 4 * e / (1 + e) ** 2
        return lam, t * a1, sech2 * a1**2 + t * a2
    lam = x + np.log(-np.expm1(-2 * x))
    coth = 1 / np.tanh(a)
    csch2 = 4 * e / np.expm1(-2 * x) ** 2
    return lam, coth * a1, -csch2 * a1**2 + coth * a2


def _log_sum_jets(products, z4, center):
    """ln(Z1 + Z2 + Z3 + Z4) and its first two K-derivatives.

    ``products`` holds (ln Z_i, (ln Z_i)', (ln Z_i)'') for the three terms that are always
    positive; ``z4`` = (ln|R|, (ln R)', (ln R)'', a0, a0', a0'') with Z4 = 2 sinh(a0) R kept
    factorised, because (ln Z4)' has a pole where gamma_0 = 0 (T = Tc) while Z4' does not.
    Derivatives are accumulated about ``center`` (~ the mean), so the second derivative is a
    sum of small terms rather than a difference of two numbers of size (2N)^2.
    """
    lam_r, g_r, q_r, a0, a0_1, a0_2 = z4
    lam_ref = np.maximum.reduce([p[0] for p in products] + [lam_r + np.abs(a0)])
    w = d = s2 = 0.0
    for lam, g, q in products:
        weight = np.exp(lam - lam_ref)
        dev = g - center
        w, d, s2 = w + weight, d + weight * dev, s2 + weight * (q + dev**2)
    # 2 sinh(a0) is centred on its own large-|a0| log-slope mu = sign(a0) a0', which makes its
    # centred derivatives exact (2 a0' e^{-|a0|}, ...) instead of a difference of O(a0'^2) terms.
    sign, e = np.sign(a0), np.exp(-2 * np.abs(a0))
    scale = np.exp(lam_r + np.abs(a0) - lam_ref)  # all three below are in units e^{|a0|} |R|
    f0 = sign * -np.expm1(-2 * np.abs(a0))
    f1 = 2 * a0_1 * e
    f2 = -4 * sign * a0_1**2 * e + (1 + e) * a0_2
    dev = g_r + sign * a0_1 - center
    w = w + scale * f0
    d = d + scale * (f1 + f0 * dev)
    s2 = s2 + scale * (f2 + 2 * f1 * dev + f0 * (q_r + dev**2))
    return lam_ref + np.log(w), center + d / w, s2 / w - (d / w) ** 2


def kaufman(L, T):
    """Exact lnZ, f, u, c of the L x L Ising torus (Kaufman 1949), vectorised over T.

    Z = 1/2 (2 sinh 2K)^{N/2} (Z1 + Z2 + Z3 + Z4) with, over r = 0 .. L-1,
    Z1 = prod 2 cosh(L gamma_{2r+1} / 2),  Z2 = prod 2 sinh(L gamma_{2r+1} / 2),
    Z3 = prod 2 cosh(L gamma_{2r} / 2),    Z4 = prod 2 sinh(L gamma_{2r} / 2),
    (Ferdinand & Fisher 1969; Beale 1996). Z4 < 0 above Tc where gamma_0 < 0, and
    Z4 = 0 at T = Tc. Everything is evaluated in log space, and u and c come from analytic
    K-derivatives of gamma_l (no finite differences). Relative accuracy, measured against
    50-digit arithmetic for L <= 32: lnZ and u ~1e-15, c ~1e-12 for 0.5 <= T <= 50. c is a
    cancellation of O(e^{-2/T}) terms at low T (2e-9 at T = 0.3, useless below T ~ 0.2)
    and u, c lose ~T^2 * 1e-16 at very high T.

    Parameters
    ----------
    L : int
        Linear size, >= 2; odd L is supported (checked against enumeration for L = 3).
        The bond convention for L = 2 is that of the module docstring.
    T : float or ndarray
        Temperature(s), 0.01 <= T < inf; any shape (below 0.01, sinh(2/T)^2 overflows).

    Returns
    -------
    dict
        ``lnZ``, ``f`` = -T lnZ/N, ``u`` = -(1/N) dlnZ/dbeta, ``c`` = (beta^2/N) d2lnZ/dbeta2;
        floats for scalar T, else arrays shaped like T. Costs O(len(T) L).
    """
    L = check_L(L, 2)
    temps, shape, scalar = temperature_array(T, T_MIN_ANALYTIC)
    n = L * L
    K = 1.0 / temps
    gamma, d1, d2 = _gamma_jets(K, L)
    a, a1, a2 = L * gamma / 2, L * d1 / 2, L * d2 / 2
    odd, even = slice(1, None, 2), slice(2, None, 2)
    products = [
        [v.sum(axis=1) for v in _factor_jets(a[:, odd], a1[:, odd], a2[:, odd], "cosh")],
        [v.sum(axis=1) for v in _factor_jets(a[:, odd], a1[:, odd], a2[:, odd], "sinh")],
        [v.sum(axis=1) for v in _factor_jets(a[:, ::2], a1[:, ::2], a2[:, ::2], "cosh")],
    ]
    rest = [v.sum(axis=1) for v in _factor_jets(a[:, even], a1[:, even], a2[:, even], "sinh")]
    z4 = (*rest, a[:, 0], a1[:, 0], a2[:, 0])
    # Centring on Z1's log-slope proved as accurate as re-centring on the mean (50-digit check).
    ln_s, dln_s, d2ln_s = _log_sum_jets(products, z4, center=products[0][1])
    log_2sinh2k = 2 * K + np.log(-np.expm1(-4 * K))
    lnz = np.log(0.5) + n / 2 * log_2sinh2k + ln_s
    dlnz = n / np.tanh(2 * K) + dln_s
    d2lnz = -2 * n / np.sinh(2 * K) ** 2 + d2ln_s
    values = {"lnZ": lnz, "f": -temps * lnz / n, "u": -dlnz / n, "c": K**2 * d2lnz / n}
    return shaped(values, shape, scalar)


def kaufman_c_peak(L):
    """Position and height of the maximum of Kaufman's c(T) for the L x L torus.

    A grid over 0.5 <= T <= 6 brackets the maximum, then scipy's bounded scalar minimiser
    refines it to |dT| ~ 1e-10. For large L, T_peak -> TC from above and
    c_max ~ (8 Kc^2 / pi) ln L + const (Ferdinand & Fisher 1969, sec. 4).

    Parameters
    ----------
    L : int
        Linear size, >= 2.

    Returns
    -------
    T_peak, c_max : float
    """
    L = check_L(L, 2)
    grid = np.linspace(0.5, 6.0, 221)
    i = int(np.argmax(kaufman(L, grid)["c"]))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = optimize.minimize_scalar(lambda t: -kaufman(L, t)["c"], bounds=(lo, hi),
                                   method="bounded", options={"xatol": 1e-10})
    return float(res.x), float(-res.fun)


# --------------------------------------------------------------------------- Onsager


def _onsager_integral(k_prime):
    """(1/pi) int_0^{pi/2} ln[(1 + sqrt(1 - kappa^2 sin^2 phi)) / 2] dphi; k'^2 = 1 - kappa^2."""
    def integrand(phi):
        return np.log1p(np.sqrt(np.cos(phi) ** 2 + (k_prime * np.sin(phi)) ** 2)) - np.log(2)

    value, _ = integrate.quad(integrand, 0.0, np.pi / 2, epsabs=1e-14, epsrel=1e-13, limit=200)
    return value / np.pi


def onsager(T):
    """Onsager's per-spin f, u, c of the infinite square lattice.

    With K = 1/T, kappa = 2 sinh 2K / cosh^2 2K and k' = |1 - sinh^2 2K| / cosh^2 2K,
      -f/T = ln(2 cosh 2K) + (1/pi) int_0^{pi/2} ln[(1 + sqrt(1 - kappa^2 sin^2 phi)) / 2] dphi,
      u = -coth 2K [1 + (2/pi)(2 tanh^2 2K - 1) K1(kappa)],
      c = -K^2 du/dK
        = (2 K^2 / sinh^2 2K) [(2/pi)(cosh^2 2K (K1 - E1) - (2 tanh^2 2K - 1) K1) - 1],
    K1, E1 the complete elliptic integrals of modulus kappa (Huang, Statistical Mechanics,
    ch. 15; c derived here from u). f uses adaptive quadrature (~1e-13). At T == TC,
    u = -sqrt(2) and c = +inf (the logarithmic singularity). c cancels like e^{-8/T} at low T:
    relative error 3e-11 at T = 0.5, 2e-6 at T = 0.3 (absolute error stays ~1e-16).

    Parameters
    ----------
    T : float or ndarray
        Temperature(s), 0.01 <= T < inf; any shape.

    Returns
    -------
    dict
        ``f``, ``u``, ``c``; floats for scalar T, else arrays shaped like T.
    """
    temps, shape, scalar = temperature_array(T, T_MIN_ANALYTIC)
    K = 1.0 / temps
    s, ch = np.sinh(2 * K), np.cosh(2 * K)
    k_prime = np.abs(1 - s) * (1 + s) / ch**2
    k1 = special.ellipkm1(k_prime**2)
    e1 = special.ellipe(1 - k_prime**2)
    two_t2_minus_1 = (s - 1) * (s + 1) / ch**2  # 2 tanh^2 2K - 1, exact near Tc
    with np.errstate(invalid="ignore"):  # 0 * inf at T == TC, fixed below
        k1_term = np.where(k_prime == 0, 0.0, two_t2_minus_1 * k1)
    coth = ch / s
    log_2cosh2k = 2 * K + np.log1p(np.exp(-4 * K))
    beta_f = -(log_2cosh2k + np.array([_onsager_integral(kp) for kp in k_prime]))
    u = -coth * (1 + 2 / np.pi * k1_term)
    # c = -K^2 du/dK with dK1/dkappa = E1 / (kappa k'^2) - K1 / kappa; the 1/k'^2 pole
    # cancels against (2 tanh^2 2K - 1) analytically, leaving only K1's log divergence at TC.
    c = 2 * K**2 / s**2 * (2 / np.pi * (ch**2 * (k1 - e1) - k1_term) - 1)
    c = np.where(temps == TC, np.inf, np.maximum(c, 0.0))  # clip low-T rounding noise; at the
    # float TC, sinh(2/TC) rounds to 1 +- 1 ulp and the formula would give a finite c ~ 18
    return shaped({"f": temps * beta_f, "u": u, "c": c}, shape, scalar)


def spontaneous_magnetization(T):
    """Spontaneous magnetization per spin of the infinite lattice (Onsager; Yang 1952).

    m0(T) = (1 - sinh(2/T)^-4)^(1/8) for T < TC, and 0 for T >= TC.

    Parameters
    ----------
    T : float or ndarray
        Temperature(s), > 0; any shape.

    Returns
    -------
    float or ndarray shaped like T
    """
    temps, shape, scalar = temperature_array(T)
    with np.errstate(invalid="ignore"):  # the negative base above TC is masked out
        m = np.where(temps < TC, (1 - np.sinh(2 / temps) ** -4.0) ** 0.125, 0.0)
    return float(m[0]) if scalar else m.reshape(shape)

