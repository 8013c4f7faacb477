"""What ``rgsweep --help`` and each subcommand's ``--help`` say beyond the options: a description
for a user and examples (tested to stay runnable in tests/test_cli_help.py)."""

__all__ = ["DESCRIPTION", "EXAMPLES"]

DESCRIPTION = """Sweeps of the 2D Ising model: Monte Carlo samples at every (L, T) of a TOML spec,
RBMs trained on each sample set, and Parquet tables of thermodynamics, free energies, W W^T
spectra and RG block alignment, with a phase-transition report. Every run resumes where the last
one stopped; the same spec and seed give the same numbers on every backend."""

EXAMPLES = {
    "top": "examples:\n  rgsweep validate sweeps/quick.toml\n  rgsweep run sweeps/quick.toml --report\n"
           "  rgsweep status results/quick\n\nexit status: 0 done, 1 some tasks failed (the rest saved), "
           "2 bad input,\n3 the machine failed (disk, permissions), 130/143 interrupted (rerun to resume)",
    "run": "examples:\n  rgsweep run sweeps/quick.toml                      # embedded Ray, all cores\n"
           "  rgsweep run sweeps/quick.toml --backend process --workers 2 --out /data/quick\n"
           "  rgsweep run spec.toml --address auto --out s3://bucket/run   # on a Ray cluster\n"
           "  rgsweep run sweeps/quick.toml --dry-run            # done / new / stale, nothing written\n"
           "Run the same command again to resume: finished tasks are skipped.",
    "validate": "examples:\n  rgsweep validate sweeps/paper-reduced.toml\n"
                "  rgsweep validate sweeps/paper.toml --workers 64 --json\n"
                "Bad input: one line per broken rule (key, value, rule), exit status 2.",
    "report": "examples:\n  rgsweep report results/quick && xdg-open results/quick/report/index.html\n"
              "  rgsweep report results/quick --format png,svg,pdf   # figures for a paper",
    "bench": "examples:\n  rgsweep bench --quick\n  rgsweep bench metropolis rbm --json bench.json",
    "status": "example:\n  rgsweep status results/quick      # exit 1 if anything is failed, missing or damaged",
}
