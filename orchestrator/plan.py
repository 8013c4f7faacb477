"""From a validated spec to a DAG of frozen tasks with content-hash ids and id-derived seeds.

A task's id is the SHA-256 of the canonical JSON of ``{kind, config, schema}``, plus ``code``
when the kind's :data:`CODE_VERSIONS` entry is past 1 (sorted keys, no whitespace), cut to 16
hex digits — never a grid index or a timestamp (model: signac's job id).
Its random stream is ``SeedSequence(root_seed, spawn_key=spawn_key(id))``, so adding a
temperature leaves every other task's stream, and result, unchanged (docs/conventions.md, identity).

Kinds: ``sample`` (one (L, T) Monte Carlo run), ``train`` (one RBM variant trained on one
sample task's configurations; depends on it) and ``flow`` (a part of the RG flows of one lattice
size: the block-spin levels and stacked RBMs of one temperature, which depend on the sample tasks
of that size and of its coarse sizes, or the pooled RBM, which depends on those of that size).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Iterator, Mapping

from contract.configs import FlowConfig, SampleConfig, TrainConfig, config_from_json, spawn_key, task_id
from contract.estimators import block_sizes

from .spec import SweepSpec, resolve_init, resolve_learning_rate, resolve_units

__all__ = ["Task", "Plan", "make_plan", "temperatures_of", "task_id", "spawn_key"]


@dataclass(frozen=True)
class Task:
    """One unit of work: what to run (``kind``), with what (``config``), after what (``deps``).

    ``config`` is the typed config of :mod:`contract.configs`, kept as its canonical JSON (which
    makes the task hashable and equal by content) and parsed once; :attr:`id` and
    :attr:`spawn_key` derive from it.
    """

    kind: str
    config_json: str
    deps: tuple[str, ...] = ()

    @classmethod
    def make(cls, config: SampleConfig | TrainConfig | FlowConfig, deps: tuple[str, ...] = ()) -> "Task":
        return cls(kind=config.KIND, config_json=config.canonical(), deps=deps)

    @cached_property
    def config(self) -> SampleConfig | TrainConfig | FlowConfig:
        return config_from_json(self.kind, self.config_json)

    @cached_property
    def id(self) -> str:
        return self.config.id

    @property
    def spawn_key(self) -> tuple[int, ...]:
        return spawn_key(self.id)

    @property
    def L(self) -> int:
        return self.config.L

    @property
    def T(self) -> float:
        """The task's temperature; NaN for a pooled-RBM flow task, which spans all of its L's."""
        return getattr(self.config, "T", float("nan"))


@dataclass(frozen=True)
class Plan:
    """The tasks of a sweep in dependency order (every task after its dependencies)."""

    tasks: tuple[Task, ...]

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def by_id(self) -> dict[str, Task]:
        return {t.id: t for t in self.tasks}

    def count(self, kind: str) -> int:
        return sum(t.kind == kind for t in self.tasks)


#: The settings a train config takes from ``[rbm]`` as they are (the rest are resolved per task).
_FROM_RBM_SECTION = ("method", "k", "momentum", "lr_schedule", "epochs", "batch_size", "checkpoints",
                     "held_out", "l1", "l2", "init_std", "log_partition", "max_exact_units", "gibbs_chains",
                     "gibbs_steps", "centering", "flip_moves", "averaging")

#: The training recipe of the flows' RBMs: ``[rbm]``'s where the spec has one, else plain CD-1
#: (a spec with flows but no training stage names no recipe; these are its settings).
FLOW_RBM_WITHOUT_RBM_SECTION = {"method": "cd", "k": 1, "momentum": 0.5, "l2": 1e-4, "init_std": 0.01,
                                "centering": False, "flip_moves": False, "averaging": 0.0}


def sample_config(spec: SweepSpec, L: int, T: float) -> SampleConfig:
    s = spec.sampling
    return SampleConfig(L=L, T=T, algorithm=s.algorithm, burn_in=s.burn_in, samples=s.samples, thin=s.thin,
                        symmetrize=s.symmetrize, seed=spec.seed)


def train_configs(spec: SweepSpec, sample: Task) -> Iterator[TrainConfig]:
    """One config per (hidden size, seed) of ``[rbm]`` for one sample task."""
    r = spec.rbm
    L = sample.L
    chosen = block_sizes(L, spec.analysis.block_sizes)
    for n_hidden in dict.fromkeys(resolve_units(nh, L * L) for nh in r.n_hidden):
        for seed in r.seeds:
            yield TrainConfig(**{name: getattr(r, name) for name in _FROM_RBM_SECTION},
                              L=L, T=sample.T, sample_task=sample.id, n_visible=L * L, n_hidden=n_hidden,
                              learning_rate=resolve_learning_rate(r.learning_rate, n_hidden),
                              init=resolve_init(r.init, n_hidden, L * L), rbm_seed=seed,
                              block_sizes=chosen, seed=spec.seed)


def flow_configs(spec: SweepSpec, L: int, samples: list[Task]) -> list[tuple[FlowConfig, tuple[str, ...]]]:
    """The flow tasks of one lattice size, each with its dependencies: per temperature the
    block-spin levels and stacked RBMs (matched against the Monte Carlo curves of L and of the
    coarse sizes L/b, L/b^2, ... in the sweep), and, with ``rbm_flow_steps`` > 0, the pooled RBM."""
    f = spec.rg_flow
    by_L: dict[int, list[Task]] = {}
    for s in samples:
        by_L.setdefault(s.L, []).append(s)
    coarse, size = [], L // f.block
    while size >= 4:
        if size in by_L:
            coarse.append(size)
        if size % f.block:
            break
        size //= f.block
    recipe = ({name: getattr(spec.rbm, name) for name in FLOW_RBM_WITHOUT_RBM_SECTION} if spec.rbm
              else FLOW_RBM_WITHOUT_RBM_SECTION)
    common = dict(**recipe, L=L, block=f.block, seed=spec.seed, epochs=f.epochs,
                  learning_rate=f.learning_rate, batch_size=f.batch_size)
    own = [[s.T, s.id] for s in by_L[L]]
    curves = [[L, own]] + [[Lc, [[s.T, s.id] for s in by_L[Lc]]] for Lc in coarse]
    deps = tuple(s.id for s in by_L[L]) + tuple(s.id for Lc in coarse for s in by_L[Lc])
    out = [(FlowConfig(**common, part="levels", layers=[resolve_units(nh, L * L) for nh in f.layers],
                       rbm_flow_steps=0, rbm_flow_hidden=0, pool_samples=0, sources=[source],
                       curves=curves,
                       # every block size, whatever [analysis] chooses: layer k is scored at b^k
                       block_sizes=block_sizes(L, "auto")), deps)
           for source in own]
    if f.rbm_flow_steps > 0:
        pool = spec.sampling.samples if f.rbm_flow_samples == "auto" else f.rbm_flow_samples
        out.append((FlowConfig(**common, part="pool", layers=[], rbm_flow_steps=f.rbm_flow_steps,
                               rbm_flow_hidden=resolve_units(f.rbm_flow_hidden, L * L), pool_samples=pool,
                               sources=own, curves=curves[:1], block_sizes=[]),
                    tuple(s.id for s in by_L[L])))
    return out


def temperatures_of(spec: SweepSpec, L: int, added: Mapping[int, Iterable[float]] | None = None) -> list[float]:
    """The temperatures of lattice size L: the spec's grid and those ``added`` for L (by
    ``[refine]`` rounds), ascending."""
    return sorted(set(spec.temperatures) | set((added or {}).get(L, ())))


def make_plan(spec: SweepSpec, added: Mapping[int, Iterable[float]] | None = None, with_flows: bool = True) -> Plan:
    """Expand the (L, T) grid and the RBM variants into tasks; samples first, then training.

    ``added`` maps a lattice size to temperatures sampled besides the grid (the rounds of
    ``[refine]``); ``with_flows=False`` leaves out the flow tasks (planned once the rounds are over,
    since each depends on every temperature of its size)."""
    samples = [Task.make(sample_config(spec, L, T))
               for L in spec.lattice_sizes for T in temperatures_of(spec, L, added)]
    trains: list[Task] = []
    if spec.rbm is not None:
        for s in samples:
            trains += [Task.make(cfg, deps=(s.id,)) for cfg in train_configs(spec, s)]
    flows: list[Task] = []
    if spec.rg_flow is not None and with_flows:
        for L in spec.rg_flow.sizes_for(spec.lattice_sizes):
            flows += [Task.make(config, deps=deps) for config, deps in flow_configs(spec, L, samples)]
    return Plan(tasks=tuple(samples + trains + flows))
