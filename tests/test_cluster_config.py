"""Behavioural: ``cluster.yaml`` is a Ray autoscaler config that Ray itself accepts, offline.

Checked against the JSON schema shipped in the installed ray package and with the autoscaler's
own preparation (``prepare_config``: defaults merged, setup commands merged, node-type limits
filled) and validation (``validate_config``), as ``ray up`` does before it calls the cloud.
The commented local-provider variant is checked the same way.  No cloud calls.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")
yaml = pytest.importorskip("yaml")
ray = pytest.importorskip("ray")

from ray.autoscaler._private.util import prepare_config, validate_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "cluster.yaml"
SCHEMA = Path(ray.autoscaler.__file__).parent / "ray-schema.json"


def _load() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


def _local_variant() -> dict:
    """The commented block between BEGIN/END LOCAL VARIANT, uncommented, applied to the config."""
    text = CLUSTER.read_text()
    block = re.search(r"^# BEGIN LOCAL VARIANT\n(.*?)^# END LOCAL VARIANT", text, re.S | re.M)
    assert block, "cluster.yaml lost its local-provider variant"
    overrides = yaml.safe_load("\n".join(line[2:] for line in block.group(1).splitlines()))
    config = _load()
    config.pop("available_node_types")
    config.pop("head_node_type")
    config.update(overrides)
    return config


def _commands(config: dict, key: str) -> str:
    return "\n".join(config.get(key, []))


def test_cluster_yaml_matches_rays_schema():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(_load(), schema)


def test_ray_prepares_and_validates_the_aws_config():
    prepared = prepare_config(copy.deepcopy(_load()))
    validate_config(prepared)
    assert prepared["provider"]["type"] == "aws"
    types = prepared["available_node_types"]
    assert set(types) == {"rgsweep.head", "rgsweep.worker"}
    assert prepared["head_node_type"] == "rgsweep.head"
    assert types["rgsweep.head"]["resources"] == {"CPU": 0}  # the driver's node runs no tasks
    assert types["rgsweep.worker"]["max_workers"] <= prepared["max_workers"]
    # prepare_config merged the common setup into both node kinds
    for key in ("head_setup_commands", "worker_setup_commands"):
        assert 'pip install "ray[default]==' in _commands(prepared, key)
    assert "boto3" in _commands(prepared, "head_setup_commands")


def test_ray_prepares_and_validates_the_local_provider_variant():
    variant = _local_variant()
    jsonschema.validate(variant, json.loads(SCHEMA.read_text()))
    prepared = prepare_config(variant)
    validate_config(prepared)
    assert prepared["provider"]["type"] == "local"
    (node_type,) = prepared["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == len(variant["provider"]["worker_ips"])


def test_a_broken_config_is_rejected_by_the_same_checks():
    """The checks above can fail: a typo'd key and a head type that does not exist."""
    broken = _load()
    broken["idle_timeout_minute"] = 5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads(SCHEMA.read_text()))
    broken = prepare_config(_load())
    broken["head_node_type"] = "nope"
    with pytest.raises(ValueError, match="head_node_type"):
        validate_config(broken)


def test_token_auth_reaches_every_node_and_every_ray_process():
    config = _load()
    mounts = config["file_mounts"]
    assert mounts.get("~/.ray/auth_token") == "~/.ray/auth_token"  # the token file goes to every node
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [c for c in config[key] if "ray start" in c]
        assert start and all("RAY_AUTH_MODE=token" in c for c in start), key
    head = _commands(config, "head_start_ray_commands")
    assert "--dashboard-host=127.0.0.1" in head  # Jobs API only through `ray dashboard` (SSH)
    assert "0.0.0.0" not in CLUSTER.read_text()


def test_setup_installs_this_project_and_the_same_ray_without_naming_a_registry():
    config = _load()
    assert config["file_mounts"].get("~/rgsweep") == "."
    setup = _commands(config, "setup_commands")
    assert re.search(r"pip install .*~/rgsweep", setup)
    pinned = re.search(r'ray\[default\]==([0-9.]+)', setup)
    assert pinned and pinned.group(1) == ray.__version__, "cluster.yaml pins a different Ray"
    text = CLUSTER.read_text()
    for host in ("pypi.org", "pythonhosted", "github.com", "s3-us-west-2.amazonaws.com", "index-url"):
        assert host not in text, host
    assert 1 <= config["idle_timeout_minutes"] <= 60
    start = _commands(config, "head_start_ray_commands") + _commands(config, "worker_start_ray_commands")
    assert "rgsweep-venv/bin" in start  # jobs find `rgsweep` on PATH
