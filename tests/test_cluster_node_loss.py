"""Behavioural: a worker node dies mid-sweep; the sweep completes and its tables are unchanged.

A 3-node ``ray.cluster_utils.Cluster`` on loopback (a head that runs no tasks and two 1-CPU
worker nodes) lives in a subprocess: a Cluster and a plain ``ray.init`` cannot share a process.
There the sweep is driven by ``run_sweep(spec, out, backend="ray", address=cluster.address)``;
after the first results arrive a thread kills one worker node outright
(``cluster.remove_node(..., allow_graceful=False)``) while it is running a task.  Ray resubmits
the tasks lost with it (``orchestrator.backends.SYSTEM_RETRIES``) and reconstructs lost sample
objects from lineage, so no task may fail, and the tables must equal an undisturbed serial run's.
Then a node joins, and the backend's bound on pending tasks must follow the cluster's CPUs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.cli import main
from test_cluster_jobs import reduced_quick, session_pids
from test_run import tables_of

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ROOT = Path(__file__).resolve().parent.parent
KILL_AFTER = 3  # results in before the node dies: the sweep is under way, most of it still ahead

SCRIPT = r"""
import json, os, sys, threading, time
from ray.cluster_utils import Cluster
import ray
from orchestrator.runner import run_sweep
from orchestrator.scheduler import Callbacks
from orchestrator.spec import load_spec

spec_path, out, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
victim = cluster.add_node(num_cpus=1)
cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
report = {"cluster_start_s": time.perf_counter() - t0}
done = 0
killed = threading.Event()

def running_tasks(node):
    # worker processes of node's raylet executing a task (their proctitle is ray::_ray_run)
    raylet = node.all_processes["raylet"][0].process.pid
    busy = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline") as f:
                busy += ppid == raylet and f.read().startswith("ray::_ray_run")
        except OSError:
            pass
    return busy

def kill():
    deadline = time.monotonic() + 20
    while not running_tasks(victim) and time.monotonic() < deadline:
        time.sleep(0.05)  # kill it while it works, not between two tasks
    report["victim_busy"] = running_tasks(victim) > 0
    report["killed_at_s"] = time.perf_counter() - t_sweep
    raylet = victim.all_processes["raylet"][0].process
    cluster.remove_node(victim, allow_graceful=False)
    report["victim_raylet_dead"] = raylet.poll() is not None
    killed.set()

class Progress(Callbacks):
    def finished(self, task, ok):
        global done
        done += 1
        if kill_after and done == kill_after:
            report["results_before_kill"] = done
            threading.Thread(target=kill).start()

t_sweep = time.perf_counter()
summary = run_sweep(load_spec(spec_path), out, backend="ray", address=cluster.address, callbacks=Progress())
report.update(sweep_s=time.perf_counter() - t_sweep, run=summary.run, total=summary.total,
              failed=[str(f[1]) for f in summary.failed], blocked=len(summary.blocked),
              killed=killed.wait(timeout=60) if kill_after else False)

# The bound on pending tasks follows a joined cluster's CPUs (an autoscaler adds nodes late).
# Whether the GCS has noticed the dead node yet does not matter: compare with what it reports.
from orchestrator.backends import RayBackend
backend = RayBackend(address=cluster.address)
backend.start()

def bound_and_cpus():
    backend._sized_at = 0.0  # look now, not RESIZE_EVERY_S later
    return backend.max_in_flight, int(ray.cluster_resources().get("CPU", 0))

report["bounds"] = [bound_and_cpus()]
cluster.add_node(num_cpus=2)
cluster.wait_for_nodes()
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    bound, cpus = bound_and_cpus()
    if bound == 2 * cpus and cpus > report["bounds"][0][1]:
        break
    time.sleep(0.2)
report["bounds"].append((bound, cpus))
backend.close()
cluster.shutdown()
print("REPORT " + json.dumps(report), flush=True)
"""


def run_on_cluster(spec: Path, out: Path, kill_after: int, timeout: float = 240) -> dict:
    """Run ``SCRIPT`` in a fresh interpreter with a private Ray temp dir; end what it leaves."""
    tmp = tempfile.mkdtemp(prefix="rgs-nl-", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": tmp, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(spec), str(out), str(kill_after)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for pid in session_pids(proc.pid):  # anything of this cluster that outlived the script
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [ln for ln in stdout.splitlines() if ln.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, (stdout + stderr)[-4000:]
    report = json.loads(lines[-1][len("REPORT "):])
    report["retry_messages"] = (stdout + stderr).count("will be retried")  # Ray's log, for the record
    return report


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    temps = "[1.8, 2.0, 2.269185, 2.5, 3.0, 3.5]"  # 12 tasks: enough to lose a node mid-way
    # a long burn-in (about 0.25 s per sample task) keeps the nodes busy after the first results:
    # with tasks of a few ms the sweep could end before the victim was seen running one
    return reduced_quick(tmp_path_factory.mktemp("spec") / "loss.toml", name="loss", temperatures=temps,
                         burn_in="1000000")


def test_sweep_survives_losing_a_worker_node(spec, tmp_path):
    out = tmp_path / "cluster"
    report = run_on_cluster(spec, out, KILL_AFTER)
    print(f"\n[node loss] {json.dumps(report)}")
    assert report["killed"] and report["results_before_kill"] == KILL_AFTER
    assert report["victim_busy"], "the node was idle when it died: the test proved nothing"
    assert report["victim_raylet_dead"]
    assert report["failed"] == [] and report["blocked"] == 0
    assert report["run"] == report["total"] == 12
    (before, cpus_before), (after, cpus_after) = report["bounds"]  # 2 x CPUs, also after a node joined
    assert before == 2 * cpus_before and after == 2 * cpus_after and cpus_after > cpus_before

    serial = tmp_path / "serial"
    assert main(["run", str(spec), "--out", str(serial), "--backend", "serial", "--quiet"]) == 0
    a, b = tables_of(serial), tables_of(out)
    assert a.keys() == b.keys() and "ising" in a and "rbm" in a
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)
    assert main(["status", str(out)]) == 0
