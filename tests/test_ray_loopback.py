"""Security: the embedded Ray of the default backend listens on loopback only, with no dashboard."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orchestrator.execute import THREAD_ENV

# Runs in a fresh interpreter (with the cluster switch forced on, the worst case): starts the embedded backend exactly as `rgsweep run` does, then
# lists every listening TCP socket owned by this process or any of its descendants.
SCRIPT = r"""
import json, os
from orchestrator.backends import RayBackend

def children_of(root):
    parent = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent[int(pid)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            pass
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids); frontier += kids
    return tree

def socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes

def listening():
    out = {}
    for name in ("tcp", "tcp6"):
        with open(f"/proc/net/{name}") as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A":  # LISTEN
                    out[cols[9]] = cols[1]
    return out

from orchestrator.execute import THREAD_ENV
backend = RayBackend(workers=2)
backend.start()
import ray
worker_env = ray.get([ray.remote(lambda: ({k: os.environ.get(k) for k in THREAD_ENV}, os.getpid()))
                      .remote() for _ in range(2)])
driver_env = {k: os.environ.get(k) for k in THREAD_ENV}
listen = listening()
found = []
for pid in children_of(os.getpid()):
    for inode in socket_inodes(pid):
        if inode in listen:
            found.append(listen[inode])
print(json.dumps({"listen": found, "worker_env": worker_env, "driver_env": driver_env}))
backend.close()
"""

LOOPBACK_HEX = {"0100007F",                                   # 127.0.0.1 (tcp)
                "00000000000000000000000001000000",           # ::1 (tcp6)
                "0000000000000000FFFF00000100007F"}           # ::ffff:127.0.0.1 (tcp6)


@pytest.mark.ray
def test_embedded_ray_listens_on_loopback_only():
    # a user's own thread setting (OPENBLAS_NUM_THREADS=4) must not reach the workers
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                            env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
                                 "OPENBLAS_NUM_THREADS": "4"})
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # the workers compute in one thread; the driver's environment is left as it was
    for env_of_worker, _pid in seen["worker_env"]:
        assert env_of_worker == THREAD_ENV
    assert seen["driver_env"] == {k: "4" if k == "OPENBLAS_NUM_THREADS" else None for k in THREAD_ENV}
    addresses = seen["listen"]
    assert len(addresses) >= 3  # gcs, raylet, workers: the check saw Ray's sockets
    hosts = {addr.split(":")[0] for addr in addresses}
    assert hosts <= LOOPBACK_HEX, f"non-loopback listeners: {sorted(hosts - LOOPBACK_HEX)}"
