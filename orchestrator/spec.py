"""The sweep spec: TOML in, a frozen, validated :class:`SweepSpec` out.

A config is data: every section is a frozen dataclass, validation sits next to
the definition, and every error names the key, the value and the rule in one line, e.g.
``temperatures.start must be > 0, got -1.0``.  Unknown keys are rejected with the closest
valid key suggested.  The spec is parsed as TOML (``tomllib``), never evaluated.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from contract.constants import TC

__all__ = [
    "TC",
    "SpecError",
    "SamplingSpec",
    "RBMSpec",
    "AnalysisSpec",
    "RGFlowSpec",
    "SweepSpec",
    "load_spec",
    "parse_spec",
    "resolve_units",
    "resolve_learning_rate",
]


ALGORITHMS = ("metropolis", "wolff", "multispin", "auto")
CHECKERBOARD = ("metropolis", "multispin")  # samplers that need the two-colour checkerboard (even L)
METHODS = ("cd", "pcd")
LOG_PARTITION = ("auto", "exact", "ais")
LR_SCHEDULES = ("constant", "linear", "inverse")

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


def _shown(value: Any, limit: int = 80) -> str:
    """repr of a value for a one-line message: control characters escaped, long values cut."""
    try:
        text = repr(value)
    except ValueError:  # an integer of more than 4,300 digits
        return f"<an integer of {value.bit_length():,} bits>"
    return text if len(text) <= limit else f"{text[:limit - 20]}... ({len(text):,} characters)"


def _key(name: str) -> str:
    """A TOML key as written in a message: quoted and escaped if it is not a plain word."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


# ---------------------------------------------------------------------------------------------
# Small typed readers.  Each takes the dotted key (for the message) and the raw TOML value.


def _fail(key: str, value: Any, rule: str) -> SpecError:
    return SpecError(f"{key} must be {rule}, got {_shown(value)}")


def _int(key: str, value: Any, *, ge: int | None = None, le: int | None = None) -> int:
    # bool is a subclass of int in Python; `samples = true` is a mistake, not 1.
    rule = "an integer" + (f" >= {ge}" if ge is not None else "") + (f" and <= {le:,}" if le is not None else "")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, value, rule)
    if (ge is not None and value < ge) or (le is not None and value > le):
        raise _fail(key, value, rule)
    return value


def _float(key: str, value: Any, *, gt: float | None = None, ge: float | None = None,
           lt: float | None = None, le: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(key, value, "a finite number")
    value = float(value)
    if gt is not None and not value > gt:
        raise _fail(key, value, f"> {gt:g}")
    if ge is not None and not value >= ge:
        raise _fail(key, value, f">= {ge:g}")
    if lt is not None and not value < lt:
        raise _fail(key, value, f"< {lt:g}")
    if le is not None and not value <= le:
        raise _fail(key, value, f"<= {le:g}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, value, "true or false")
    return value


def _auto_or_rate(key: str, value: Any) -> float | str:
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise _fail(key, value, 'a number > 0 or "auto"')
    return float(value)


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _fail(key, value, "one of " + " | ".join(choices))
    return value


def _list(key: str, value: Any, *, nonempty: bool = True) -> list:
    if not isinstance(value, list):
        raise _fail(key, value, "a list")
    if nonempty and not value:
        raise _fail(key, value, "a non-empty list")
    return value


def _check_keys(section: str, table: Any, allowed: tuple[str, ...]) -> dict:
    path = tuple(section.split(".")) if section else ()
    if not isinstance(table, dict):
        raise SpecError(f"[{section}] must be a table, got {_shown(table)}", path)
    for key in table:
        if key not in allowed:
            where = f"{section}.{_key(key)}" if section else _key(key)
            near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else f"; valid keys: {', '.join(allowed)}"
            raise SpecError(f"unknown key '{where}'{hint}", path + (key,))
    return table


def _section(raw: dict, name: str, parse: Callable[[dict], Any], allowed: tuple[str, ...]):
    table = _check_keys(name, raw.get(name, {}), allowed)
    return parse(table)


_UNITS = re.compile(r"^\s*N\s*(?:/\s*(\d+))?\s*$")


def _units(key: str, value: Any) -> int | str:
    """An integer >= 1 or a fraction of N written ``"N"`` or ``"N/d"``."""
    if isinstance(value, str):
        match = _UNITS.match(value)
        if match and (match.group(1) is None or int(match.group(1)) >= 1):
            return value.replace(" ", "")
        raise _fail(key, value, 'an integer >= 1 or a fraction of N such as "N/4"')
    return _int(key, value, ge=1, le=MAX_UNITS)


#: ``learning_rate = "auto"``: 0.05 up to 64 hidden units, then AUTO_LR_UNITS / n_hidden.
#: Measured at L = 8 (docs/conventions.md): 0.05 suits 64 hidden units, while 128 need about
#: half of it (RBM-generated C 15-24% low near Tc at 0.05, 2-3% at 0.02): what must stay bounded
#: is how fast the whole model moves, about learning_rate x n_hidden.
AUTO_LR, AUTO_LR_UNITS = 0.05, 3.2


def resolve_learning_rate(value: float | str, n_hidden: int) -> float:
    """A ``learning_rate`` value (a number or "auto") for an RBM of ``n_hidden`` hidden units."""
    if value == "auto":
        return min(AUTO_LR, AUTO_LR_UNITS / n_hidden)
    return float(value)


def resolve_units(value: int | str, n_sites: int) -> int:
    """Resolve an ``n_hidden``-style value (int, ``"N"`` or ``"N/d"``) for ``N = n_sites``."""
    if isinstance(value, int):
        return value
    match = _UNITS.match(value)
    return n_sites // int(match.group(1) or 1)


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingSpec:
    """``[sampling]``: how each (L, T) is sampled (see workers.ising.simulate)."""

    algorithm: str = "metropolis"
    burn_in: int = 1000
    samples: int = 2000
    thin: int | str = 10
    symmetrize: bool = True

    KEYS = ("algorithm", "burn_in", "samples", "thin", "symmetrize")

    @classmethod
    def parse(cls, t: dict) -> "SamplingSpec":
        d = cls()
        thin = t.get("thin", d.thin)
        if thin != "auto":
            thin = _int("sampling.thin", thin, ge=1, le=MAX_SWEEPS) if not isinstance(thin, str) else None
            if thin is None:
                raise _fail("sampling.thin", t["thin"], 'an integer >= 1 or "auto"')
        return cls(
            algorithm=_choice("sampling.algorithm", t.get("algorithm", d.algorithm), ALGORITHMS),
            burn_in=_int("sampling.burn_in", t.get("burn_in", d.burn_in), ge=0, le=MAX_SWEEPS),
            samples=_int("sampling.samples", t.get("samples", d.samples), ge=1, le=MAX_SAMPLES),
            thin=thin,
            symmetrize=_bool("sampling.symmetrize", t.get("symmetrize", d.symmetrize)),
        )


@dataclass(frozen=True)
class RBMSpec:
    """``[rbm]``: the RBM variants trained on every sample set (absent: no training stage)."""

    n_hidden: tuple[int | str, ...] = (16,)
    method: str = "pcd"
    k: int = 5
    learning_rate: float | str = "auto"  # resolve_learning_rate
    momentum: float = 0.5
    lr_schedule: str = "linear"
    epochs: int = 200
    batch_size: int = 100
    checkpoints: tuple[int, ...] = (0,)
    held_out: float = 0.2
    seeds: tuple[int, ...] = (0,)
    l1: float = 0.0
    l2: float = 1e-4
    init_std: float = 0.01
    log_partition: str = "auto"
    max_exact_units: int = 20
    gibbs_chains: int = 100
    gibbs_steps: int = 1000
    centering: bool = True
    flip_moves: bool = True
    averaging: float = 0.5

    KEYS = ("n_hidden", "method", "k", "learning_rate", "momentum", "lr_schedule", "epochs",
            "batch_size", "checkpoints", "held_out", "seeds", "l1", "l2", "init_std",
            "log_partition", "max_exact_units", "gibbs_chains", "gibbs_steps", "centering",
            "flip_moves", "averaging")

    @classmethod
    def parse(cls, t: dict) -> "RBMSpec":
        d = cls()
        n_hidden = tuple(_units(f"rbm.n_hidden[{i}]", v)
                         for i, v in enumerate(_list("rbm.n_hidden", t.get("n_hidden", list(d.n_hidden)))))
        if len(set(n_hidden)) != len(n_hidden):  # "N/4" and 16 may meet at one L: that is fine
            raise _fail("rbm.n_hidden", list(n_hidden), "a list without repeats")
        epochs = _int("rbm.epochs", t.get("epochs", d.epochs), ge=1, le=MAX_EPOCHS)
        checkpoints = set()
        for i, c in enumerate(_list("rbm.checkpoints", t.get("checkpoints", [0]), nonempty=False)):
            c = _int(f"rbm.checkpoints[{i}]", c, ge=0)
            if c > epochs:
                raise _fail(f"rbm.checkpoints[{i}]", c, f"<= rbm.epochs ({epochs})")
            checkpoints.add(c)
        seeds = [_int(f"rbm.seeds[{i}]", s, ge=0, le=MAX_SEED)
                 for i, s in enumerate(_list("rbm.seeds", t.get("seeds", list(d.seeds))))]
        if len(set(seeds)) != len(seeds):
            raise _fail("rbm.seeds", seeds, "a list without repeats")
        return cls(
            n_hidden=n_hidden,
            method=_choice("rbm.method", t.get("method", d.method), METHODS),
            k=_int("rbm.k", t.get("k", d.k), ge=1, le=MAX_STEPS),
            learning_rate=_auto_or_rate("rbm.learning_rate", t.get("learning_rate", d.learning_rate)),
            momentum=_float("rbm.momentum", t.get("momentum", d.momentum), ge=0, lt=1),
            lr_schedule=_choice("rbm.lr_schedule", t.get("lr_schedule", d.lr_schedule), LR_SCHEDULES),
            epochs=epochs,
            batch_size=_int("rbm.batch_size", t.get("batch_size", d.batch_size), ge=1, le=MAX_BATCH),
            # epoch 0, the initialisation, is always recorded, and so is the final epoch
            checkpoints=tuple(sorted(checkpoints | {0, epochs})),
            held_out=_float("rbm.held_out", t.get("held_out", d.held_out), gt=0, lt=1),
            seeds=tuple(seeds),
            l1=_float("rbm.l1", t.get("l1", d.l1), ge=0),
            l2=_float("rbm.l2", t.get("l2", d.l2), ge=0),
            init_std=_float("rbm.init_std", t.get("init_std", d.init_std), gt=0),
            log_partition=_choice("rbm.log_partition", t.get("log_partition", d.log_partition),
                                  LOG_PARTITION),
            max_exact_units=_int("rbm.max_exact_units", t.get("max_exact_units", d.max_exact_units),
                                 ge=1, le=30),
            gibbs_chains=_int("rbm.gibbs_chains", t.get("gibbs_chains", d.gibbs_chains), ge=1,
                              le=MAX_UNITS),
            gibbs_steps=_int("rbm.gibbs_steps", t.get("gibbs_steps", d.gibbs_steps), ge=10,
                             le=MAX_STEPS),
            centering=_bool("rbm.centering", t.get("centering", d.centering)),
            flip_moves=_bool("rbm.flip_moves", t.get("flip_moves", d.flip_moves)),
            averaging=_float("rbm.averaging", t.get("averaging", d.averaging), ge=0, lt=1),
        )


@dataclass(frozen=True)
class AnalysisSpec:
    """``[analysis]``: block sizes for RG alignment ("auto": every b | L with 2 <= b <= L/2)."""

    block_sizes: str | tuple[int, ...] = "auto"

    KEYS = ("block_sizes",)

    @classmethod
    def parse(cls, t: dict) -> "AnalysisSpec":
        value = t.get("block_sizes", "auto")
        if value == "auto":
            return cls()
        if not isinstance(value, list):
            raise _fail("analysis.block_sizes", value, '"auto" or a list of integers >= 2')
        sizes = tuple(sorted({_int(f"analysis.block_sizes[{i}]", b, ge=2)
                              for i, b in enumerate(_list("analysis.block_sizes", value))}))
        return cls(block_sizes=sizes)


@dataclass(frozen=True)
class RGFlowSpec:
    """``[rg_flow]``: block-spin, stacked-RBM and RBM flows, one flow task per lattice size.

    The flows of size L use the sample sets of L and, to measure a renormalized temperature, the
    Monte Carlo curves of the coarse sizes L/b, L/b^2, ... that the same sweep contains.
    """

    block: int = 2
    layers: tuple[int | str, ...] = ("N/4", "N/16")
    rbm_flow_steps: int = 20
    rbm_flow_hidden: int | str = "N/4"
    epochs: int = 20
    learning_rate: float = 0.05
    batch_size: int = 100
    lattice_sizes: str | tuple[int, ...] = "auto"

    KEYS = ("block", "layers", "rbm_flow_steps", "rbm_flow_hidden", "epochs", "learning_rate",
            "batch_size", "lattice_sizes")

    @classmethod
    def parse(cls, t: dict) -> "RGFlowSpec":
        d = cls()
        layers = _list("rg_flow.layers", t.get("layers", list(d.layers)))
        sizes = t.get("lattice_sizes", "auto")
        if sizes != "auto":
            sizes = tuple(_int(f"rg_flow.lattice_sizes[{i}]", L, ge=4, le=MAX_L)
                          for i, L in enumerate(_list("rg_flow.lattice_sizes", sizes)))
            if len(set(sizes)) != len(sizes):
                raise _fail("rg_flow.lattice_sizes", list(sizes), "a list without repeats")
        return cls(
            block=_int("rg_flow.block", t.get("block", d.block), ge=2, le=MAX_L),
            layers=tuple(_units(f"rg_flow.layers[{i}]", v) for i, v in enumerate(layers)),
            rbm_flow_steps=_int("rg_flow.rbm_flow_steps", t.get("rbm_flow_steps", d.rbm_flow_steps),
                                ge=0, le=10_000),
            rbm_flow_hidden=_units("rg_flow.rbm_flow_hidden", t.get("rbm_flow_hidden", d.rbm_flow_hidden)),
            epochs=_int("rg_flow.epochs", t.get("epochs", d.epochs), ge=1, le=MAX_EPOCHS),
            learning_rate=_float("rg_flow.learning_rate", t.get("learning_rate", d.learning_rate), gt=0),
            batch_size=_int("rg_flow.batch_size", t.get("batch_size", d.batch_size), ge=1, le=MAX_BATCH),
            lattice_sizes=sizes,
        )

    def sizes_for(self, lattice_sizes: tuple[int, ...]) -> tuple[int, ...]:
        """The lattice sizes that get flows: those with at least one coarse level >= 4 x 4."""
        chosen = lattice_sizes if self.lattice_sizes == "auto" else self.lattice_sizes
        return tuple(L for L in chosen if L % self.block == 0 and L // self.block >= 4)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # fullmatch: "$" would accept "name\n"
SWEEP_KEYS = ("name", "seed", "lattice_sizes", "temperatures")
RANGE_KEYS = ("start", "stop", "num", "refine_near_tc")
REFINE_KEYS = ("width", "num")
SECTIONS = ("sweep", "sampling", "rbm", "analysis", "rg_flow")


def _temperatures(value: Any) -> tuple[float, ...]:
    """A list of T > 0, or ``{start, stop, num, refine_near_tc = {width, num}}``."""
    if isinstance(value, list):
        values = _list("sweep.temperatures", value)
        if len(values) > MAX_TEMPERATURES:
            raise _fail("sweep.temperatures", f"<a list of {len(values)}>",
                        f"a list of at most {MAX_TEMPERATURES} temperatures")
        temps = [_float(f"sweep.temperatures[{i}]", v, ge=MIN_T, le=MAX_T) for i, v in enumerate(values)]
        if len({round(t, 9) for t in temps}) != len(temps):
            raise _fail("sweep.temperatures", temps, "a list without repeats (equal to 9 decimals)")
    elif isinstance(value, dict):
        _check_keys("sweep.temperatures", value, RANGE_KEYS)
        for key in ("start", "stop", "num"):
            if key not in value:
                raise SpecError(f"sweep.temperatures.{key} is required in a temperature range")
        start = _float("sweep.temperatures.start", value["start"], ge=MIN_T, le=MAX_T)
        stop = _float("sweep.temperatures.stop", value["stop"], gt=start, le=MAX_T)
        num = _int("sweep.temperatures.num", value["num"], ge=1, le=MAX_TEMPERATURES)
        temps = _linspace(start, stop, num)
        if "refine_near_tc" in value:
            refine = _check_keys("sweep.temperatures.refine_near_tc", value["refine_near_tc"], REFINE_KEYS)
            width = _float("sweep.temperatures.refine_near_tc.width", refine.get("width", 0.3), gt=0)
            rnum = _int("sweep.temperatures.refine_near_tc.num", refine.get("num", 10), ge=1,
                        le=MAX_TEMPERATURES)
            lo, hi = max(start, TC - width), min(stop, TC + width)
            if lo < hi:
                temps += _linspace(lo, hi, rnum)
    else:
        raise _fail("sweep.temperatures", value, "a list of numbers or a table {start, stop, num}")
    # Rounded so a range spelled two ways gives the same canonical floats (and task ids).
    rounded = sorted({round(t, 9) for t in temps})
    return tuple(rounded)


def _linspace(start: float, stop: float, num: int) -> list[float]:
    if num == 1:
        return [start]
    return [start + (stop - start) * i / (num - 1) for i in range(num)]


@dataclass(frozen=True)
class SweepSpec:
    """The whole validated sweep; :meth:`to_dict` is what ``sweep.json`` records."""

    name: str
    seed: int
    lattice_sizes: tuple[int, ...]
    temperatures: tuple[float, ...]
    sampling: SamplingSpec = field(default_factory=SamplingSpec)
    rbm: RBMSpec | None = None
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)
    rg_flow: RGFlowSpec | None = None

    def to_dict(self) -> dict:
        """The spec as a TOML-shaped dict that :func:`parse_spec` reads back to an equal spec."""

        def plain(obj):
            if isinstance(obj, (list, tuple)):
                return [plain(x) for x in obj]
            if isinstance(obj, dict):
                return {k: plain(v) for k, v in obj.items()}
            return obj

        raw = {"sweep": {"name": self.name, "seed": self.seed,
                         "lattice_sizes": list(self.lattice_sizes),
                         "temperatures": list(self.temperatures)},
               "sampling": asdict(self.sampling), "analysis": asdict(self.analysis)}
        if self.rbm is not None:
            raw["rbm"] = asdict(self.rbm)
        if self.rg_flow is not None:
            raw["rg_flow"] = asdict(self.rg_flow)
        return plain(raw)


#: Stand-ins for required [sweep] keys whose value is broken, so that validation can go on
#: and report the spec's other errors in the same message.
_PLACEHOLDERS = {("sweep", "name"): "spec", ("sweep", "seed"): 0, ("sweep", "lattice_sizes"): [8],
                 ("sweep", "temperatures"): [2.0, 2.5]}  # two: [rg_flow] needs a curve
_ERROR_KEY = re.compile(r"^(?:unknown key '([^']+)'|\[([\w.]+)\] must be a table|([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*))")
MAX_ERRORS = 50


def _drop_broken(raw: dict, err: SpecError) -> bool:
    """Remove (or stand in for) the key an error names; False if there is nothing to remove."""
    message = str(err)
    if message.startswith("[sweep] section is required"):
        raw["sweep"] = {key[1]: value for key, value in _PLACEHOLDERS.items()}
        return True
    if err.path is not None:
        path = err.path
    else:
        match = _ERROR_KEY.match(message)
        if not match:
            return False
        path = tuple((match.group(1) or match.group(2) or match.group(3)).split("."))
    if path == ("sweep",):  # [sweep] of the wrong type: stand in for all of it
        raw["sweep"] = {key[1]: value for key, value in _PLACEHOLDERS.items()}
        return True
    if message.endswith(" is required") and path in _PLACEHOLDERS and isinstance(raw.get("sweep"), dict):
        raw["sweep"][path[1]] = _PLACEHOLDERS[path]
        return True
    if path[:2] in _PLACEHOLDERS:  # e.g. sweep.temperatures.num: stand in for the whole range
        path = path[:2]
    node = raw
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict) or path[-1] not in node:
        # a rule across keys that a default breaks too (rbm.held_out of too few samples): set
        # its whole section aside so the errors of the other sections are still found
        if len(path) > 1 and path[0] in raw and path[0] != "sweep":
            del raw[path[0]]
            return True
        return False
    if path in _PLACEHOLDERS:
        if node[path[-1]] == _PLACEHOLDERS[path]:
            return False
        node[path[-1]] = _PLACEHOLDERS[path]
    else:
        del node[path[-1]]
    return True


def parse_spec(raw: dict) -> SweepSpec:
    """Validate a parsed TOML document; raise :class:`SpecError` naming every broken rule, one
    per line (each found by setting the key of the previous one aside and validating again)."""
    errors: list[str] = []
    work = copy.deepcopy(raw)
    for _ in range(MAX_ERRORS):
        try:
            spec = _parse_first(work)
        except SpecError as err:
            rule = str(err).rsplit(", got ", 1)[0]
            if not any(e.rsplit(", got ", 1)[0] == rule for e in errors):  # once per rule: the
                errors.append(str(err))  # default that stands in for a broken key may break it too
            if isinstance(work, dict) and _drop_broken(work, err):
                continue
            break
        if not errors:
            return spec
        break
    raise SpecError("\n".join(errors))


def _parse_first(raw: dict) -> SweepSpec:
    """Validate a parsed TOML document; raise :class:`SpecError` on the first broken rule."""
    _check_keys("", raw, SECTIONS)
    if "sweep" not in raw:
        raise SpecError("[sweep] section is required (name, seed, lattice_sizes, temperatures)")
    sweep = _check_keys("sweep", raw["sweep"], SWEEP_KEYS)
    for key in SWEEP_KEYS:
        if key not in sweep:
            raise SpecError(f"sweep.{key} is required")
    name = sweep["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _fail("sweep.name", name, "1-64 characters of letters, digits, '_', '.' or '-'")
    seed = _int("sweep.seed", sweep["seed"], ge=0, le=MAX_SEED)
    sizes = [_int(f"sweep.lattice_sizes[{i}]", L, ge=MIN_L, le=MAX_L)
             for i, L in enumerate(_list("sweep.lattice_sizes", sweep["lattice_sizes"]))]
    if len(set(sizes)) != len(sizes):
        raise _fail("sweep.lattice_sizes", sizes, "a list without repeats")
    temps = _temperatures(sweep["temperatures"])

    sampling = _section(raw, "sampling", SamplingSpec.parse, SamplingSpec.KEYS)
    for i, L in enumerate(sizes):
        if sampling.samples * L * L > MAX_SPINS_PER_TASK:
            raise SpecError(f"sampling.samples x L^2 must be <= {MAX_SPINS_PER_TASK:,} stored spins per "
                            f"(L, T) task (8 GiB in memory), got {sampling.samples:,} x {L}^2 = "
                            f"{sampling.samples * L * L:,} for sweep.lattice_sizes[{i}] = {L}")
    if sampling.algorithm in CHECKERBOARD:
        for i, L in enumerate(sizes):
            if L % 2:
                raise SpecError(f"sweep.lattice_sizes[{i}] must be even with the checkerboard sampler "
                                f"(sampling.algorithm = {sampling.algorithm!r}), got {L}")
    rbm = _section(raw, "rbm", RBMSpec.parse, RBMSpec.KEYS) if "rbm" in raw else None
    if rbm is not None:
        for L in sizes:
            for i, nh in enumerate(rbm.n_hidden):
                units = resolve_units(nh, L * L)
                if units * L * L > MAX_WEIGHTS:
                    raise SpecError(f"rbm.n_hidden[{i}] x N must be <= {MAX_WEIGHTS:,} weights (1 GiB "
                                    f"as float32), got {units:,} x {L * L:,} for L = {L}")
                if units < 1:
                    raise SpecError(f"rbm.n_hidden[{i}] must give at least 1 hidden unit, "
                                    f"got {nh!r} for L = {L} (N = {L * L})")
                if rbm.log_partition == "exact" and min(units, L * L) > rbm.max_exact_units:
                    raise SpecError(f"rbm.n_hidden[{i}] must leave a layer of <= rbm.max_exact_units "
                                    f"({rbm.max_exact_units}) units with rbm.log_partition = 'exact', "
                                    f"got {nh!r} = {units} for L = {L}")
            n_train = math.floor(sampling.samples * (1 - rbm.held_out))
            if n_train < 1 or sampling.samples - n_train < 1:
                raise SpecError(f"rbm.held_out must leave >= 1 training and >= 1 held-out sample of "
                                f"sampling.samples = {sampling.samples}, got {rbm.held_out!r}")
    analysis = _section(raw, "analysis", AnalysisSpec.parse, AnalysisSpec.KEYS)
    if analysis.block_sizes != "auto":
        for b in analysis.block_sizes:
            if not any(L % b == 0 and b <= L // 2 for L in sizes):
                raise _fail("analysis.block_sizes", b, f"a divisor b <= L/2 of some lattice size {sizes}")
    rg_flow = _section(raw, "rg_flow", RGFlowSpec.parse, RGFlowSpec.KEYS) if "rg_flow" in raw else None
    if rg_flow is not None:
        if len(temps) < 2:
            raise _fail("sweep.temperatures", list(temps), "at least 2 temperatures with [rg_flow] (each "
                        "flow step is matched to a temperature on the curve they make)")
        for i, L in enumerate(rg_flow.lattice_sizes if rg_flow.lattice_sizes != "auto" else ()):
            if L not in sizes:
                raise _fail(f"rg_flow.lattice_sizes[{i}]", L, f"one of sweep.lattice_sizes {sorted(sizes)}")
            if L % rg_flow.block or L // rg_flow.block < 4:
                raise _fail(f"rg_flow.lattice_sizes[{i}]", L,
                            f"a multiple of rg_flow.block ({rg_flow.block}) with L / block >= 4")
        if not rg_flow.sizes_for(tuple(sorted(sizes))):
            raise _fail("sweep.lattice_sizes", sorted(sizes),
                        f"to contain a size L with L / rg_flow.block ({rg_flow.block}) >= 4 for [rg_flow]")
        for L in rg_flow.sizes_for(tuple(sorted(sizes))):
            for i, nh in enumerate(rg_flow.layers):
                if resolve_units(nh, L * L) < 1:
                    raise SpecError(f"rg_flow.layers[{i}] must give at least 1 hidden unit, got {nh!r} "
                                    f"for L = {L} (N = {L * L})")
            if resolve_units(rg_flow.rbm_flow_hidden, L * L) < 1:
                raise _fail("rg_flow.rbm_flow_hidden", rg_flow.rbm_flow_hidden, "at least 1 hidden unit")
    return SweepSpec(name=name, seed=seed, lattice_sizes=tuple(sorted(sizes)), temperatures=temps,
                     sampling=sampling, rbm=rbm, analysis=analysis, rg_flow=rg_flow)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a TOML spec file; a :class:`SpecError` names every problem, one a line."""
    path = Path(path)
    shown = _shown(str(path), 200)
    try:
        if path.exists() and not path.is_file() and not path.is_dir():  # a FIFO would block
            raise SpecError(f"spec file {shown} must be a regular file, got a FIFO, socket or device")
        with open(path, "rb") as f:  # a bounded prefix: a spec is never megabytes (or /dev/zero)
            blob = f.read(MAX_SPEC_BYTES + 1)
        if len(blob) > MAX_SPEC_BYTES:
            raise SpecError(f"spec file {shown} must be at most {MAX_SPEC_BYTES:,} bytes, "
                            f"got more")
        text = blob.decode("utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file {shown} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"spec file {shown} cannot be read: {err}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{_shown(path.name, 200)} is not valid TOML: {err}") from None
    except RecursionError:
        raise SpecError(f"{_shown(path.name, 200)} is not valid TOML here: arrays or tables nested "
                        "too deeply") from None
    except ValueError as err:  # a number of more than 4,300 digits
        raise SpecError(f"{_shown(path.name, 200)} is not valid TOML here: {err}".split("; use")[0]) from None
    return parse_spec(raw)
