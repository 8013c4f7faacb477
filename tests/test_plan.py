"""Planning: content-hash ids, id-derived seeds, dependency order."""

from __future__ import annotations

import copy
import json

from orchestrator.plan import make_plan, spawn_key, task_id
from orchestrator.spec import parse_spec

RAW = {
    "sweep": {"name": "p", "seed": 7, "lattice_sizes": [4, 8], "temperatures": [2.0, 3.0]},
    "rbm": {"n_hidden": [4, "N/4"], "seeds": [0, 1], "epochs": 2},
}


def test_ids_are_content_hashes_independent_of_grid_position():
    plan = make_plan(parse_spec(RAW))
    raw = copy.deepcopy(RAW)
    raw["sweep"]["temperatures"] = [1.5, 2.0, 2.5, 3.0]  # insert temperatures around the old ones
    bigger = make_plan(parse_spec(raw))
    old = {t.id: t for t in plan}
    new = {t.id: t for t in bigger}
    assert set(old) <= set(new)  # every old task (and so its seed and result) is unchanged
    for tid, task in old.items():
        assert new[tid].spawn_key == task.spawn_key == spawn_key(tid)
    assert len({t.spawn_key for t in bigger}) == len(bigger)


def test_id_changes_with_any_config_field_and_seed():
    base = {"L": 8, "T": 2.0, "algorithm": "metropolis", "burn_in": 10, "samples": 5, "thin": 1, "seed": 1}
    ids = {task_id("sample", base)}
    for key, value in [("T", 2.0000001), ("burn_in", 11), ("seed", 2), ("thin", "auto")]:
        ids.add(task_id("sample", {**base, key: value}))
    assert len(ids) == 5
    assert task_id("sample", dict(reversed(list(base.items())))) == task_id("sample", base)


def test_dag_training_depends_on_its_sample_task_and_comes_after_it():
    plan = make_plan(parse_spec(RAW))
    position = {t.id: i for i, t in enumerate(plan)}
    samples = [t for t in plan if t.kind == "sample"]
    trains = [t for t in plan if t.kind == "train"]
    assert len(samples) == 4
    # L=4: n_hidden 4 and N/4 = 4 coincide -> one size; L=8: 4 and 16. Two seeds each.
    assert len(trains) == (1 + 2) * 2 * 2
    for t in trains:
        (dep,) = t.deps
        assert position[dep] < position[t.id]
        source = plan.by_id()[dep]
        assert (source.L, source.T) == (t.L, t.T) and t.config.sample_task == dep
    assert {t.config.n_hidden for t in trains if t.L == 8} == {4, 16}
    assert {t.config.block_sizes for t in trains if t.L == 8} == {(2, 4)}


def test_config_is_typed_immutable_and_round_trips_through_its_json():
    import dataclasses

    import pytest

    from contract.configs import CONFIGS, config_from_json

    for task in make_plan(parse_spec(RAW)):
        cfg = task.config
        assert isinstance(cfg, CONFIGS[task.kind])
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.L = 999
        assert config_from_json(task.kind, task.config_json) == cfg
        assert json.loads(task.config_json) == cfg.to_dict()


def test_an_invalid_config_cannot_be_constructed():
    import dataclasses

    import pytest

    sample = make_plan(parse_spec(RAW)).tasks[0].config
    train = next(t for t in make_plan(parse_spec(RAW)) if t.kind == "train").config
    for cfg, field, value, rule in [(sample, "T", -1.0, "a number > 0"), (sample, "thin", 0, "auto"),
                                    (sample, "algorithm", "gibbs", "one of"), (train, "epochs", -1, ">= 1"),
                                    (train, "n_visible", 7, "L \\* L"), (train, "momentum", 1.0, r"\[0, 1\)")]:
        with pytest.raises(ValueError, match=f"{field} must be .*{rule}"):
            dataclasses.replace(cfg, **{field: value})


def test_code_versions_enter_the_ids_of_their_kind():
    import hashlib
    import json

    from contract.constants import CODE_VERSIONS
    from orchestrator.plan import task_id
    from contract.schemas import SCHEMA_VERSION

    cfg = {"L": 8, "T": 2.5, "seed": 1}

    def unversioned(kind):
        blob = json.dumps({"kind": kind, "config": cfg, "schema": SCHEMA_VERSION},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # sample 2: symmetrized stored configurations; train and flow 2: fused float32 kernels
    for kind in ("sample", "train", "flow"):
        assert CODE_VERSIONS[kind] > 1
        assert task_id(kind, cfg) != unversioned(kind)
    bumped = dict(CODE_VERSIONS, sample=CODE_VERSIONS["sample"] + 1)
    import contract.configs as configs
    before = {k: task_id(k, cfg) for k in CODE_VERSIONS}
    configs.CODE_VERSIONS, saved = bumped, configs.CODE_VERSIONS
    try:
        after = {k: task_id(k, cfg) for k in CODE_VERSIONS}
    finally:
        configs.CODE_VERSIONS = saved
    assert after["sample"] != before["sample"]
    assert after["train"] == before["train"] and after["flow"] == before["flow"]


def test_auto_learning_rate_and_init_resolve_per_hidden_size_in_the_configs():
    from orchestrator.plan import make_plan
    from orchestrator.spec import parse_spec

    base = {"sweep": {"name": "lr", "seed": 1, "lattice_sizes": [8], "temperatures": [2.5]},
            "rbm": {"n_hidden": [8, 15, 16, 64, 128, 256]}}
    configs = {t.config.n_hidden: t.config for t in make_plan(parse_spec(base)) if t.kind == "train"}
    # 0.025 up to 256 units, then 6.4 / n_h, whatever the lattice
    assert {n: c.learning_rate for n, c in configs.items()} == {
        8: 0.025, 15: 0.025, 16: 0.025, 64: 0.025, 128: 0.025, 256: 0.025}
    # site-anchored starts from N/4 = 16 units up
    assert {n: c.init for n, c in configs.items()} == {
        8: "gaussian", 15: "gaussian", 16: "site", 64: "site", 128: "site", 256: "site"}
    large = {"sweep": {**base["sweep"], "lattice_sizes": [64]}, "rbm": {"n_hidden": ["N/4", "N", "N/512"]}}
    large_configs = {t.config.n_hidden: t.config for t in make_plan(parse_spec(large)) if t.kind == "train"}
    assert {n: c.learning_rate for n, c in large_configs.items()} == {1024: 0.00625, 4096: 0.0015625, 8: 0.025}
    explicit = {"sweep": base["sweep"], "rbm": {"n_hidden": [16, 64], "learning_rate": 0.025, "init": "site"}}
    auto = {"sweep": base["sweep"], "rbm": {"n_hidden": [16, 64]}}
    ids = [sorted(t.id for t in make_plan(parse_spec(s))) for s in (explicit, auto)]
    assert ids[0] == ids[1]  # "auto" is resolved before hashing: the same rate, the same task
