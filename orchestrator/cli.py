"""``rgsweep``: the command line (its names are a contract: README, "The command line").

Exit status: 0 all done; 1 some tasks failed (the rest are saved); 2 bad input (nothing written);
3 the environment failed (disk full, permissions, OUT not a folder; one line names the path);
130 / 143 stopped by SIGINT / SIGTERM (everything finished is saved; rerun to resume).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from contextlib import contextmanager

from . import __version__, help_text
from .backends import BACKENDS
from .dryrun import validate_report
from .plan import make_plan
from .spec import TC, SpecError, SweepSpec, load_spec

__all__ = ["main"]

def _bad_input(message: str) -> int:
    for line in message.splitlines() or [""]:  # a spec with several errors: one line each
        print(f"rgsweep: error: {line}", file=sys.stderr)
    return 2


#: Exit status of a failure of the environment (disk full, permissions, OUT not a folder).
EXIT_ENVIRONMENT = 3


def _environment(err: BaseException, after: str = "") -> int:
    """One line for a failure of the machine rather than of the input or a task."""
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        what = f"{err.filename}: {err.strerror}"
    else:  # pyarrow's file system errors name their paths in the message
        what = str(err).splitlines()[0] if str(err) else type(err).__name__
    print(f"rgsweep: error: {what}" + (f"; {after}" if after else ""), file=sys.stderr)
    return EXIT_ENVIRONMENT


def cmd_validate(args) -> int:
    try:
        spec = load_spec(args.spec)
    except SpecError as err:
        return _bad_input(str(err))
    if args.workers is not None and args.workers < 1:
        return _bad_input(f"--workers: {args.workers} is not allowed; it must be an integer >= 1")
    lines, problem = validate_report(spec, args.spec, args.out, args.backend, args.workers, args.json)
    if problem:
        return _bad_input(problem)
    print("\n".join(lines))
    return 0


def _closing_summary(summary, spec: SweepSpec) -> None:
    m = summary.migrated
    if any(m.values()):
        print(f"rgsweep: moved {m['moved']} files from L=<L> folders to L<L> (today's layout, which "
              f"pandas and pyarrow read directly); {m['set_aside']} set aside in _damaged (their new place "
              f"held another file); {m['left']} left where they are (a link or no permission)",
              file=sys.stderr)
    for name, reason, moved in summary.rebuilt:
        print(f"rgsweep: {reason}; moved aside to {moved}; {name} rebuilt from this spec",
              file=sys.stderr)
    for task_id, reason, moved in summary.damaged:
        print(f"rgsweep: damaged result of task {task_id}: {reason}; moved aside to {moved}; recomputed",
              file=sys.stderr)
    print(f"\nresults: {summary.out}")
    print(f"tasks: {summary.total} total, {summary.run} run, {summary.skipped} skipped (already done), "
          f"{len(summary.failed)} failed, {len(summary.blocked)} not run (a dependency failed), "
          f"{len(summary.damaged)} damaged and recomputed; "
          f"{summary.wall_s:.1f} s on backend {summary.backend}")
    if summary.refine:
        rounds, stop = summary.refine["rounds"], summary.refine["stopped"] or {}
        print(f"refine: {len(rounds)} round(s); stopped at round {stop.get('round')}: {stop.get('reason')}")
    for task, error in summary.failed[:10]:
        print(f"  FAILED {task.kind} L={task.L} T={task.T:g} [{task.id}]: {error}")
    if len(summary.failed) > 10:
        print(f"  ... and {len(summary.failed) - 10} more (see `rgsweep status {summary.out}`)")
    try:
        from analysis import read_table

        ising = read_table(summary.out, "ising")
    except Exception as err:  # noqa: BLE001 - the summary must never hide the run's result
        print(f"(could not read the ising table for the summary: {err})")
        return
    if ising.empty:
        return
    print(f"near Tc = {TC:.6f}:      e        exact u     C        exact c")
    for L, rows in ising.groupby("L"):
        row = rows.iloc[(rows["T"] - TC).abs().argmin()]
        print(f"  L={L:<4d} T={row['T']:<9.6g} {row['e']:.5f}({_err(row['e_err'])}) {row['exact_u']:.5f}  "
              f"{row['C']:.4f}({_err(row['C_err'])}) {row['exact_c']:.4f}")


def _err(x: float) -> str:
    """An error bar in compact form: 0.00123 -> '0.0012'."""
    if not math.isfinite(x) or x <= 0:
        return "?"
    return f"{x:.2g}"


def cmd_run(args) -> int:
    try:
        spec = load_spec(args.spec)
    except SpecError as err:
        return _bad_input(str(err))
    from .runner import arguments_problem, default_out

    problem = arguments_problem(args.backend, args.workers, args.address)
    if problem:
        return _bad_input(problem)
    out = args.out or default_out(spec)
    if args.dry_run:
        from .dryrun import dry_run

        from .refine import plan_of
        from .store import Store

        print("\n".join(dry_run(plan_of(spec, Store(out)), out, args.workers, args.backend)))
        return 0

    from .progress import Progress
    from .runner import Interrupted, ResourceError, run_sweep
    from .store import LockError, StoreError

    progress = Progress(spec.name, args.backend, quiet=args.quiet, address=args.address)

    # the handler stays until the closing lines are printed: a second SIGTERM of a burst waits
    # for the first one's stop instead of killing the driver half-way through it
    with _terminate_as_stop():
        try:
            summary = run_sweep(spec, out, backend=args.backend, workers=args.workers,
                                address=args.address, callbacks=progress, verify=not args.no_verify,
                                check=not args.no_resource_check)
        except ResourceError as err:
            return _bad_input("\n".join(f"{line}; nothing was written (--no-resource-check runs it anyway)"
                                         for line in err.problems))
        except LockError as err:
            return _bad_input(str(err))
        except OSError as err:
            return _environment(err, "results committed before it are intact; rerun to resume")
        except StoreError as err:
            return _environment(err)
        except Interrupted as stop:
            progress.close()
            s = stop.summary
            saved = s.run - len(s.failed)
            print(f"rgsweep: stopped by {signal.Signals(stop.signum).name}: {saved} task(s) finished and "
                  f"saved in this run, {s.skipped + saved} of {s.total} done in {s.out}; work in flight "
                  "was discarded; run the same command again to resume", file=sys.stderr)
            return 128 + stop.signum
        finally:
            progress.close()
        try:
            _closing_summary(summary, spec)
        except BrokenPipeError:  # stdout closed by its reader (`| head`): the results are saved
            _quiet_stdout()
        if args.report:
            _report(out)
        return summary.exit_code


@contextmanager
def _terminate_as_stop():
    """SIGTERM (what SLURM, ``timeout`` and ``ray job stop`` send) stops the run the way Ctrl-C
    does: work in flight killed, the lock released, one line, exit 143."""
    from .runner import Stop

    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        if stopping:  # a burst of SIGTERMs: the first one stops the run, the rest wait for it
            return
        stopping = True
        raise Stop(signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        # once stopped, the rest of a burst is ignored until the process exits with 143
        signal.signal(signal.SIGTERM, signal.SIG_IGN if stopping else previous)


def cmd_status(args) -> int:
    from .runner import task_status
    from .spec import parse_spec
    from .store import Store

    from contract.layout import sweep_problem
    from .store import StoreError

    store = Store(args.out)
    fix = (f"; rerun `rgsweep run SPEC --out {args.out}` with the sweep's spec to rebuild it "
           "(the damaged file is moved aside, never deleted)")
    try:
        record = store.read_json("sweep.json", sweep_problem) if store.exists() else None
        if record is None:
            return _bad_input(f"{args.out} is not an rgsweep output folder (no sweep.json)")
        spec = parse_spec(record["spec"])
    except StoreError as err:
        return _bad_input(f"{err}{fix}")
    except SpecError as err:
        return _bad_input(f"{store.root}/sweep.json is damaged (its spec: {err}){fix}")
    from .refine import plan_of

    status = task_status(plan_of(spec, store), store, verify=not args.no_verify)
    print(f"{args.out}: sweep {spec.name!r}, {sum(len(status[k]) for k in STATUS_KEYS)} tasks")
    for key in STATUS_KEYS:
        print(f"  {key:8s}{len(status[key])}")
    for task in status["damaged"]:
        print(f"  damaged {task.kind} L={task.L} T={task.T:g} [{task.id}]: {status['reasons'][task.id]} "
              f"(the next run moves it aside and recomputes it)")
    if status["failed"]:
        from analysis import read_table

        failures = read_table(args.out, "failures")
        last = failures.sort_values("attempt").groupby("task_id").tail(1).set_index("task_id")
        for task in status["failed"]:
            err = last.loc[task.id, "error"] if task.id in last.index else "?"
            print(f"  failed {task.kind} L={task.L} T={task.T:g} [{task.id}]: {err}")
    if status["stale"]:
        print(f"  stale   {len(status['stale'])} finished tasks of an earlier spec or code version "
              "(kept on disk; the loaders skip them; see sweep.json history)")
        for m in status["stale"][:10]:
            print(f"  stale {m.kind} L={m.L} [{m.task_id}]")
    return 0 if not (status["failed"] or status["missing"] or status["damaged"]) else 1


STATUS_KEYS = ("done", "damaged", "failed", "missing")


def cmd_report(args) -> int:
    from .store import Store

    if not Store(args.out).exists() and "://" not in args.out:
        return _bad_input(f"{args.out} is not an rgsweep output folder (it does not exist)")
    # an unknown format is refused by build_report before anything is written (exit 2, one line)
    return _report(args.out, tuple(f.strip() for f in args.format.split(",") if f.strip()) or ("png",))


def _report(out: str, formats=("png",)) -> int:
    import time

    from analysis.report import build_report

    t0 = time.perf_counter()
    try:
        index = build_report(out, formats=formats)
    except ValueError as err:
        return _bad_input(str(err))
    print(f"report: {index} ({time.perf_counter() - t0:.1f} s); summary: {index.parent / 'summary.md'}")
    return 0


def cmd_bench(args) -> int:
    from benchmarks import run_bench

    return run_bench(args.suites, args.quick, args.json,
                     sweep_options={"save_model": args.save_model, "measured": args.measured})


def _sub(sub, name: str, help: str, description: str):
    return sub.add_parser(name, help=help, description=description, epilog=help_text.EXAMPLES[name],
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rgsweep", description=help_text.DESCRIPTION,
                                     epilog=help_text.EXAMPLES["top"],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rgsweep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True,
                                help="the command; each has its own --help")

    run = _sub(sub, "run", "run (or resume) a sweep",
               "Run every task of SPEC that OUT does not hold yet (sampling, then training and flows),\n"
               "writing each result atomically as it finishes.")
    run.add_argument("spec", help="the sweep spec (TOML)")
    run.add_argument("--out", help="output dataset (default: results/<sweep.name>); a path or URI")
    run.add_argument("--backend", choices=BACKENDS, default="ray",
                     help="ray (default: embedded local Ray on loopback), process, or serial")
    run.add_argument("--workers", type=int, default=None, help="parallel workers (default: all cores)")
    run.add_argument("--address", default=None, help="join a running Ray cluster (e.g. auto)")
    run.add_argument("--quiet", action="store_true", help="no start-up lines, progress bar or progress lines")
    run.add_argument("--dry-run", action="store_true",
                     help="list the tasks (done / new / stale against OUT) and what they need; write nothing")
    run.add_argument("--report", action="store_true", help="write OUT/report/ (rgsweep report) at the end")
    run.add_argument("--no-verify", action="store_true",
                     help="check finished parts by size only, not SHA-256 (faster on huge datasets)")
    run.add_argument("--no-resource-check", action="store_true",
                     help="run even if the estimated memory or disk exceeds this machine's")
    run.set_defaults(func=cmd_run)

    val = _sub(sub, "validate", "check a spec; predict its core-hours, critical path and wall time",
               "Check SPEC against every rule without running anything; print the tasks it plans, the\n"
               "core-hours the cost model predicts for them (by kind), the critical path, the wall time on\n"
               "2 workers and on --workers, the largest task's memory and the results' size on disk.")
    val.add_argument("spec", help="the sweep spec (TOML)")
    val.add_argument("--workers", type=int, default=None,
                     help="predict the wall time on this many workers too (default: this machine's cores)")
    val.add_argument("--out", default=None, help="leave out the tasks already done in this output folder")
    val.add_argument("--backend", choices=sorted(BACKENDS), default="ray",
                     help="the backend the run would use (serial: one worker; start-up differs)")
    val.add_argument("--json", action="store_true", help="print one JSON object (tasks, core_seconds, "
                     "peak_memory_bytes, critical_path_s, predicted_wall_s, ...) instead")
    val.set_defaults(func=cmd_validate)

    report = _sub(sub, "report", "write OUT/report/index.html and summary.md",
                  "Analyse the tables of OUT (Binder crossings, reweighted peaks, finite-size fits, the RBM\n"
                  "signatures against their nulls) into an offline HTML report, summary.md and PNGs.")
    report.add_argument("out", help="an output dataset written by rgsweep run (a path or URI)")
    report.add_argument("--format", default="png",
                        help="figure formats, comma-separated: png (always written: the page shows "
                             "it), svg, pdf (default: png)")
    report.set_defaults(func=cmd_report)

    bench = _sub(sub, "bench", "benchmarks against the peers a user would pick instead",
                 "Time the kernels and the orchestration side by side with what a user would use instead,\n"
                 "in one run, and print the ratios (docs/performance.md).")
    bench.add_argument("suites", nargs="*", help="metropolis multispin wolff rbm ais orchestration scaling sweep "
                       "(default: all)")
    bench.add_argument("--save-model", default=None, metavar="PATH",
                       help="sweep: write the fitted cost model here (rgsweep reads orchestrator/cost_model.json "
                            "of its installed package)")
    bench.add_argument("--measured", action="append", default=[], metavar="OUT",
                       help="sweep: also compare the cost model with the tasks measured in this output "
                            "folder (repeatable)")
    bench.add_argument("--quick", action="store_true", help="small sizes, few repeats (a smoke test)")
    bench.add_argument("--json", default=None, help="also write the records to this JSON file")
    bench.set_defaults(func=cmd_bench)

    status = _sub(sub, "status", "done / failed / missing tasks of an output folder",
                  "List the tasks of OUT's last plan that are done, failed, missing or damaged, and the\n"
                  "stale results of earlier specs or code versions (kept on disk, never read).")
    status.add_argument("out", help="an output dataset written by rgsweep run (a path or URI)")
    status.add_argument("--no-verify", action="store_true", help="check parts by size only, not SHA-256")
    status.set_defaults(func=cmd_status)
    return parser


def _quiet_stdout() -> None:
    """Point stdout at /dev/null after its reader went away, so that Python's flush at exit does
    not fail again (the recipe of Python's signal documentation)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `rgsweep status OUT | head -1`: the reader has what it wanted
        _quiet_stdout()
        return 0
    except OSError as err:  # the machine, not the input: disk full, permissions, a file for a folder
        return _environment(err)
    except KeyboardInterrupt:
        print("rgsweep: interrupted", file=sys.stderr)
        return 130
    except BaseException as err:  # SIGTERM after the run itself was over (closing lines, report)
        from .runner import Stop

        if not isinstance(err, Stop):
            raise
        print("rgsweep: stopped by SIGTERM; every finished task is saved", file=sys.stderr)
        return 128 + err.signum


if __name__ == "__main__":
    sys.exit(main())
