"""The whole sweep spec: ``[sweep]``, its temperature grid, the rules across sections, and
reading a TOML file, with every broken rule reported at once (one per line).
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contract.constants import CHECKERBOARD, TC

from .readers import (MAX_L, MAX_SEED, MAX_SPEC_BYTES, MAX_SPINS_PER_TASK, MAX_T,
                      MAX_TEMPERATURES, MAX_WEIGHTS, MIN_L, MIN_T, SpecError, as_float, as_int, as_list,
                      check_keys, fail, resolve_units, section, shown)
from .sections import AnalysisSpec, RBMSpec, RefineSpec, RGFlowSpec, SamplingSpec

__all__ = ["SweepSpec", "parse_spec", "load_spec"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # fullmatch: "$" would accept "name\n"
SWEEP_KEYS = ("name", "seed", "lattice_sizes", "temperatures")
RANGE_KEYS = ("start", "stop", "num", "refine_near_tc")
REFINE_KEYS = ("width", "num")
SECTIONS = ("sweep", "sampling", "rbm", "analysis", "rg_flow", "refine")


def _temperatures(value: Any, limit: bool = True) -> tuple[float, ...]:
    """A list of T > 0, or ``{start, stop, num, refine_near_tc = {width, num}}``."""
    if isinstance(value, list):
        values = as_list("sweep.temperatures", value)
        if limit and len(values) > MAX_TEMPERATURES:
            raise fail("sweep.temperatures", f"<a list of {len(values)}>",
                        f"a list of at most {MAX_TEMPERATURES} temperatures")
        temps = [as_float(f"sweep.temperatures[{i}]", v, ge=MIN_T, le=MAX_T) for i, v in enumerate(values)]
        if len({round(t, 9) for t in temps}) != len(temps):
            raise fail("sweep.temperatures", temps, "a list without repeats (equal to 9 decimals)")
    elif isinstance(value, dict):
        check_keys("sweep.temperatures", value, RANGE_KEYS)
        for key in ("start", "stop", "num"):
            if key not in value:
                raise SpecError(f"sweep.temperatures.{key} is required in a temperature range")
        start = as_float("sweep.temperatures.start", value["start"], ge=MIN_T, le=MAX_T)
        stop = as_float("sweep.temperatures.stop", value["stop"], gt=start, le=MAX_T)
        num = as_int("sweep.temperatures.num", value["num"], ge=1, le=MAX_TEMPERATURES)
        temps = _linspace(start, stop, num)
        if "refine_near_tc" in value:
            refine = check_keys("sweep.temperatures.refine_near_tc", value["refine_near_tc"], REFINE_KEYS)
            width = as_float("sweep.temperatures.refine_near_tc.width", refine.get("width", 0.3), gt=0)
            rnum = as_int("sweep.temperatures.refine_near_tc.num", refine.get("num", 10), ge=1,
                        le=MAX_TEMPERATURES)
            lo, hi = max(start, TC - width), min(stop, TC + width)
            if lo < hi:
                temps += _linspace(lo, hi, rnum)
    else:
        raise fail("sweep.temperatures", value, "a list of numbers or a table {start, stop, num}")
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
    refine: RefineSpec | None = None

    def __post_init__(self):
        """Every rule of a spec file holds for a spec built in code too (lists become tuples)."""
        sizes = _check_sweep(self.name, self.seed, list(self.lattice_sizes))
        temps = _temperatures(list(self.temperatures), limit=False)  # a range may give more
        _check_sampling(self.sampling, sizes)
        _check_rbm(self.rbm, self.sampling, sizes)
        _check_analysis(self.analysis, sizes)
        _check_rg_flow(self.rg_flow, sizes, temps)
        _check_refine(self.refine, sizes, temps)
        object.__setattr__(self, "lattice_sizes", tuple(sorted(sizes)))
        object.__setattr__(self, "temperatures", temps)

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
        if self.refine is not None:
            raw["refine"] = asdict(self.refine)
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
    check_keys("", raw, SECTIONS)
    if "sweep" not in raw:
        raise SpecError("[sweep] section is required (name, seed, lattice_sizes, temperatures)")
    sweep = check_keys("sweep", raw["sweep"], SWEEP_KEYS)
    for key in SWEEP_KEYS:
        if key not in sweep:
            raise SpecError(f"sweep.{key} is required")
    sizes = _check_sweep(sweep["name"], sweep["seed"], sweep["lattice_sizes"])
    temps = _temperatures(sweep["temperatures"])
    sampling = section(raw, "sampling", SamplingSpec.parse, SamplingSpec.keys())
    _check_sampling(sampling, sizes)
    rbm = section(raw, "rbm", RBMSpec.parse, RBMSpec.keys()) if "rbm" in raw else None
    _check_rbm(rbm, sampling, sizes)
    analysis = section(raw, "analysis", AnalysisSpec.parse, AnalysisSpec.keys())
    _check_analysis(analysis, sizes)
    rg_flow = section(raw, "rg_flow", RGFlowSpec.parse, RGFlowSpec.keys()) if "rg_flow" in raw else None
    _check_rg_flow(rg_flow, sizes, temps)
    refine = section(raw, "refine", RefineSpec.parse, RefineSpec.keys()) if "refine" in raw else None
    _check_refine(refine, sizes, temps)
    return SweepSpec(name=sweep["name"], seed=sweep["seed"], lattice_sizes=tuple(sorted(sizes)),
                     temperatures=temps, sampling=sampling, rbm=rbm, analysis=analysis, rg_flow=rg_flow,
                     refine=refine)


def _check_sweep(name, seed, lattice_sizes) -> list[int]:
    """The [sweep] rules of one key each; returns the lattice sizes in the spec's order."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise fail("sweep.name", name, "1-64 characters of letters, digits, '_', '.' or '-'")
    as_int("sweep.seed", seed, ge=0, le=MAX_SEED)
    sizes = [as_int(f"sweep.lattice_sizes[{i}]", L, ge=MIN_L, le=MAX_L)
             for i, L in enumerate(as_list("sweep.lattice_sizes", lattice_sizes))]
    if len(set(sizes)) != len(sizes):
        raise fail("sweep.lattice_sizes", sizes, "a list without repeats")
    return sizes


def _check_sampling(sampling: SamplingSpec, sizes: list[int]) -> None:
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


def _check_rbm(rbm: RBMSpec | None, sampling: SamplingSpec, sizes: list[int]) -> None:
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


def _check_analysis(analysis: AnalysisSpec, sizes: list[int]) -> None:
    if analysis.block_sizes != "auto":
        for b in analysis.block_sizes:
            if not any(L % b == 0 and b <= L // 2 for L in sizes):
                raise fail("analysis.block_sizes", b, f"a divisor b <= L/2 of some lattice size {sizes}")


def _check_rg_flow(rg_flow: RGFlowSpec | None, sizes: list[int], temps: tuple[float, ...]) -> None:
    if rg_flow is not None:
        if len(temps) < 2:
            raise fail("sweep.temperatures", list(temps), "at least 2 temperatures with [rg_flow] (each "
                        "flow step is matched to a temperature on the curve they make)")
        for i, L in enumerate(rg_flow.lattice_sizes if rg_flow.lattice_sizes != "auto" else ()):
            if L not in sizes:
                raise fail(f"rg_flow.lattice_sizes[{i}]", L, f"one of sweep.lattice_sizes {sorted(sizes)}")
            if L % rg_flow.block or L // rg_flow.block < 4:
                raise fail(f"rg_flow.lattice_sizes[{i}]", L,
                            f"a multiple of rg_flow.block ({rg_flow.block}) with L / block >= 4")
        if not rg_flow.sizes_for(tuple(sorted(sizes))):
            raise fail("sweep.lattice_sizes", sorted(sizes),
                        f"to contain a size L with L / rg_flow.block ({rg_flow.block}) >= 4 for [rg_flow]")
        for L in rg_flow.sizes_for(tuple(sorted(sizes))):
            for i, nh in enumerate(rg_flow.layers):
                if resolve_units(nh, L * L) < 1:
                    raise SpecError(f"rg_flow.layers[{i}] must give at least 1 hidden unit, got {nh!r} "
                                    f"for L = {L} (N = {L * L})")
            if resolve_units(rg_flow.rbm_flow_hidden, L * L) < 1:
                raise fail("rg_flow.rbm_flow_hidden", rg_flow.rbm_flow_hidden, "at least 1 hidden unit")


def _check_refine(refine: RefineSpec | None, sizes: list[int], temps: tuple[float, ...]) -> None:
    """Rounds place temperatures from estimates that the first grid must already allow."""
    if refine is None:
        return
    if refine.target == "tc" and len(sizes) < 2:
        raise fail("sweep.lattice_sizes", sorted(sizes), 'at least 2 sizes with [refine] target = "tc" '
                   "(a Binder crossing needs a pair)")
    if len(temps) < 4:
        raise fail("sweep.temperatures", list(temps), "at least 4 temperatures with [refine] (the first "
                   "round's grid must bracket the transition)")


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a TOML spec file; a :class:`SpecError` names every problem, one a line."""
    path = Path(path)
    name = shown(str(path), 200)
    try:
        if path.exists() and not path.is_file() and not path.is_dir():  # a FIFO would block
            raise SpecError(f"spec file {name} must be a regular file, got a FIFO, socket or device")
        with open(path, "rb") as f:  # a bounded prefix: a spec is never megabytes (or /dev/zero)
            blob = f.read(MAX_SPEC_BYTES + 1)
        if len(blob) > MAX_SPEC_BYTES:
            raise SpecError(f"spec file {name} must be at most {MAX_SPEC_BYTES:,} bytes, "
                            f"got more")
        text = blob.decode("utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file {name} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"spec file {name} cannot be read: {err}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{shown(path.name, 200)} is not valid TOML: {err}") from None
    except RecursionError:
        raise SpecError(f"{shown(path.name, 200)} is not valid TOML here: arrays or tables nested "
                        "too deeply") from None
    except ValueError as err:  # a number of more than 4,300 digits
        raise SpecError(f"{shown(path.name, 200)} is not valid TOML here: {err}".split("; use")[0]) from None
    return parse_spec(raw)
