"""The spec's vocabulary: bounds, the error type, and small typed readers of raw TOML values.

Each reader takes the dotted key (for the message) and the raw value, and raises a
:class:`SpecError` that names the key, the value and the rule in one line, e.g.
``temperatures.start must be > 0, got -1.0``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from typing import Any, Callable

__all__ = ["SpecError", "fail", "as_int", "as_float", "as_bool", "as_rate", "as_choice", "as_list",
           "as_units", "check_keys", "section", "shown", "key_name", "resolve_learning_rate", "resolve_init",
           "resolve_units"]


#: Bounds that keep every task within what the code handles and a machine can hold: the
#: checkerboard samplers need L >= 4 (at L = 2 a site's two neighbours on one axis are the
#: same site), seeds feed numpy's SeedSequence as 64-bit words, and counts beyond these are
#: typing mistakes rather than sweeps (10^8 samples of a 64 x 64 lattice are 400 GB).
MIN_L, MAX_L = 4, 2048
MAX_SEED = 2**63 - 1
MIN_T, MAX_T = 0.01, 1.0e4
MAX_TEMPERATURES = 10_000
MAX_SAMPLES, MAX_SWEEPS = 10**8, 10**9
MAX_UNITS, MAX_STEPS, MAX_EPOCHS, MAX_BATCH = 10**5, 10**7, 10**6, 10**6
#: Per task: stored spins of one (L, T) (one byte each in memory), weights of one RBM.
MAX_SPINS_PER_TASK, MAX_WEIGHTS = 2**33, 2**28
MAX_SPEC_BYTES = 2**20


class SpecError(ValueError):
    """A spec that breaks a rule; ``str(err)`` is the one-line message shown to the user.
    ``path`` is the key it names, as TOML keys (for setting it aside to find the next error)."""

    def __init__(self, message: str, path: tuple[str, ...] | None = None):
        super().__init__(message)
        self.path = path


def shown(value: Any, limit: int = 80) -> str:
    """repr of a value for a one-line message: control characters escaped, long values cut."""
    try:
        text = repr(value)
    except ValueError:  # an integer of more than 4,300 digits
        return f"<an integer of {value.bit_length():,} bits>"
    return text if len(text) <= limit else f"{text[:limit - 20]}... ({len(text):,} characters)"


def key_name(name: str) -> str:
    """A TOML key as written in a message: quoted and escaped if it is not a plain word."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)




def fail(key: str, value: Any, rule: str) -> SpecError:
    return SpecError(f"{key} must be {rule}, got {shown(value)}")


def as_int(key: str, value: Any, *, ge: int | None = None, le: int | None = None) -> int:
    # bool is a subclass of int in Python; `samples = true` is a mistake, not 1.
    rule = "an integer" + (f" >= {ge}" if ge is not None else "") + (f" and <= {le:,}" if le is not None else "")
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(key, value, rule)
    if (ge is not None and value < ge) or (le is not None and value > le):
        raise fail(key, value, rule)
    return value


def as_float(key: str, value: Any, *, gt: float | None = None, ge: float | None = None,
           lt: float | None = None, le: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise fail(key, value, "a finite number")
    value = float(value)
    if gt is not None and not value > gt:
        raise fail(key, value, f"> {gt:g}")
    if ge is not None and not value >= ge:
        raise fail(key, value, f">= {ge:g}")
    if lt is not None and not value < lt:
        raise fail(key, value, f"< {lt:g}")
    if le is not None and not value <= le:
        raise fail(key, value, f"<= {le:g}")
    return value


def as_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(key, value, "true or false")
    return value


def as_rate(key: str, value: Any) -> float | str:
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise fail(key, value, 'a number > 0 or "auto"')
    return float(value)


def as_choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise fail(key, value, "one of " + " | ".join(choices))
    return value


def as_list(key: str, value: Any, *, nonempty: bool = True) -> list:
    if not isinstance(value, list):
        raise fail(key, value, "a list")
    if nonempty and not value:
        raise fail(key, value, "a non-empty list")
    return value


def check_keys(section: str, table: Any, allowed: tuple[str, ...]) -> dict:
    path = tuple(section.split(".")) if section else ()
    if not isinstance(table, dict):
        raise SpecError(f"[{section}] must be a table, got {shown(table)}", path)
    for key in table:
        if key not in allowed:
            where = f"{section}.{key_name(key)}" if section else key_name(key)
            near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else f"; valid keys: {', '.join(allowed)}"
            raise SpecError(f"unknown key '{where}'{hint}", path + (key,))
    return table


def section(raw: dict, name: str, parse: Callable[[dict], Any], allowed: tuple[str, ...]):
    table = check_keys(name, raw.get(name, {}), allowed)
    return parse(table)


UNITS = re.compile(r"^\s*N\s*(?:/\s*(\d+))?\s*$")


def as_units(key: str, value: Any) -> int | str:
    """An integer >= 1 or a fraction of N written ``"N"`` or ``"N/d"``."""
    if isinstance(value, str):
        match = UNITS.match(value)
        if match and (match.group(1) is None or int(match.group(1)) >= 1):
            return value.replace(" ", "")
        raise fail(key, value, 'an integer >= 1 or a fraction of N such as "N/4"')
    return as_int(key, value, ge=1, le=MAX_UNITS)


#: ``learning_rate = "auto"``: 0.025 up to 256 hidden units, then AUTO_LR_UNITS / n_hidden.
#: What must stay bounded is how fast the whole model moves, about learning_rate x n_hidden:
#: near Tc every unit's gradient has a share in the same long-range (magnetisation) mode, so
#: the bound does not scale with the lattice. Measured (docs/conventions.md), site-anchored
#: starts: at L = 8 with 64 units e is within 0.3 % above Tc at 0.025 and 0.6 % low at 0.05,
#: and 128 units leave C 15-24 % low near Tc at 0.05, 2-3 % at 0.02; at T = Tc with N/4 units
#: and 50 epochs, L = 32 (256 units): e -4.9 % at 0.0125, -2.6 % at 0.025, weights collapsing
#: at 0.05; L = 64 (1,024 units): stable at 0.003125, held-out KL rising 0.64 -> 0.92 in the
#: first 5 epochs and |m| collapsing at 0.025.
AUTO_LR, AUTO_LR_UNITS = 0.025, 6.4


def resolve_learning_rate(value: float | str, n_hidden: int) -> float:
    """A ``learning_rate`` value (a number or "auto") for an RBM of ``n_hidden`` hidden units."""
    if value == "auto":
        return min(AUTO_LR, AUTO_LR_UNITS / n_hidden)
    return float(value)


#: ``init = "auto"``: site-anchored starts from n_sites / 4 hidden units up (one unit per site of
#: the 2 x 2 sublattice or more), Gaussian below (docs/conventions.md, "The training recipe").
#: Measured: exact fits at L = 4 put every unit on one site; at L = 16, T = Tc, N/4 units get e
#: within -2.2 % from site starts against -7.1 % from Gaussian ones.
AUTO_SITE_FRACTION = 0.25


def resolve_init(value: str, n_hidden: int, n_sites: int) -> str:
    """An ``init`` value ("auto", "gaussian" or "site") for ``n_hidden`` units on ``n_sites``."""
    if value == "auto":
        return "site" if n_hidden >= AUTO_SITE_FRACTION * n_sites else "gaussian"
    return value


def resolve_units(value: int | str, n_sites: int) -> int:
    """Resolve an ``n_hidden``-style value (int, ``"N"`` or ``"N/d"``) for ``N = n_sites``."""
    if isinstance(value, int):
        return value
    match = UNITS.match(value)
    return n_sites // int(match.group(1) or 1)
