"""Multi-spin-coded checkerboard Metropolis: 64 independent replicas in the bits of uint64 words.

Replica ``k`` (0 <= k < 64) of the L x L lattice lives in bit ``k`` of a ``uint64`` array of
shape (L, L): bit set means spin +1 (conventions in :mod:`workers.ising.lattice`). All 64 replicas
run the same checkerboard schedule as :mod:`workers.ising.metropolis` (colour 0 sites row-major,
then colour 1), each with its own random numbers, so they are 64 independent Markov chains of
the same (L, T); one word operation advances all of them.

Per site, with ``a_j = s XOR n_j`` the "bond j is unsatisfied" bits of the four neighbours,
the number of unsatisfied bonds ``u`` gives ``dE = 2 s h = 8 - 4 u``. So ``u >= 2`` is
always accepted, and ``u = 1`` (``u = 0``) is accepted with ``p4 = exp(-4 beta)``
(``p8 = exp(-8 beta)``). The masks "u = 0" and "u = 1" come from a bit-sliced adder.

The Bernoulli bits are exact, not an approximation: replica k draws a 53-bit uniform integer
``U_k`` whose binary digits, most significant first, are bit k of successive random words,
and accepts iff ``U_k < t`` with ``t = ceil(p 2**53)`` -- the same event, with the same
probability, as the single-chain kernel's ``(x >> 11) < t``. Digit by digit the comparison is
decided as soon as ``U_k``'s digit differs from ``t``'s, so the words are drawn lazily: one
per digit while any replica that needs randomness is still undecided (about
``log2(64) + 1.3 = 7.3`` words per site, whatever T). Replicas with ``u >= 2`` draw nothing.
The words come from xoroshiro128++ (:mod:`workers.ising.rng`), all of whose bits are good.

Energies and magnetizations of the 64 replicas are counted "vertically" with bit-sliced binary
counters (one plane per bit of the count), so measuring costs O(N) word operations, not 64 N.

References
----------
M. Creutz, L. Jacobs and C. Rebbi, Phys. Rev. D 20, 1915 (1979) (multi-spin coding);
N. Ito and Y. Kanada, Supercomputer 5, 31 (1988);
B. Block, P. Virnau and T. Preis, Comput. Phys. Commun. 181, 1549 (2010).
"""

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from contract.constants import N_REPLICAS
from workers.ising.lattice import check_count, check_size
from workers.ising.metropolis import acceptance_table
from workers.ising.rng import check_state, reference_xoroshiro128pp, xoroshiro128pp

__all__ = [
    "N_REPLICAS",
    "pack_replicas",
    "unpack_replicas",
    "random_replicas",
    "threshold_digits",
    "multispin_sweeps",
    "replica_energy_magnetization",
]

_DIGITS = 53
_PLANES = 40  # counter planes: counts up to 2 N < 2**40 for any lattice that fits in memory
_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


@intrinsic
def _popcount(typingctx, x):
    """LLVM ``ctpop`` on a uint64 (one POPCNT instruction on x86-64)."""
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return types.uint64(types.uint64), codegen


def threshold_digits(beta):
    """Binary digits of the acceptance thresholds as all-ones / all-zero words.

    Parameters
    ----------
    beta : float > 0

    Returns
    -------
    digits : ndarray of uint64, shape (2, 53)
        ``digits[0, i]`` is all ones iff digit i (most significant first) of
        ``t4 = ceil(exp(-4 beta) 2**53)`` is 1; ``digits[1]`` likewise for ``exp(-8 beta)``.
    always : ndarray of uint64, shape (2,)
        All ones where ``t >= 2**53`` (p rounds to 1: accept without drawing), else 0.
    """
    table = acceptance_table(beta)
    digits = np.zeros((2, _DIGITS), dtype=np.uint64)
    always = np.zeros(2, dtype=np.uint64)
    for row, p in enumerate((table[3], table[4])):
        t = int(np.ceil(p * 2.0**53))
        if t >= 2**53:
            always[row] = _ALL
            continue
        for i in range(_DIGITS):
            if (t >> (_DIGITS - 1 - i)) & 1:
                digits[row, i] = _ALL
    return digits, always


@njit(cache=True)
def multispin_kernel(words, digits, always, n_sweeps, state):
    """``n_sweeps`` checkerboard sweeps of all 64 replicas in place; return accepted flips."""
    L = words.shape[0]
    d4 = digits[0]
    d8 = digits[1]
    always4 = always[0]
    always8 = always[1]
    s0 = state[0]
    s1 = state[1]
    accepted = np.uint64(0)
    for _ in range(n_sweeps):
        for colour in range(2):
            for r in range(L):
                up = r - 1 if r > 0 else L - 1
                down = r + 1 if r < L - 1 else 0
                for c in range((r + colour) & 1, L, 2):
                    left = c - 1 if c > 0 else L - 1
                    right = c + 1 if c < L - 1 else 0
                    s = words[r, c]
                    a1 = s ^ words[up, c]
                    a2 = s ^ words[down, c]
                    a3 = s ^ words[r, left]
                    a4 = s ^ words[r, right]
                    x = a1 ^ a2
                    z = a3 ^ a4
                    one = (x ^ z) & ~((a1 & a2) | (a3 & a4))
                    zero = ~(a1 | a2 | a3 | a4)
                    flip = ~(zero | one) | (one & always4) | (zero & always8)
                    undecided = (one & ~always4) | (zero & ~always8)
                    i = 0
                    while undecided != 0 and i < 53:
                        s0, s1, R = xoroshiro128pp(s0, s1)
                        t = (one & d4[i]) | (zero & d8[i])
                        flip |= undecided & t & ~R  # digit of U < digit of t: accept
                        undecided &= ~(R ^ t)  # equal digits: still undecided
                        i += 1
                    words[r, c] = s ^ flip
                    accepted += _popcount(flip)
    state[0] = s0
    state[1] = s1
    return accepted


@njit(cache=True)
def _count_add(planes, x, p):
    """Add the bits of ``x``, with weight ``2**p``, to 64 bit-sliced binary counters
    (``planes[q]`` holds digit q of all 64 counts)."""
    while x != 0:
        carry = planes[p] & x
        planes[p] ^= x
        x = carry
        p += 1


@njit(cache=True)
def _csa(a, b, c):
    """Carry-save adder on 64 lanes: ``a + b + c = 2 high + low`` bitwise."""
    u = a ^ b
    return (a & b) | (u & c), u ^ c


@njit(cache=True)
def _count_bits(x, planes):
    """``planes`` += per-bit-position counts of the words ``x`` (shape (n,)).

    Harley-Seal: a carry-save adder tree folds every 8 words into one word of weight 8, so
    the branchy ripple-carry :func:`_count_add` runs once per 8 words, not once per word.
    """
    ones = np.uint64(0)
    twos = np.uint64(0)
    fours = np.uint64(0)
    n = x.shape[0]
    j = 0
    while j + 8 <= n:
        twos_a, ones = _csa(ones, x[j], x[j + 1])
        twos_b, ones = _csa(ones, x[j + 2], x[j + 3])
        fours_a, twos = _csa(twos, twos_a, twos_b)
        twos_a, ones = _csa(ones, x[j + 4], x[j + 5])
        twos_b, ones = _csa(ones, x[j + 6], x[j + 7])
        fours_b, twos = _csa(twos, twos_a, twos_b)
        eights, fours = _csa(fours, fours_a, fours_b)
        _count_add(planes, eights, 3)
        j += 8
    while j < n:
        _count_add(planes, x[j], 0)
        j += 1
    _count_add(planes, ones, 0)
    _count_add(planes, twos, 1)
    _count_add(planes, fours, 2)


@njit(cache=True)
def _counts(planes, out):
    """``out[k]`` = the count held by counter k."""
    for k in range(64):
        n = 0
        for p in range(planes.shape[0]):
            n += np.int64((planes[p] >> np.uint64(k)) & _ONE) << p
        out[k] = n


@njit(cache=True)
def replica_energy_magnetization_kernel(words, E, M, bonds):
    """E[k], M[k] of replica k: E = 2 (unsatisfied bonds) - 2N, M = 2 (up spins) - N.

    ``bonds`` (uint64, shape (2N,)) is work space for the unsatisfied-bond words.
    """
    L = words.shape[0]
    N = L * L
    planes = np.zeros(_PLANES, dtype=np.uint64)
    _count_bits(words.reshape(N), planes)
    _counts(planes, M)
    j = 0
    for r in range(L):
        down = r + 1 if r < L - 1 else 0
        for c in range(L):
            right = c + 1 if c < L - 1 else 0
            bonds[j] = words[r, c] ^ words[r, right]
            bonds[j + 1] = words[r, c] ^ words[down, c]
            j += 2
    planes[:] = 0
    _count_bits(bonds, planes)
    _counts(planes, E)
    for k in range(64):
        M[k] = 2 * M[k] - N
        E[k] = 2 * E[k] - 2 * N


@njit(cache=True)
def unpack_rows(words, k0, n, out, row0):
    """``out[row0 + j] = spins of replica k0 + j`` (flattened, int8), j < n."""
    flat = words.reshape(words.size)
    for j in range(n):
        shift = np.uint64(k0 + j)
        for i in range(flat.shape[0]):
            out[row0 + j, i] = np.int8(2 * np.int64((flat[i] >> shift) & _ONE) - 1)


def _check_words(words):
    if not (isinstance(words, np.ndarray) and words.dtype == np.uint64 and words.ndim == 2
            and words.shape[0] == words.shape[1] and words.shape[0] >= 2
            and words.flags.c_contiguous and words.flags.writeable):
        raise ValueError("words must be a writeable C-contiguous uint64 array of shape (L, L), "
                         "L >= 2; make one with random_replicas or pack_replicas")


def pack_replicas(spins):
    """Pack up to 64 lattices into multi-spin words.

    Parameters
    ----------
    spins : ndarray of int8, shape (n, L, L), n <= 64, values +-1

    Returns
    -------
    words : ndarray of uint64, shape (L, L)
        Bit k = 1 iff replica k has spin +1 there; bits k >= n are 0 (spin -1).
    """
    spins = np.asarray(spins)
    if spins.ndim != 3 or spins.shape[0] > N_REPLICAS or spins.shape[1] != spins.shape[2]:
        raise ValueError(f"spins must have shape (n <= 64, L, L), got {spins.shape}")
    if not np.all(np.abs(spins) == 1):
        raise ValueError("spins must contain only -1 and +1")
    bits = (spins > 0).astype(np.uint64)
    shifts = np.arange(spins.shape[0], dtype=np.uint64)[:, None, None]
    return np.ascontiguousarray(np.bitwise_or.reduce(bits << shifts, axis=0), dtype=np.uint64)


def unpack_replicas(words, n=N_REPLICAS):
    """Inverse of :func:`pack_replicas`: the first ``n`` replicas as int8, shape (n, L, L)."""
    _check_words(words)
    n = check_count(n, "n")
    if n > N_REPLICAS:
        raise ValueError(f"n must be <= 64, got {n}")
    L = words.shape[0]
    out = np.empty((n, L * L), dtype=np.int8)
    unpack_rows(words, 0, n, out, 0)
    return out.reshape(n, L, L)


def random_replicas(L, rng):
    """64 independent infinite-temperature starts: uniformly random words, shape (L, L)."""
    L = check_size(L)
    return rng.integers(0, 2**64, size=(L, L), dtype=np.uint64, endpoint=False)


def multispin_sweeps(words, beta, n_sweeps, rng_state):
    """Checkerboard Metropolis sweeps of 64 replicas at once, in place.

    Parameters
    ----------
    words : ndarray of uint64, shape (L, L), L even
        Replica k in bit k (see the module docstring); modified in place.
    beta : float > 0
    n_sweeps : int >= 0
        Each sweep is 64 N attempted flips (N per replica).
    rng_state : ndarray of uint64, shape (2,)
        xoroshiro128++ state (:func:`workers.ising.rng.make_rng_state`); advanced in place.

    Returns
    -------
    int
        Accepted flips summed over the replicas.
    """
    _check_words(words)
    if words.shape[0] % 2:
        raise ValueError(f"checkerboard Metropolis needs an even L, got L = {words.shape[0]}")
    check_state(rng_state)
    n_sweeps = check_count(n_sweeps, "n_sweeps")
    digits, always = threshold_digits(beta)
    return int(multispin_kernel(words, digits, always, n_sweeps, rng_state))


def replica_energy_magnetization(words):
    """Total energy and magnetization of each of the 64 replicas.

    Returns
    -------
    E, M : ndarray of int64, shape (64,)
        ``E_k = -sum_<ij> s_i s_j`` and ``M_k = sum_i s_i`` of replica k.
    """
    _check_words(words)
    E = np.empty(N_REPLICAS, dtype=np.int64)
    M = np.empty(N_REPLICAS, dtype=np.int64)
    replica_energy_magnetization_kernel(words, E, M, np.empty(2 * words.size, dtype=np.uint64))
    return E, M


def _multispin_reference(words, beta, n_sweeps, rng_state):
    """Slow reference: 64 scalar Metropolis chains, one replica and one digit at a time.

    For every site of a colour (row-major) and every replica k with one or no unsatisfied
    bond, it builds ``U_k`` digit by digit from bit k of successive xoroshiro128++ words
    (pure-Python generator), drawn only when some replica needs the next digit, and accepts iff
    ``U_k < ceil(p 2**53)``. Returns the accepted flips; ``words`` is updated in place.
    """
    L = words.shape[0]
    spins = unpack_replicas(words).astype(np.int64)  # (64, L, L)
    thresholds = [int(np.ceil(p * 2.0**53)) for p in acceptance_table(beta)]
    rows, cols = np.indices((L, L))
    accepted = 0
    for _ in range(n_sweeps):
        for colour in range(2):
            field = (np.roll(spins, 1, 1) + np.roll(spins, -1, 1)
                     + np.roll(spins, 1, 2) + np.roll(spins, -1, 2))
            unsatisfied = (4 - spins * field) // 2
            for r, c in zip(rows[(rows + cols) % 2 == colour], cols[(rows + cols) % 2 == colour]):
                drawn = []
                for k in range(N_REPLICAS):
                    u = unsatisfied[k, r, c]
                    t = 2**53 if u >= 2 else thresholds[4 - u]
                    accept = t >= 2**53
                    for i in range(_DIGITS if not accept else 0):
                        while len(drawn) <= i:
                            drawn.append(reference_xoroshiro128pp(rng_state))
                        bit_u = (drawn[i] >> k) & 1
                        bit_t = (t >> (_DIGITS - 1 - i)) & 1
                        if bit_u != bit_t:
                            accept = bit_u < bit_t
                            break
                    if accept:
                        spins[k, r, c] *= -1
                        accepted += 1
    words[:] = pack_replicas(spins.astype(np.int8))
    return accepted
