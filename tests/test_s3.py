"""Behavioural: ``--out s3://bucket/prefix?endpoint_override=...&scheme=http`` end to end.

A local S3-compatible server (moto's, in a thread of this process, on 127.0.0.1 and a free port)
stands in for S3; credentials come from the standard AWS environment variables, as on a cluster.
The sweep written to S3 must read back (``analysis.read_table("s3://...")``) equal to a local
run's, ``rgsweep status`` must work on the URI, a rerun must skip every task, and nothing may be
written to a local path named after the URI.
"""

from __future__ import annotations

import pandas as pd
import pytest

from orchestrator.cli import main
from test_cluster_jobs import reduced_quick
from test_run import tables_of

moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the test extra")
pafs = pytest.importorskip("pyarrow.fs")

pytestmark = pytest.mark.slow

BUCKET = "rgsweep-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    """``host:port`` of a fresh S3 server on loopback, with an empty bucket."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch, s3_endpoint):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(key, value)
    fs = pafs.S3FileSystem(endpoint_override=s3_endpoint, scheme="http", region="us-east-1",
                           allow_bucket_creation=True)
    if fs.get_file_info(BUCKET).type == pafs.FileType.NotFound:
        fs.create_dir(BUCKET)
    return fs


def test_sweep_to_s3_reads_back_equal_to_a_local_run(aws_env, s3_endpoint, tmp_path, monkeypatch, capsys):
    spec = reduced_quick(tmp_path / "tiny.toml")
    local = tmp_path / "local"
    assert main(["run", str(spec), "--out", str(local), "--backend", "serial", "--quiet"]) == 0

    uri = f"s3://{BUCKET}/sweeps/tiny?endpoint_override={s3_endpoint}&scheme=http"
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    capsys.readouterr()
    assert main(["run", str(spec), "--out", uri, "--backend", "serial", "--quiet"]) == 0
    assert "near Tc" in capsys.readouterr().out  # the closing summary read the ising table from S3
    assert list(workdir.iterdir()) == []  # the URI was not taken for a local path

    listed = aws_env.get_file_info(pafs.FileSelector(f"{BUCKET}/sweeps/tiny", recursive=True))
    names = {info.path.removeprefix(f"{BUCKET}/sweeps/tiny/") for info in listed}
    assert "sweep.json" in names and any(n.startswith("ising/L8/part-") for n in names)

    a, b = tables_of(local), tables_of(uri)
    assert a.keys() == b.keys() and "ising" in a and "rbm" in a
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)

    assert main(["status", uri]) == 0
    capsys.readouterr()
    assert main(["run", str(spec), "--out", uri, "--backend", "serial", "--quiet"]) == 0
    assert "0 run" in capsys.readouterr().out  # resume works on S3: every task was skipped
