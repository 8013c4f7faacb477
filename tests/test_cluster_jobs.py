"""Behavioural: a real Ray head on loopback with token auth, and a sweep submitted as a Ray job.

This is the cluster path of docs/cluster.md on one machine: ``ray start --head`` (every listener
on 127.0.0.1, the dashboard too, token auth on), then ``ray job submit --working-dir . --
rgsweep run SPEC --address auto --out OUT`` through the Jobs API.  The job's tables must equal a
local ``--backend serial`` run's, and a client without the right token must be refused.

The head gets a private temp dir (``RAY_TMPDIR``), free ports and its own session; it is ended by
its pid (SIGTERM to ``ray start --block``, which stops its children), then whatever is left of
that session by pid.  Nothing here touches another Ray on the machine.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.cli import main
from test_run import tables_of

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ROOT = Path(__file__).resolve().parent.parent
QUICK = ROOT / "sweeps" / "quick.toml"
BIN = Path(sys.executable).parent
LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}

#: sweeps/quick.toml cut to a few seconds of work: one small L, few temperatures, short runs.
REDUCTIONS = {
    "lattice_sizes": "[8]",
    "temperatures": "[2.0, 2.269185, 3.0]",
    "burn_in": "300",
    "samples": "400",
    "thin": "5",
    "n_hidden": "[16]",
    "epochs": "10",
    "checkpoints": "[0, 10]",
}


def reduced_quick(path: Path, name: str = "tiny", **changes: str) -> Path:
    """Write sweeps/quick.toml with the keys of :data:`REDUCTIONS` (and ``changes``) replaced."""
    text = QUICK.read_text()
    for key, value in {"name": f'"{name}"', **REDUCTIONS, **changes}.items():
        text, n = re.subn(rf"^{key}\s*=.*$", f"{key} = {value}", text, count=1, flags=re.M)
        assert n == 1, f"sweeps/quick.toml has no line '{key} = ...' any more"
    path.write_text(text)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    """Pids of the processes in session ``sid`` (the head was started in a new session)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(pid))
    return pids


def listening_addresses(pids: list[int]) -> list[str]:
    """``HEXIP:HEXPORT`` of every listening TCP socket owned by one of ``pids``."""
    listen = {}
    for name in ("tcp", "tcp6"):
        with open(f"/proc/net/{name}") as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A":
                    listen[cols[9]] = cols[1]
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in listen:
                found.append(listen[target[8:-1]])
    return found


class Head:
    """``ray start --head --block`` on 127.0.0.1 with token auth, in its own session."""

    def __init__(self, num_cpus: int = 2):
        self.tmp = tempfile.mkdtemp(prefix="rgs-head-", dir="/tmp")  # short: unix socket paths
        self.token = secrets.token_hex(32)
        taken: set[int] = set()

        def distinct() -> int:  # free_port() may hand out a port twice; Ray refuses shared ports
            while (port := free_port()) in taken:
                pass
            taken.add(port)
            return port

        self.gcs_port, self.dashboard_port = distinct(), distinct()
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token,
                    "RAY_TMPDIR": self.tmp, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                    "RAY_USAGE_STATS_ENABLED": "0", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        ports = {"port": self.gcs_port, "dashboard-port": self.dashboard_port}
        for name in ("ray-client-server-port", "node-manager-port", "object-manager-port",
                     "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                     "runtime-env-agent-port", "metrics-export-port"):
            ports[name] = distinct()
        cmd = [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
               "--dashboard-host", "127.0.0.1", "--num-cpus", str(num_cpus), "--disable-usage-stats",
               "--temp-dir", f"{self.tmp}/ray", *(f"--{k}={v}" for k, v in ports.items())]
        self.log = open(f"{self.tmp}/head.log", "w")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.tmp)
        self.url = f"http://127.0.0.1:{self.dashboard_port}"
        self._wait_ready(timeout=90)
        self.start_s = time.perf_counter() - t0

    def request(self, path: str, token: str | None) -> int:
        req = urllib.request.Request(self.url + path)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited {self.proc.returncode}:\n{self.tail()}")
            try:
                if self.request("/api/jobs/", self.token) == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the Jobs API did not come up in {timeout} s:\n{self.tail()}")

    def tail(self) -> str:
        return Path(f"{self.tmp}/head.log").read_text()[-3000:]

    def ray(self, *args: str, env: dict | None = None, timeout: float = 240, cwd=None):
        """The ``ray`` CLI as a client of this head."""
        return subprocess.run([str(BIN / "ray"), *args], env=env or self.env, cwd=cwd,
                              capture_output=True, text=True, timeout=timeout)

    def stop(self) -> None:
        """SIGTERM to our ``ray start`` (it stops its children), then SIGKILL what is left, by pid."""
        sid = self.proc.pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while session_pids(sid) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in session_pids(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def head():
    h = Head()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def tiny_spec(tmp_path_factory):
    return reduced_quick(tmp_path_factory.mktemp("spec") / "tiny.toml")


@pytest.fixture(scope="module")
def serial_tiny(tiny_spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "tiny"
    assert main(["run", str(tiny_spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    return out


def test_head_listens_on_loopback_only(head):
    addresses = listening_addresses(session_pids(head.proc.pid))
    assert len(addresses) >= 4  # gcs, raylet, dashboard, agents: the check saw the head's sockets
    hosts = {a.split(":")[0] for a in addresses}
    assert hosts <= LOOPBACK_HEX, f"non-loopback listeners: {sorted(hosts - LOOPBACK_HEX)}"


def test_clients_without_the_token_are_refused(head):
    assert head.request("/api/jobs/", None) == 401
    assert head.request("/api/jobs/", "0" * 64) == 403
    wrong = {**head.env, "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    result = head.ray("job", "list", "--address", head.url, env=wrong, timeout=60)
    assert result.returncode != 0
    assert "Invalid authentication token" in result.stdout + result.stderr
    assert head.ray("job", "list", "--address", head.url, timeout=60).returncode == 0


def _clean_export(dest: Path) -> Path:
    """The repository's tracked files only, as README's cluster section recommends submitting:
    what the checkout also holds (a virtualenv, results) is not the job's to upload."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_sweep_submitted_as_a_ray_job_equals_a_serial_run(head, tiny_spec, serial_tiny, tmp_path):
    out = tmp_path / "job-out"
    source = _clean_export(tmp_path / "source")
    assert (source / "pyproject.toml").exists() and not (source / ".venv").exists()
    t0 = time.perf_counter()
    result = head.ray("job", "submit", "--address", head.url, "--submission-id", "rgsweep-tiny",
                      "--working-dir", str(source), "--",
                      "rgsweep", "run", str(tiny_spec), "--address", "auto", "--out", str(out), "--quiet",
                      cwd=ROOT)
    job_s = time.perf_counter() - t0
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "results:" in log and "0 failed" in log
    assert f"127.0.0.1:{head.gcs_port}" in log  # the job's driver joined this head (--address auto)
    print(f"\n[cluster] ray start -> Jobs API ready {head.start_s:.1f} s; "
          f"job submit -> done {job_s:.1f} s")

    status = head.ray("job", "status", "--address", head.url, "rgsweep-tiny", timeout=60)
    assert "succeeded" in (status.stdout + status.stderr).lower()
    logs = head.ray("job", "logs", "--address", head.url, "rgsweep-tiny", timeout=60)
    assert "results:" in logs.stdout
    assert main(["status", str(out)]) == 0

    a, b = tables_of(serial_tiny), tables_of(out)
    assert a.keys() == b.keys() and "ising" in a and "rbm" in a
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)
