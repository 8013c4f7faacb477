"""A small random number generator that numba kernels advance in place.

The generator is xorshift128+ (Vigna 2017) with shifts (a, b, c) = (23, 18, 5). Why this one:

- its whole state is two ``uint64`` words, so a kernel can copy it into two registers at entry,
  advance it with four shifts, three xors and one add per draw, and write it back at exit;
- the period is 2**128 - 1, far beyond any run of this tool (~1e12 draws);
- it passes BigCrush except for linearity tests on the *lowest* bits (the lowest bit is an
  LFSR). We only ever use the *top* 53 bits, turned into a double in [0, 1), which is the use
  Vigna recommends;
- PCG64 would need a 128-bit multiply, which numba does not have natively.

The state is a C-contiguous ``uint64`` array of shape (2,), never all zero (the all-zero state
is a fixed point). It is seeded from a :class:`numpy.random.SeedSequence` so that streams
follow the project's seeding rule (docs/conventions.md: seeds derive from task ids).

The multi-spin sampler needs all 64 bits of every draw to be good random bits, which the low
bits of xorshift128+ are not; it uses xoroshiro128++ (same two-word state, about the same cost)
through :func:`random_words` / ``xoroshiro128pp``.

References
----------
D. Blackman and S. Vigna, "Scrambled linear pseudorandom number generators",
ACM Trans. Math. Softw. 47, 36 (2021);
S. Vigna, "Further scramblings of Marsaglia's xorshift generators",
J. Comput. Appl. Math. 315, 175 (2017).
"""

import numpy as np
from numba import njit

__all__ = [
    "make_rng_state",
    "random_words",
    "child_seed_sequence",
    "uniform_doubles",
]

_MASK64 = (1 << 64) - 1
_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53
# numba types mixed uint64/int64 arithmetic as float64, so shifts must be uint64 too.
XORSHIFT_A = np.uint64(23)
XORSHIFT_B = np.uint64(18)
XORSHIFT_C = np.uint64(5)
TOP53 = np.uint64(11)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # replaces an all-zero state (a fixed point)
# xoroshiro128++ rotations and shift (Blackman & Vigna 2021: r, a, b, c = 17, 49, 21, 28)
_R17, _L47 = np.uint64(17), np.uint64(47)
_R49, _L15 = np.uint64(49), np.uint64(15)
_S21 = np.uint64(21)
_R28, _L36 = np.uint64(28), np.uint64(36)


def make_rng_state(seed_seq):
    """Seed an xorshift128+ state from a SeedSequence.

    Parameters
    ----------
    seed_seq : numpy.random.SeedSequence
        Entropy source; only ``generate_state`` is called, so ``seed_seq`` is not modified.

    Returns
    -------
    state : ndarray of uint64, shape (2,)
        Never all zero.
    """
    if not isinstance(seed_seq, np.random.SeedSequence):
        raise TypeError(f"seed_seq must be a numpy.random.SeedSequence, got {type(seed_seq).__name__}")
    state = np.ascontiguousarray(seed_seq.generate_state(2, dtype=np.uint64))
    if state[0] == 0 and state[1] == 0:  # probability 2**-128, but the zero state never moves
        state[1] = GOLDEN
    return state


def child_seed_sequence(seed_seq, index):
    """The ``index``-th child of ``seed_seq``, without mutating ``seed_seq``.

    ``SeedSequence.spawn`` advances a counter inside the parent, so calling a function twice
    with the same parent would give different streams. This builds the child that
    ``spawn`` would give as its ``index``-th, from the parent's entropy and spawn key alone.

    Parameters
    ----------
    seed_seq : numpy.random.SeedSequence
    index : int >= 0

    Returns
    -------
    numpy.random.SeedSequence
    """
    return np.random.SeedSequence(
        seed_seq.entropy,
        spawn_key=tuple(seed_seq.spawn_key) + (int(index),),
        pool_size=seed_seq.pool_size,
    )


@njit(cache=True)
def xorshift128p(s0, s1):
    """One xorshift128+ step on a state held in two locals.

    Returns ``(new_s0, new_s1, output)``; kernels keep the state in locals this way so that it
    can live in registers instead of being stored to memory after every draw.
    """
    x = s0
    y = s1
    out = x + y
    x ^= x << XORSHIFT_A
    return y, x ^ y ^ (x >> XORSHIFT_B) ^ (y >> XORSHIFT_C), out


@njit(cache=True)
def xoroshiro128pp(s0, s1):
    """One xoroshiro128++ step on a state held in two locals; returns ``(s0, s1, output)``.

    Used where *every* bit of an output is consumed as a random bit (the multi-spin sampler):
    unlike xorshift128+, whose lowest bit is an LFSR, all 64 output bits of xoroshiro128++ pass
    BigCrush (Blackman & Vigna, ACM TOMS 47, 36 (2021)). The state has the same shape and
    seeding as xorshift128+ (:func:`make_rng_state`).
    """
    x = s0 + s1
    out = ((x << _R17) | (x >> _L47)) + s0
    s1 ^= s0
    new0 = ((s0 << _R49) | (s0 >> _L15)) ^ s1 ^ (s1 << _S21)
    return new0, (s1 << _R28) | (s1 >> _L36), out


@njit(cache=True)
def _random_words(state, out):
    s0 = state[0]
    s1 = state[1]
    for k in range(out.shape[0]):
        s0, s1, out[k] = xoroshiro128pp(s0, s1)
    state[0] = s0
    state[1] = s1


def random_words(rng_state, n):
    """Draw ``n`` xoroshiro128++ outputs (all 64 bits random), advancing ``rng_state`` in place.

    Parameters
    ----------
    rng_state : ndarray of uint64, shape (2,)
    n : int >= 0

    Returns
    -------
    ndarray of uint64, shape (n,)
    """
    return _draw(_random_words, rng_state, n, np.uint64)


@njit(cache=True)
def to_unit(x):
    """Top 53 bits of a uint64 as a double in [0, 1): ``(x >> 11) * 2**-53``."""
    return np.float64(x >> TOP53) * _TWO_M53


@njit(cache=True)
def _next_uint64(state):
    """Advance ``state`` (uint64, shape (2,)) in place and return the next output."""
    s0, s1, out = xorshift128p(state[0], state[1])
    state[0] = s0
    state[1] = s1
    return out


@njit(cache=True)
def _uniform_doubles(state, out):
    s0 = state[0]
    s1 = state[1]
    for k in range(out.shape[0]):
        s0, s1, x = xorshift128p(s0, s1)
        out[k] = to_unit(x)
    state[0] = s0
    state[1] = s1


def uniform_doubles(rng_state, n):
    """Draw ``n`` doubles in [0, 1) from the kernel generator, advancing it in place.

    Parameters
    ----------
    rng_state : ndarray of uint64, shape (2,)
    n : int >= 0

    Returns
    -------
    ndarray of float64, shape (n,)
        ``u_k = (x_k >> 11) * 2**-53`` where ``x_k`` is the k-th xorshift128+ output.
    """
    return _draw(_uniform_doubles, rng_state, n, np.float64)


def _draw(kernel, rng_state, n, dtype):
    """``n`` draws of ``kernel`` into a new array of ``dtype``, advancing ``rng_state`` in place."""
    check_state(rng_state)
    out = np.empty(int(n), dtype=dtype)
    kernel(rng_state, out)
    return out


def check_state(rng_state):
    if not (isinstance(rng_state, np.ndarray) and rng_state.dtype == np.uint64
            and rng_state.shape == (2,) and rng_state.flags.c_contiguous):
        raise ValueError("rng_state must be a C-contiguous uint64 array of shape (2,); "
                         "make one with make_rng_state(seed_seq)")
    if rng_state[0] == 0 and rng_state[1] == 0:
        raise ValueError("rng_state must not be all zero (xorshift128+ fixed point)")


def _reference_next_uint64(state):
    """Pure-Python xorshift128+ step with Python ints; advances ``state`` in place.

    Used by the slow reference samplers so that the exact tests do not share the RNG code
    with the kernels they check.
    """
    s1 = int(state[0])
    s0 = int(state[1])
    out = (s0 + s1) & _MASK64
    s1 ^= (s1 << 23) & _MASK64
    new1 = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5)
    state[0] = np.uint64(s0)
    state[1] = np.uint64(new1)
    return out


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & _MASK64


def reference_xoroshiro128pp(state):
    """Pure-Python xoroshiro128++ step (Vigna's C code with Python ints); advances ``state``."""
    s0, s1 = int(state[0]), int(state[1])
    out = (_rotl((s0 + s1) & _MASK64, 17) + s0) & _MASK64
    s1 ^= s0
    state[0] = np.uint64(_rotl(s0, 49) ^ s1 ^ ((s1 << 21) & _MASK64))
    state[1] = np.uint64(_rotl(s1, 28))
    return out


def reference_uniform(state):
    """Pure-Python counterpart of ``to_unit(_next_uint64(state))``."""
    return (_reference_next_uint64(state) >> 11) * _TWO_M53
