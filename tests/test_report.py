"""Behavioural: `build_report` on a real (small) sweep with an RBM stage, and on partial data.

The dataset is built once per module through the CLI with a spec smaller than
sweeps/quick.toml (which, with its RBM stage, takes ~40 s serial): 3 sizes x 6 temperatures,
a 4-unit RBM trained for 3 epochs. The report must build, reference only files that exist,
write non-empty PNGs, and on partial data list what is missing instead of failing.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.report import build_report
from orchestrator.cli import main

SPEC = """
[sweep]
name = "report-test"
seed = 99
lattice_sizes = [4, 8, 12]
temperatures = [2.0, 2.15, 2.27, 2.4, 2.55, 2.7]

[sampling]
algorithm = "metropolis"
burn_in = 200
samples = 400
thin = 5

[rbm]
n_hidden = [4]
method = "cd"
k = 1
learning_rate = 0.05
epochs = 3
batch_size = 50
checkpoints = [0, 3]
held_out = 0.2
seeds = [0]
"""

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    spec = root / "spec.toml"
    spec.write_text(SPEC)
    out = root / "out"
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    return out


def _check_report(index: Path) -> tuple[str, str, set[str]]:
    """The HTML references only existing files; every PNG is a non-empty PNG. Returns texts."""
    assert index.name == "index.html" and index.exists()
    html = index.read_text()
    refs = set(re.findall(r'(?:src|href)="([^"]+)"', html))
    for ref in refs:
        assert "://" not in ref, ref  # opens offline
        assert (index.parent / ref).is_file(), f"index.html references missing {ref}"
    pngs = list(index.parent.glob("*.png"))
    for png in pngs:
        data = png.read_bytes()
        assert len(data) > 1000 and data[:8] == PNG_MAGIC, png.name
    assert {p.name for p in pngs} == {r for r in refs if r.endswith(".png")}
    summary = (index.parent / "summary.md").read_text()
    return html, summary, {p.name for p in pngs}


def test_report_from_a_full_sweep(dataset):
    index = build_report(dataset, n_boot=20)
    assert index == dataset / "report" / "index.html"
    html, summary, pngs = _check_report(index)
    assert {"thermodynamics.png", "binder.png", "peaks.png", "finite_size.png", "free_energy.png",
            "rbm_kl_fidelity.png", "rbm_spectrum.png", "rbm_alignment.png", "rbm_physics.png",
            "rbm_vs_mc.png", "spectra.png",
            "receptive_fields.png"} <= pngs
    est = pd.read_csv(index.parent / "estimates.csv")
    binder = est[est["quantity"].str.startswith("Tc, Binder crossing")]
    assert len(binder) == 1 and binder["error"].iloc[0] > 0
    assert abs(binder["measured"].iloc[0] - binder["exact"].iloc[0]) < 0.1  # L <= 12, 400 samples
    assert est["quantity"].str.startswith("C peak position").sum() == 3
    assert "2.269185" in summary and "## Missing or not computed" in summary
    assert "Where each signature peaks or changes fastest" in summary


def test_report_on_partial_results(dataset, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(dataset, partial)
    shutil.rmtree(partial / "series")
    for name in ("rbm", "free_energy", "spectra", "rg_alignment", "transport", "rbm_params"):
        shutil.rmtree(partial / name, ignore_errors=True)
    shutil.rmtree(partial / "ising" / "L12")
    html, summary, pngs = _check_report(build_report(partial, n_boot=10))
    est = pd.read_csv(partial / "report" / "estimates.csv")
    assert not est["quantity"].str.startswith("gamma/nu").any()  # 2 sizes: a 0-dof fit stays out
    # a part deleted behind its manifest is named, never silently a missing row
    assert "ising/L12/part-" in summary and "is missing although task" in summary
    shutil.rmtree(partial / "_tasks" / "L12")  # L = 12 not finished: a run in progress
    html, summary, pngs = _check_report(build_report(partial, n_boot=10))
    assert "thermodynamics.png" in pngs and "binder.png" not in pngs
    assert "no `series` table" in summary
    for name in ("rbm", "spectra", "rg_alignment"):
        assert f"table `{name}`: no rows" in summary
    # rebuilding with less data must not leave stale figures behind
    shutil.rmtree(partial / "ising")
    _, summary, pngs = _check_report(build_report(partial, n_boot=10))
    assert pngs == set() and "table `ising`: no rows" in summary


def test_report_on_an_empty_folder(tmp_path):
    _, summary, pngs = _check_report(build_report(tmp_path / "nothing", n_boot=10))
    assert pngs == set()
    assert "no estimate could be computed" in summary
    assert "sweep.json" in summary


def test_example_analysis_runs(dataset):
    import runpy

    example = Path(__file__).resolve().parent.parent / "examples" / "critical_slowing_down.py"
    namespace = runpy.run_path(str(example))
    path = namespace["main"]([str(dataset)])
    assert path.exists() and path.read_bytes()[:8] == PNG_MAGIC


FLOW_SPEC = """
[sweep]
name = "report-flow-test"
seed = 5
lattice_sizes = [4, 8]
temperatures = { start = 1.5, stop = 3.5, num = 7 }

[sampling]
algorithm = "wolff"
burn_in = 200
samples = 400
thin = 2

[rbm]
n_hidden = [3]
method = "cd"
epochs = 2
batch_size = 50
checkpoints = [0, 2]
seeds = [0]

[rg_flow]
layers = ["N/4", "N/16"]
rbm_flow_steps = 3
epochs = 5
"""


@pytest.fixture(scope="module")
def flow_dataset(tmp_path_factory) -> Path:
    """A sweep with both an RBM stage (3 hidden units) and an RG-flow stage (L = 8 only)."""
    root = tmp_path_factory.mktemp("report-flow")
    spec = root / "spec.toml"
    spec.write_text(FLOW_SPEC)
    out = root / "out"
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    return out


def _markdown_table(summary: str, caption: str) -> pd.DataFrame:
    """The Markdown table printed under ``**caption**`` in summary.md."""
    lines = summary.split(f"**{caption}", 1)[1].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return pd.DataFrame(rows[2:], columns=rows[0])


def test_report_with_rg_flows(flow_dataset):
    html, summary, pngs = _check_report(build_report(flow_dataset, n_boot=20))
    assert "<h2>RG flows</h2>" in html and "## RG flows" in summary
    assert {"rg_flow_L8.png", "rg_flow_fields_L8.png"} <= pngs
    assert not any(p.startswith("rg_flow") and "L4" in p for p in pngs)  # L = 4 has no flow
    where = _markdown_table(summary, "Where the flows go")
    assert set(where["kind"]) == {"blockspin", "rbmflow", "stacked"} and set(where["L"]) == {"8"}
    est = pd.read_csv(flow_dataset / "report" / "estimates.csv")
    fixed = est[est["quantity"].str.startswith("Tc, block-spin fixed point")]
    assert list(fixed["quantity"]) == ["Tc, block-spin fixed point L=8 -> 4"]
    assert fixed["error"].iloc[0] > 0 and abs(fixed["measured"].iloc[0] - fixed["exact"].iloc[0]) < 0.3
    # the flow's stacked layers (n_h = 16 and 4 at L = 8) stay out of the training-stage section
    sig = _markdown_table(summary, "Signature curves")
    assert set(sig["n_hidden"]) == {"3"}
    assert "rbm_alignment.png" in pngs and "spectra.png" in pngs and "receptive_fields.png" in pngs


def test_report_without_rg_flow_lists_it_as_missing(dataset):
    _, summary, pngs = _check_report(build_report(dataset, n_boot=10))
    assert "## RG flows" not in summary and not any(p.startswith("rg_flow") for p in pngs)
    assert "RG flows: no `rg_flow` table" in summary.split("## Missing or not computed", 1)[1]


def test_the_report_reads_like_a_paper(dataset, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    index = build_report(copy, n_boot=10, formats=("png", "svg", "pdf"))
    html, summary, pngs = _check_report(index)
    figures = re.findall(r"<figure>(.*?)</figure>", html, re.S)
    assert len(figures) == len(pngs) and all(re.search(r"<figcaption>[^<]{40,}", f) for f in figures)
    headline = html.split("<h2>Estimates against the exact answers</h2>", 1)[1].split("<h2>", 1)[0]
    assert re.search(r"<td>\d\.\d+\(\d{1,2}\)</td>", headline) and "<th>error</th>" not in headline
    assert "<details><summary>" in html and "<details><summary>" in summary  # long tables fold
    assert "`" not in html  # Markdown's backticks became <code>
    for png in pngs:
        stem = index.parent / png
        assert stem.with_suffix(".svg").stat().st_size > 1000, png
        assert stem.with_suffix(".pdf").read_bytes()[:4] == b"%PDF", png
        assert f'href="{stem.with_suffix(".svg").name}"' in html


def test_numbers_are_value_and_error_in_the_last_digits():
    from analysis.report_page import paired, value_error

    assert value_error(2.255843, 0.0071870) == "2.2558(72)"
    assert value_error(1.0, 0.0995) == "1.00(10)"
    assert value_error(12.34, 7.2) == "12.3(72)"
    assert value_error(4567.0, 123.0) == "4567(123)"
    assert value_error(0.5, 0.0) == "0.5" and value_error(float("nan"), 0.1) == "nan"
    assert value_error(2.2558, 1e-20) == "2.256 ± 1e-20" and value_error(3e12, 4e10) == "3e+12 ± 4e+10"
    frame = paired(pd.DataFrame({"T": [2.0], "e": [-1.5], "e_err": [0.012], "n": [3]}))
    assert list(frame.columns) == ["T", "e", "n"] and frame["e"].iloc[0] == "-1.500(12)"


def test_report_says_which_ais_estimates_are_only_lower_bounds():
    import pandas as pd

    from analysis.report_rbm import ais_lower_bound_note

    rows = [  # two tasks at L = 64 (one unconverged at its final epoch), one exact at L = 8
        ("a", 64, 1024, 0, "ais", float("nan")), ("a", 64, 1024, 50, "ais", float("nan")),
        ("b", 64, 1024, 0, "ais", float("nan")), ("b", 64, 1024, 50, "ais", 0.3),
        ("c", 8, 16, 50, "exact", 0.0)]
    fe = pd.DataFrame(rows, columns=["task_id", "L", "n_hidden", "epoch", "lnZ_method", "lnZ_rbm_err"])
    note = ais_lower_bound_note(fe)
    assert "L = 64, n_h = 1024: 1 of 2" in note and "lower bound" in note
    assert ais_lower_bound_note(fe[fe["task_id"] != "a"]) == ""  # epoch 0 alone does not count
    assert ais_lower_bound_note(pd.DataFrame()) == ""
