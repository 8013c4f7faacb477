"""Spec validation: good specs parse; each bad spec gets one clear line naming key, value, rule."""

from __future__ import annotations

import copy

import os

import pytest

from orchestrator.spec import TC, SpecError, load_spec, parse_spec

GOOD = {
    "sweep": {"name": "t", "seed": 1, "lattice_sizes": [4, 8], "temperatures": [2.0, 3.0]},
    "sampling": {"algorithm": "metropolis", "burn_in": 10, "samples": 20, "thin": 2},
    "rbm": {"n_hidden": [4, "N/4"], "epochs": 4, "checkpoints": [2], "log_partition": "exact"},
}


def with_change(path: str, value, *, delete: bool = False) -> dict:
    raw = copy.deepcopy(GOOD)
    *parents, leaf = path.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    if delete:
        del node[leaf]
    else:
        node[leaf] = value
    return raw


# (change, expected fragments of the one-line message)
BAD = [
    (("sweep.lattice_sizes", [1]), ["sweep.lattice_sizes[0]", ">= 4", "1"]),
    (("sweep.lattice_sizes", [2]), ["sweep.lattice_sizes[0]", ">= 4", "2"]),
    (("sweep.lattice_sizes", [100000]), ["sweep.lattice_sizes[0]", "<= 2,048", "100000"]),
    (("sweep.seed", 2**63), ["sweep.seed", "<= 9,223,372,036,854,775,807", str(2**63)]),
    (("sweep.seed", 10**30), ["sweep.seed", "<=", str(10**30)]),
    (("sweep.name", "tiny\n"), ["sweep.name", "letters", "'tiny\\n'"]),
    (("sweep.temperatures", [1e-300]), ["sweep.temperatures[0]", ">= 0.01", "1e-300"]),
    (("sweep.temperatures", [2.0, 1e30]), ["sweep.temperatures[1]", "<= 10000", "1e+30"]),
    (("sweep.temperatures", {"start": 1.0, "stop": 2.0, "num": 10**9}),
     ["sweep.temperatures.num", "<= 10,000", "1000000000"]),
    (("sampling.samples", 10**12), ["sampling.samples", "<= 100,000,000", str(10**12)]),
    (("sampling.burn_in", 10**30), ["sampling.burn_in", "<= 1,000,000,000", str(10**30)]),
    (("rbm.batch_size", 10**12), ["rbm.batch_size", "<= 1,000,000", str(10**12)]),
    (("rbm.gibbs_steps", 10**18), ["rbm.gibbs_steps", "<= 10,000,000", str(10**18)]),
    (("rbm.n_hidden", [10**9]), ["rbm.n_hidden[0]", "<= 100,000", str(10**9)]),
    (("sweep.lattice_sizes", [8, 7]), ["sweep.lattice_sizes[1]", "even", "checkerboard", "7"]),
    (("sweep.lattice_sizes", []), ["sweep.lattice_sizes", "non-empty"]),
    (("sweep.lattice_sizes", [8, 8]), ["sweep.lattice_sizes", "without repeats"]),
    (("sweep.lattice_sizes", [8.5]), ["sweep.lattice_sizes[0]", "integer", "8.5"]),
    (("sweep.lattice_sizes", [True]), ["sweep.lattice_sizes[0]", "integer", "True"]),
    (("sweep.temperatures", [2.0, 0.0]), ["sweep.temperatures[1]", ">= 0.01", "0.0"]),
    (("sweep.temperatures", [-1.0]), ["sweep.temperatures[0]", ">= 0.01", "-1.0"]),
    (("sweep.temperatures", ["hot"]), ["sweep.temperatures[0]", "number", "hot"]),
    (("sweep.temperatures", {"start": -1.0, "stop": 3.0, "num": 3}), ["sweep.temperatures.start", ">= 0.01", "-1.0"]),
    (("sweep.temperatures", {"start": 3.0, "stop": 2.0, "num": 3}), ["sweep.temperatures.stop", "> 3", "2.0"]),
    (("sweep.temperatures", {"start": 1.0, "stop": 2.0, "num": 0}), ["sweep.temperatures.num", ">= 1", "0"]),
    (("sweep.temperatures", {"start": 1.0, "stop": 2.0}), ["sweep.temperatures.num", "required"]),
    (("sweep.temperatures", {"start": 1.0, "stop": 3.0, "num": 3, "step": 1}),
     ["unknown key", "sweep.temperatures.step", "did you mean 'stop'"]),
    (("sweep.temperatures", {"start": 1.0, "stop": 3.0, "num": 3, "refine_near_tc": {"width": -0.1}}),
     ["sweep.temperatures.refine_near_tc.width", "> 0", "-0.1"]),
    (("sweep.seed", -3), ["sweep.seed", ">= 0", "-3"]),
    (("sweep.seed", "abc"), ["sweep.seed", "integer", "abc"]),
    (("sweep.name", "my sweep/1"), ["sweep.name", "letters", "my sweep/1"]),
    (("sweep.seed", None), ["sweep.seed", "required"]),
    (("sweep.lattice_size", [8]), ["unknown key 'sweep.lattice_size'", "did you mean 'lattice_sizes'"]),
    (("sampling.burnin", 5), ["unknown key 'sampling.burnin'", "did you mean 'burn_in'"]),
    (("sampling.algorithm", "heatbath"), ["sampling.algorithm", "metropolis | wolff | multispin | auto", "heatbath"]),
    (("sampling.burn_in", -5), ["sampling.burn_in", ">= 0", "-5"]),
    (("sampling.samples", 0), ["sampling.samples", ">= 1", "0"]),
    (("sampling.thin", 0), ["sampling.thin", ">= 1", "0"]),
    (("sampling.thin", "sometimes"), ["sampling.thin", '"auto"', "sometimes"]),
    (("rbm.method", "pcdd"), ["rbm.method", "cd | pcd", "pcdd"]),
    (("rbm.init", "random"), ["rbm.init", "auto | gaussian | site", "random"]),
    (("rbm.n_hidden", ["N/0"]), ["rbm.n_hidden[0]", "fraction of N", "N/0"]),
    (("rbm.n_hidden", ["M/4"]), ["rbm.n_hidden[0]", "fraction of N", "M/4"]),
    (("rbm.n_hidden", ["N/32"]), ["rbm.n_hidden[0]", "at least 1 hidden unit", "N/32"]),
    (("rbm.k", 0), ["rbm.k", ">= 1", "0"]),
    (("rbm.learning_rate", 0.0), ["rbm.learning_rate", "> 0", "0.0"]),
    (("rbm.checkpoints", [5]), ["rbm.checkpoints[0]", "<= rbm.epochs (4)", "5"]),
    (("rbm.held_out", 1.0), ["rbm.held_out", "< 1", "1.0"]),
    (("rbm.seeds", []), ["rbm.seeds", "non-empty"]),
    (("rbm.l1", -1e-3), ["rbm.l1", ">= 0", "-0.001"]),
    (("rbm.log_partition", "guess"), ["rbm.log_partition", "auto | exact | ais", "guess"]),
    (("rbm.n_hidden", [32]), ["rbm.n_hidden[0]", "max_exact_units (20)", "exact", "32", "L = 8"]),
    (("rbm.epoch", 3), ["unknown key 'rbm.epoch'", "did you mean 'epochs'"]),
    (("analysis.block_sizes", [3]), ["analysis.block_sizes", "divisor", "3"]),
    (("analysis.block_sizes", "all"), ["analysis.block_sizes", '"auto"', "all"]),
    (("rg_flow.block", 1), ["rg_flow.block", ">= 2", "1"]),
    (("rg_flow.rbm_flow_samples", 0), ["rg_flow.rbm_flow_samples", ">= 1", "0"]),
    (("rg_flow.rbm_flow_samples", "all"), ["rg_flow.rbm_flow_samples", '"auto"', "all"]),
    (("samplng", {}), ["unknown key 'samplng'", "did you mean 'sampling'"]),
]


def test_good_spec_parses_and_round_trips():
    spec = parse_spec(GOOD)
    assert spec.lattice_sizes == (4, 8)
    assert spec.rbm.checkpoints == (0, 2, 4)  # 0 and the last epoch are always recorded
    assert parse_spec(spec.to_dict()) == spec


def test_temperature_range_is_refined_near_tc():
    raw = with_change("sweep.temperatures",
                      {"start": 1.5, "stop": 3.5, "num": 5, "refine_near_tc": {"width": 0.2, "num": 5}})
    temps = parse_spec(raw).temperatures
    assert temps[0] == 1.5 and temps[-1] == 3.5
    near = [t for t in temps if abs(t - TC) <= 0.2 + 1e-9]
    assert len(near) == 5 and any(abs(t - TC) < 1e-6 for t in near)
    assert list(temps) == sorted(set(temps))


@pytest.mark.parametrize("change, fragments", BAD, ids=[f"{c[0]}={c[1]!r}"[:60] for c, _ in BAD])
def test_bad_spec_gets_one_clear_line(change, fragments):
    path, value = change
    raw = with_change(path, value, delete=value is None)
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_per_task_memory_caps():
    raw = with_change("sweep.lattice_sizes", [2048])
    raw["sampling"]["samples"] = 4096
    with pytest.raises(SpecError, match=r"sampling.samples x L\^2 must be <= 8,589,934,592 .* 4,096 x 2048\^2"):
        parse_spec(raw)
    raw = with_change("sweep.lattice_sizes", [1024])
    raw["rbm"] = {"n_hidden": ["N/2"]}
    with pytest.raises(SpecError, match=r"rbm.n_hidden\[0\] x N must be <= 268,435,456 weights"):
        parse_spec(raw)


def test_there_are_at_least_twenty_bad_specs():
    assert len(BAD) >= 20


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep]\nname = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)


def test_every_error_is_reported_at_once_one_per_line():
    raw = copy.deepcopy(GOOD)
    raw["sweep"]["seed"] = -1
    raw["sweep"]["lattice_sizes"] = [2]
    raw["sampling"]["burn_in"] = "long"
    raw["sampling"]["thinn"] = 3
    raw["rbm"]["k"] = 0
    raw["rbm"]["held_out"] = 1.5
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    lines = str(info.value).splitlines()
    keys = ["sweep.seed", "sweep.lattice_sizes[0]", "unknown key 'sampling.thinn'",
            "sampling.burn_in", "rbm.k", "rbm.held_out"]
    assert len(lines) == len(keys), lines
    for key in keys:
        assert sum(line.startswith(key) for line in lines) == 1, (key, lines)


def test_cli_prints_each_error_on_its_own_line(tmp_path, capsys):
    from orchestrator.cli import main

    spec = tmp_path / "bad.toml"
    spec.write_text('[sweep]\nname = "x"\nseed = -1\nlattice_sizes = [3]\ntemperatures = [0]\n')
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("rgsweep: error: ") for line in err)
    assert [line.split()[2] for line in err] == ["sweep.seed", "sweep.lattice_sizes[0]",
                                                  "sweep.temperatures[0]"]


def test_spec_is_read_as_a_bounded_prefix(tmp_path):
    with pytest.raises(SpecError, match="must be a regular file"):
        load_spec("/dev/zero")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="must be a regular file"):  # opening it would block
        load_spec(fifo)
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * 2**20)
    with pytest.raises(SpecError, match="at most 1,048,576 bytes"):
        load_spec(big)
    with pytest.raises(SpecError, match="cannot be read"):
        load_spec(tmp_path)


GOOD_SWEEP = '[sweep]\nname = "x"\nseed = 1\nlattice_sizes = [8]\ntemperatures = [2.0, 2.5]\n'


@pytest.mark.parametrize("text,lines", [
    # a required key missing does not hide the other errors
    ('[sweep]\nname = "x"\nlattice_sizes = [8]\ntemperatures = [2.0]\n[sampling]\nsamples = -1\n',
     ["sweep.seed is required", "sampling.samples must be"]),
    ('[sampling]\nburnin = 3\n', ["[sweep] section is required", "unknown key 'sampling.burnin'"]),
    ('[sweep]\nname = "x y"\nseed = 1\nlattice_sizes = [8]\n',
     ["sweep.temperatures is required", "sweep.name must be"]),
    # a rule across keys is reported once (not again for the default standing in for the key),
    # and keys with digits (rbm.l1, rbm.l2) are set aside like any other
    (GOOD_SWEEP.replace("[2.0, 2.5]", "[2.0]") + "[sampling]\nsamples = 1\n[rbm]\nheld_out = 0.5\nl2 = -1\n"
     "[rg_flow]\nepochs = 0\n",
     ["rbm.l2 must be", "rbm.held_out must leave", "rg_flow.epochs must be", "sweep.temperatures must be at least 2"]),
    # the stand-in for broken temperatures satisfies [rg_flow]'s rule (two of them): one line
    (GOOD_SWEEP.replace("[2.0, 2.5]", "[0.0]") + "[rg_flow]\n", ["sweep.temperatures[0] must be >= 0.01"]),
    ("[sampling]\nburnin = 1\n[rg_flow]\n", ["[sweep] section is required", "unknown key 'sampling.burnin'"]),
    # a section of the wrong type is one error, not two
    ('[[sweep]]\nname = "a"\n', ["[sweep] must be a table"]),
    ('sweep = 3\n', ["[sweep] must be a table"]),
    (GOOD_SWEEP.replace("[2.0, 2.5]", "{start = 1, stop = 2, num = 3, refine_near_tc = 3}")
     + "[sampling]\nsamples = -1\n",
     ["[sweep.temperatures.refine_near_tc] must be a table", "sampling.samples must be"]),
    # a key with a newline in it is shown escaped, on one line
    (GOOD_SWEEP + '[sampling]\n"burn\\nin" = 3\nsamples = -1\n',
     ["unknown key 'sampling.\"burn\\nin\"'", "sampling.samples must be"]),
    # repeats are typing mistakes
    (GOOD_SWEEP.replace("[2.0, 2.5]", "[2.0, 2.0]"), ["sweep.temperatures must be a list without repeats"]),
    (GOOD_SWEEP + '[rbm]\nn_hidden = [16, 16]\n', ["rbm.n_hidden must be a list without repeats"]),
    (GOOD_SWEEP.replace("[8]", "[16]") + '[rg_flow]\nlattice_sizes = [16, 16]\n',
     ["rg_flow.lattice_sizes must be a list without repeats"]),
    # a flow is matched against the curve of several temperatures
    (GOOD_SWEEP.replace("[2.0, 2.5]", "[2.0]") + "[rg_flow]\n", ["sweep.temperatures must be at least 2"]),
    # values that Python cannot print or parse plainly
    (GOOD_SWEEP.replace("seed = 1", "seed = 0x" + "f" * 6000), ["sweep.seed must be", "<an integer of 24,000 bits>"]),
    (GOOD_SWEEP.replace("[2.0, 2.5]", "[" * 3000 + "]" * 3000), ["is not valid TOML here: arrays or tables nested"]),
])
def test_every_error_on_its_own_line_whatever_breaks(tmp_path, capsys, text, lines):
    from orchestrator.cli import main

    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "Traceback" not in "\n".join(err)
    assert all(line.startswith("rgsweep: error: ") for line in err), err
    if len(lines) == 2 and lines[1].startswith("<"):  # one message with two parts
        assert len(err) == 1 and all(part in err[0] for part in lines), err
        return
    assert len(err) == len(lines), err
    for line, want in zip(err, lines):
        assert want in line, (line, want)


def test_a_spec_file_named_with_a_newline_gets_a_one_line_error(tmp_path, capsys):
    from orchestrator.cli import main

    spec = tmp_path / "bad\nname.toml"
    spec.write_text("[sweep\n")
    assert main(["validate", str(spec)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "bad\\nname.toml" in line and "is not valid TOML" in line


def test_sections_and_sweeps_built_in_code_obey_the_same_rules():
    """Validation lives with each section: constructing an invalid one raises what the spec
    file would, and a valid one is normalised the same way (checkpoints gain 0 and the last)."""
    from orchestrator.spec import RBMSpec, SamplingSpec, SweepSpec

    with pytest.raises(SpecError, match=r"rbm\.epochs must be an integer >= 1"):
        RBMSpec(epochs=-1)
    with pytest.raises(SpecError, match=r"sampling\.thin must be"):
        SamplingSpec(thin=0)
    assert RBMSpec(checkpoints=[5], epochs=10).checkpoints == (0, 5, 10)
    with pytest.raises(SpecError, match=r"must be even with the checkerboard sampler"):
        SweepSpec(name="s", seed=1, lattice_sizes=(9,), temperatures=(2.0,))
    spec = SweepSpec(name="s", seed=1, lattice_sizes=[16, 8], temperatures=[2.5, 2.0])
    assert spec.lattice_sizes == (8, 16) and spec == parse_spec(spec.to_dict())


def test_a_range_may_give_more_temperatures_than_a_list_may_name():
    """The 10,000 limit is on a list the user writes; a range plus its refinement may give more
    (and the spec re-validated on construction must accept what parsing accepted)."""
    raw = {"sweep": {"name": "wide", "seed": 1, "lattice_sizes": [8],
                     "temperatures": {"start": 0.01, "stop": 1e4, "num": 10_000,
                                      "refine_near_tc": {"width": 0.3, "num": 10_000}}}}
    assert len(parse_spec(raw).temperatures) > 10_000
