"""The sections of a sweep spec: frozen dataclasses that validate themselves.

Constructing a section checks every field with the rules of :mod:`.readers` and normalises it
(lists become tuples, checkpoints gain epochs 0 and the last), so an invalid section cannot exist:
``RBMSpec(epochs=-1)`` raises :class:`SpecError` exactly as ``epochs = -1`` in a spec file does.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from contract.constants import ALGORITHMS, LOG_PARTITION, LR_SCHEDULES, METHODS, RBM_INITS

from .readers import (MAX_BATCH, MAX_EPOCHS, MAX_L, MAX_SAMPLES, MAX_SEED, MAX_STEPS, MAX_SWEEPS, MAX_UNITS,
                      as_bool, as_choice, as_float, as_int, as_list, as_rate, as_units, fail)

__all__ = ["SamplingSpec", "RBMSpec", "AnalysisSpec", "RGFlowSpec", "RefineSpec", "REFINE_TARGETS"]


def _table(section) -> dict:
    """A section's values as the TOML table that would give it (tuples as lists)."""
    return {f.name: list(v) if isinstance(v := getattr(section, f.name), tuple) else v
            for f in fields(section)}


def _settle(section, values: dict) -> None:
    for name, value in values.items():
        object.__setattr__(section, name, value)


class _Section:
    """What every section shares: constructing one checks and normalises all its fields; its
    TOML keys are its fields, in order (``keys()``)."""

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def __post_init__(self):
        _settle(self, self.checked(_table(self)))

    @classmethod
    def parse(cls, t: dict):
        """The section from its TOML table (keys already checked against keys())."""
        return cls(**t)


@dataclass(frozen=True)
class SamplingSpec(_Section):
    """``[sampling]``: how each (L, T) is sampled (see workers.ising.simulate)."""

    algorithm: str = "metropolis"
    burn_in: int = 1000
    samples: int = 2000
    thin: int | str = 10
    symmetrize: bool = True


    @classmethod
    def checked(cls, t: dict) -> dict:
        """The section's field values from a table of all its keys (:func:`_table`); raises
        :class:`SpecError`."""
        thin = t["thin"]
        if thin != "auto":
            thin = as_int("sampling.thin", thin, ge=1, le=MAX_SWEEPS) if not isinstance(thin, str) else None
            if thin is None:
                raise fail("sampling.thin", t["thin"], 'an integer >= 1 or "auto"')
        return dict(
            algorithm=as_choice("sampling.algorithm", t["algorithm"], ALGORITHMS),
            burn_in=as_int("sampling.burn_in", t["burn_in"], ge=0, le=MAX_SWEEPS),
            samples=as_int("sampling.samples", t["samples"], ge=1, le=MAX_SAMPLES),
            thin=thin,
            symmetrize=as_bool("sampling.symmetrize", t["symmetrize"]),
        )


@dataclass(frozen=True)
class RBMSpec(_Section):
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
    init: str = "auto"  # resolve_init
    log_partition: str = "auto"
    max_exact_units: int = 20
    gibbs_chains: int = 100
    gibbs_steps: int = 1000
    centering: bool = True
    flip_moves: bool = True
    averaging: float = 0.5


    @classmethod
    def checked(cls, t: dict) -> dict:
        """The section's field values from a table of all its keys (:func:`_table`); raises
        :class:`SpecError`."""
        n_hidden = tuple(as_units(f"rbm.n_hidden[{i}]", v)
                         for i, v in enumerate(as_list("rbm.n_hidden", t["n_hidden"])))
        if len(set(n_hidden)) != len(n_hidden):  # "N/4" and 16 may meet at one L: that is fine
            raise fail("rbm.n_hidden", list(n_hidden), "a list without repeats")
        epochs = as_int("rbm.epochs", t["epochs"], ge=1, le=MAX_EPOCHS)
        checkpoints = set()
        for i, c in enumerate(as_list("rbm.checkpoints", t["checkpoints"], nonempty=False)):
            c = as_int(f"rbm.checkpoints[{i}]", c, ge=0)
            if c > epochs:
                raise fail(f"rbm.checkpoints[{i}]", c, f"<= rbm.epochs ({epochs})")
            checkpoints.add(c)
        seeds = [as_int(f"rbm.seeds[{i}]", s, ge=0, le=MAX_SEED)
                 for i, s in enumerate(as_list("rbm.seeds", t["seeds"]))]
        if len(set(seeds)) != len(seeds):
            raise fail("rbm.seeds", seeds, "a list without repeats")
        return dict(
            n_hidden=n_hidden,
            method=as_choice("rbm.method", t["method"], METHODS),
            k=as_int("rbm.k", t["k"], ge=1, le=MAX_STEPS),
            learning_rate=as_rate("rbm.learning_rate", t["learning_rate"]),
            momentum=as_float("rbm.momentum", t["momentum"], ge=0, lt=1),
            lr_schedule=as_choice("rbm.lr_schedule", t["lr_schedule"], LR_SCHEDULES),
            epochs=epochs,
            batch_size=as_int("rbm.batch_size", t["batch_size"], ge=1, le=MAX_BATCH),
            # epoch 0, the initialisation, is always recorded, and so is the final epoch
            checkpoints=tuple(sorted(checkpoints | {0, epochs})),
            held_out=as_float("rbm.held_out", t["held_out"], gt=0, lt=1),
            seeds=tuple(seeds),
            l1=as_float("rbm.l1", t["l1"], ge=0),
            l2=as_float("rbm.l2", t["l2"], ge=0),
            init_std=as_float("rbm.init_std", t["init_std"], gt=0),
            init=as_choice("rbm.init", t["init"], ("auto",) + RBM_INITS),
            log_partition=as_choice("rbm.log_partition", t["log_partition"],
                                  LOG_PARTITION),
            max_exact_units=as_int("rbm.max_exact_units", t["max_exact_units"],
                                 ge=1, le=30),
            gibbs_chains=as_int("rbm.gibbs_chains", t["gibbs_chains"], ge=1,
                              le=MAX_UNITS),
            gibbs_steps=as_int("rbm.gibbs_steps", t["gibbs_steps"], ge=10,
                             le=MAX_STEPS),
            centering=as_bool("rbm.centering", t["centering"]),
            flip_moves=as_bool("rbm.flip_moves", t["flip_moves"]),
            averaging=as_float("rbm.averaging", t["averaging"], ge=0, lt=1),
        )


@dataclass(frozen=True)
class AnalysisSpec(_Section):
    """``[analysis]``: block sizes for RG alignment ("auto": every b | L with 2 <= b <= L/2)."""

    block_sizes: str | tuple[int, ...] = "auto"


    @classmethod
    def checked(cls, t: dict) -> dict:
        """The section's field values from a table of all its keys (:func:`_table`); raises
        :class:`SpecError`."""
        value = t["block_sizes"]
        if value == "auto":
            return {"block_sizes": "auto"}
        if not isinstance(value, list):
            raise fail("analysis.block_sizes", value, '"auto" or a list of integers >= 2')
        sizes = tuple(sorted({as_int(f"analysis.block_sizes[{i}]", b, ge=2)
                              for i, b in enumerate(as_list("analysis.block_sizes", value))}))
        return {"block_sizes": sizes}


@dataclass(frozen=True)
class RGFlowSpec(_Section):
    """``[rg_flow]``: block-spin, stacked-RBM and RBM flows of each lattice size.

    The flows of size L use the sample sets of L and, to measure a renormalized temperature, the
    Monte Carlo curves of the coarse sizes L/b, L/b^2, ... that the same sweep contains. They run
    as one task per temperature (block-spin levels and stacked RBMs) and, with
    ``rbm_flow_steps`` > 0, one pooled-RBM task per size trained on ``rbm_flow_samples``
    configurations ("auto": as many as one temperature has) drawn evenly from every temperature.
    """

    block: int = 2
    layers: tuple[int | str, ...] = ("N/4", "N/16")
    rbm_flow_steps: int = 20
    rbm_flow_hidden: int | str = "N/4"
    rbm_flow_samples: int | str = "auto"
    epochs: int = 20
    learning_rate: float = 0.05
    batch_size: int = 100
    lattice_sizes: str | tuple[int, ...] = "auto"


    @classmethod
    def checked(cls, t: dict) -> dict:
        """The section's field values from a table of all its keys (:func:`_table`); raises
        :class:`SpecError`."""
        layers = as_list("rg_flow.layers", t["layers"])
        sizes = t["lattice_sizes"]
        if sizes != "auto":
            sizes = tuple(as_int(f"rg_flow.lattice_sizes[{i}]", L, ge=4, le=MAX_L)
                          for i, L in enumerate(as_list("rg_flow.lattice_sizes", sizes)))
            if len(set(sizes)) != len(sizes):
                raise fail("rg_flow.lattice_sizes", list(sizes), "a list without repeats")
        pool = t["rbm_flow_samples"]
        if pool != "auto":
            if isinstance(pool, str):
                raise fail("rg_flow.rbm_flow_samples", pool, 'an integer >= 1 or "auto"')
            pool = as_int("rg_flow.rbm_flow_samples", pool, ge=1, le=MAX_SAMPLES)
        return dict(
            block=as_int("rg_flow.block", t["block"], ge=2, le=MAX_L),
            layers=tuple(as_units(f"rg_flow.layers[{i}]", v) for i, v in enumerate(layers)),
            rbm_flow_steps=as_int("rg_flow.rbm_flow_steps", t["rbm_flow_steps"],
                                ge=0, le=10_000),
            rbm_flow_hidden=as_units("rg_flow.rbm_flow_hidden", t["rbm_flow_hidden"]),
            rbm_flow_samples=pool,
            epochs=as_int("rg_flow.epochs", t["epochs"], ge=1, le=MAX_EPOCHS),
            learning_rate=as_float("rg_flow.learning_rate", t["learning_rate"], gt=0),
            batch_size=as_int("rg_flow.batch_size", t["batch_size"], ge=1, le=MAX_BATCH),
            lattice_sizes=sizes,
        )

    def sizes_for(self, lattice_sizes: tuple[int, ...]) -> tuple[int, ...]:
        """The lattice sizes that get flows: those with at least one coarse level >= 4 x 4."""
        chosen = lattice_sizes if self.lattice_sizes == "auto" else self.lattice_sizes
        return tuple(L for L in chosen if L % self.block == 0 and L // self.block >= 4)


#: What ``[refine]`` pins down: ``tc``, the Binder crossing of the two largest lattice sizes;
#: ``peaks``, the C and chi peak positions of every lattice size.
REFINE_TARGETS = ("tc", "peaks")
MAX_ROUNDS, MAX_POINTS = 100, 1000


@dataclass(frozen=True)
class RefineSpec(_Section):
    """``[refine]``: adaptive rounds of temperatures placed where the target's error shrinks most
    (absent: the grid of ``sweep.temperatures`` only). See ``orchestrator.refine``."""

    target: str = "tc"
    precision: float = 0.002
    max_rounds: int = 6
    points_per_round: int = 4
    budget_core_hours: float = 2.0


    @classmethod
    def checked(cls, t: dict) -> dict:
        """The section's field values from a table of all its keys (:func:`_table`); raises
        :class:`SpecError`."""
        return dict(
            target=as_choice("refine.target", t["target"], REFINE_TARGETS),
            precision=as_float("refine.precision", t["precision"], gt=0),
            max_rounds=as_int("refine.max_rounds", t["max_rounds"], ge=1, le=MAX_ROUNDS),
            points_per_round=as_int("refine.points_per_round", t["points_per_round"], ge=1, le=MAX_POINTS),
            budget_core_hours=as_float("refine.budget_core_hours", t["budget_core_hours"], gt=0),
        )
