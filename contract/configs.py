"""Typed task configs: what one sample, train or flow task computes, and the id that names it.

A config is a frozen dataclass that checks itself on construction (an invalid one raises
``ValueError`` naming the field, the value and the rule), so a worker never receives a task it
cannot run. Its canonical JSON (sorted keys, no whitespace; tuples as lists) is what the task id
hashes: 16 hex digits of SHA-256 over ``{kind, config, schema}``, plus ``code`` when the kind's
:data:`contract.constants.CODE_VERSIONS` entry is past 1. The random stream of a task is
``SeedSequence(config.seed, spawn_key=spawn_key(id))``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from .constants import AIS_VERSION, ALGORITHMS, CODE_VERSIONS, LOG_PARTITION, LR_SCHEDULES, METHODS, RBM_INITS
from .schemas import SCHEMA_VERSION

__all__ = ["SampleConfig", "TrainConfig", "FlowConfig", "CONFIGS", "config_from_json", "canonical",
           "task_id", "spawn_key", "lnz_method", "FLOW_PARTS"]

#: The parts of a lattice size's flows, each its own task (workers.tasks.flow).
FLOW_PARTS = ("levels", "pool")


def canonical(obj: Any) -> str:
    """The canonical JSON of a config: sorted keys, no whitespace, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def task_id(kind: str, config: dict) -> str:
    """Content hash of a task: 16 hex digits of SHA-256 over canonical JSON, schema and code versions."""
    doc = {"kind": kind, "config": config, "schema": SCHEMA_VERSION}
    if CODE_VERSIONS.get(kind, 1) != 1:
        doc["code"] = CODE_VERSIONS[kind]
    if kind == "train" and lnz_method(config) == "ais":
        doc["ais"] = AIS_VERSION
    return hashlib.sha256(canonical(doc).encode()).hexdigest()[:16]


def lnz_method(config) -> str:
    """"exact" or "ais": how a training config's ln Z_RBM is computed (a TrainConfig or its dict)."""
    get = config.get if isinstance(config, dict) else lambda name: getattr(config, name)
    if get("log_partition") != "auto":
        return get("log_partition")
    return "exact" if min(get("n_visible"), get("n_hidden")) <= get("max_exact_units") else "ais"


def spawn_key(tid: str) -> tuple[int, ...]:
    """The id as two 32-bit words: the ``spawn_key`` of the task's ``SeedSequence``."""
    return (int(tid[:8], 16), int(tid[8:16], 16))


def _integer(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _frozen(value):
    """Lists (from JSON) as tuples, recursively, so a config is hashable and immutable."""
    return tuple(_frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


class _Config:
    """What the three configs share: freezing, checking, canonical JSON."""

    KIND: ClassVar[str] = ""

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, _frozen(getattr(self, f.name)))
        for name, ok, rule in self._rules():
            if not ok:
                raise ValueError(f"{self.KIND} config: {name} must be {rule}, got {getattr(self, name)!r}")

    def _rules(self) -> list[tuple[str, bool, str]]:
        return [("L", _integer(self.L) and self.L >= 2, "an integer >= 2"),
                ("seed", _integer(self.seed) and self.seed >= 0, "an integer >= 0")]

    def to_dict(self) -> dict:
        """The config as the JSON-able dict its id hashes."""
        return json.loads(self.canonical())

    def canonical(self) -> str:
        return canonical(asdict(self))

    @property
    def id(self) -> str:
        return task_id(self.KIND, self.to_dict())


@dataclass(frozen=True)
class SampleConfig(_Config):
    """One Monte Carlo run at (L, T): ``samples`` stored configurations, ``thin`` sweeps apart."""

    KIND: ClassVar[str] = "sample"
    L: int
    T: float
    algorithm: str
    burn_in: int
    samples: int
    thin: int | str
    symmetrize: bool
    seed: int

    def _rules(self):
        return super()._rules() + [
            ("T", _number(self.T) and self.T > 0, "a number > 0"),
            ("algorithm", self.algorithm in ALGORITHMS, f"one of {ALGORITHMS}"),
            ("burn_in", _integer(self.burn_in) and self.burn_in >= 0, "an integer >= 0"),
            ("samples", _integer(self.samples) and self.samples >= 1, "an integer >= 1"),
            ("thin", self.thin == "auto" or (_integer(self.thin) and self.thin >= 1), 'an integer >= 1 or "auto"'),
            ("symmetrize", isinstance(self.symmetrize, bool), "true or false")]


@dataclass(frozen=True)
class TrainConfig(_Config):
    """One RBM variant trained on one sample task's configurations (``sample_task``, its id)."""

    KIND: ClassVar[str] = "train"
    L: int
    T: float
    sample_task: str
    n_visible: int
    n_hidden: int
    method: str
    k: int
    learning_rate: float
    momentum: float
    lr_schedule: str
    epochs: int
    batch_size: int
    checkpoints: tuple[int, ...]
    held_out: float
    rbm_seed: int
    l1: float
    l2: float
    init_std: float
    init: str
    log_partition: str
    max_exact_units: int
    gibbs_chains: int
    gibbs_steps: int
    centering: bool
    flip_moves: bool
    averaging: float
    block_sizes: tuple[int, ...]
    seed: int

    def _rules(self):
        counts = ("k", "epochs", "batch_size", "n_hidden", "max_exact_units", "gibbs_chains", "gibbs_steps")
        return super()._rules() + [
            ("T", _number(self.T) and self.T > 0, "a number > 0"),
            ("n_visible", self.n_visible == (self.L * self.L if _integer(self.L) else None), "L * L"),
            *[(name, _integer(getattr(self, name)) and getattr(self, name) >= 1, "an integer >= 1")
              for name in counts],
            ("method", self.method in METHODS, f"one of {METHODS}"),
            ("lr_schedule", self.lr_schedule in LR_SCHEDULES, f"one of {LR_SCHEDULES}"),
            ("log_partition", self.log_partition in LOG_PARTITION, f"one of {LOG_PARTITION}"),
            ("learning_rate", _number(self.learning_rate) and self.learning_rate > 0, "a number > 0"),
            ("momentum", _number(self.momentum) and 0 <= self.momentum < 1, "in [0, 1)"),
            ("held_out", _number(self.held_out) and 0 < self.held_out < 1, "in (0, 1)"),
            ("averaging", _number(self.averaging) and 0 <= self.averaging < 1, "in [0, 1)"),
            ("l1", _number(self.l1) and self.l1 >= 0, ">= 0"), ("l2", _number(self.l2) and self.l2 >= 0, ">= 0"),
            ("init_std", _number(self.init_std) and self.init_std > 0, "> 0"),
            ("init", self.init in RBM_INITS, f"one of {RBM_INITS}"),
            ("checkpoints", all(_integer(c) and 0 <= c <= self.epochs for c in self.checkpoints)
             if _integer(self.epochs) else False, "epochs in [0, epochs]"),
            ("block_sizes", all(_integer(b) and b >= 2 for b in self.block_sizes), "integers >= 2"),
            ("centering", isinstance(self.centering, bool), "true or false"),
            ("flip_moves", isinstance(self.flip_moves, bool), "true or false"),
            ("sample_task", isinstance(self.sample_task, str) and len(self.sample_task) == 16, "a task id")]


@dataclass(frozen=True)
class FlowConfig(_Config):
    """One part of the RG flows of one lattice size.

    ``part`` is ``"levels"`` (the block-spin levels and the stacked RBMs of one temperature: one
    source) or ``"pool"`` (one RBM trained on ``pool_samples`` configurations drawn evenly from
    every temperature of L, then followed v -> h -> v from each: all of L's sources).
    ``sources`` are (T, id) pairs of the sample tasks whose configurations the part uses;
    ``curves`` are (L', ((T, id), ...)) pairs, the Monte Carlo curves it matches temperatures
    against (L itself first). Settings a part does not use are zero or empty, so that changing
    them leaves its id alone.
    """

    KIND: ClassVar[str] = "flow"
    part: str
    L: int
    block: int
    seed: int
    layers: tuple[int, ...]
    rbm_flow_steps: int
    rbm_flow_hidden: int
    epochs: int
    learning_rate: float
    batch_size: int
    method: str
    k: int
    momentum: float
    l2: float
    init_std: float
    centering: bool
    flip_moves: bool
    averaging: float
    sources: tuple[tuple[float, str], ...]
    curves: tuple[tuple[int, tuple[tuple[float, str], ...]], ...]
    block_sizes: tuple[int, ...]
    pool_samples: int
    kind: str = "flow"  # a field, not only KIND: the flow ids have always hashed it

    @property
    def T(self) -> float:
        """The temperature of a ``levels`` part; NaN for the pool, which spans all of L's."""
        return float(self.sources[0][0]) if self.part == "levels" else float("nan")

    def _rules(self):
        return super()._rules() + [
            ("block", _integer(self.block) and self.block >= 2, "an integer >= 2"),
            ("layers", all(_integer(n) and n >= 1 for n in self.layers), "integers >= 1"),
            ("part", self.part in FLOW_PARTS, f"one of {FLOW_PARTS}"),
            ("layers", (len(self.layers) >= 1) == (self.part == "levels"), "non-empty exactly for the levels part"),
            ("rbm_flow_steps", _integer(self.rbm_flow_steps) and (self.rbm_flow_steps >= 1) == (self.part == "pool"),
             ">= 1 for the pool part, 0 for levels"),
            ("rbm_flow_hidden", _integer(self.rbm_flow_hidden) and (self.rbm_flow_hidden >= 1) == (self.part == "pool"),
             ">= 1 for the pool part, 0 for levels"),
            ("pool_samples", _integer(self.pool_samples) and (self.pool_samples >= 1) == (self.part == "pool"),
             ">= 1 for the pool part, 0 for levels"),
            ("epochs", _integer(self.epochs) and self.epochs >= 1, "an integer >= 1"),
            ("batch_size", _integer(self.batch_size) and self.batch_size >= 1, "an integer >= 1"),
            ("learning_rate", _number(self.learning_rate) and self.learning_rate > 0, "a number > 0"),
            ("method", self.method in METHODS, f"one of {METHODS}"),
            ("k", _integer(self.k) and self.k >= 1, "an integer >= 1"),
            ("momentum", _number(self.momentum) and 0 <= self.momentum < 1, "in [0, 1)"),
            ("averaging", _number(self.averaging) and 0 <= self.averaging < 1, "in [0, 1)"),
            ("l2", _number(self.l2) and self.l2 >= 0, ">= 0"),
            ("init_std", _number(self.init_std) and self.init_std > 0, "> 0"),
            ("centering", isinstance(self.centering, bool), "true or false"),
            ("flip_moves", isinstance(self.flip_moves, bool), "true or false"),
            ("block_sizes", all(_integer(b) and b >= 2 for b in self.block_sizes), "integers >= 2"),
            ("curves", all(len(c) == 2 and all(len(s) == 2 for s in c[1]) for c in self.curves),
             "(L, ((T, id), ...)) pairs"),
            ("sources", len(self.sources) >= 1 and all(len(s) == 2 for s in self.sources)
             and (len(self.sources) == 1 or self.part == "pool"), "(T, id) pairs, one for the levels part"),
            ("curves", len(self.curves) >= 1 and self.curves[0][0] == self.L, "led by the curve of L itself"),
            ("kind", self.kind == "flow", '"flow"')]


CONFIGS: dict[str, type[_Config]] = {"sample": SampleConfig, "train": TrainConfig, "flow": FlowConfig}


def config_from_json(kind: str, text: str) -> _Config:
    """The typed config of a task of ``kind`` from its canonical JSON."""
    return CONFIGS[kind](**json.loads(text))
