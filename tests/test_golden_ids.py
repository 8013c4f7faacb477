"""Golden task ids: every task of every shipped spec keeps its id (and so its seed and its results).

A refactoring that changes a config's canonical JSON, the schema version or a code version
changes ids, and a resumed sweep would then recompute everything; this test makes that a
decision rather than an accident.  Regenerate the golden file only when results are meant to
change: ``python tests/test_golden_ids.py --write``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden_ids.json"
SPECS = sorted((ROOT / "sweeps").glob("*.toml"))


def _ids(spec_path: Path) -> list[list]:
    from orchestrator.plan import make_plan
    from orchestrator.spec import load_spec

    return [[t.kind, t.id, t.L, None if t.T != t.T else t.T, list(t.deps)]  # NaN: the pooled flow
            for t in make_plan(load_spec(spec_path))]


def test_the_golden_file_covers_every_shipped_spec():
    assert sorted(json.loads(GOLDEN.read_text())) == [p.name for p in SPECS]


@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
def test_task_ids_of_shipped_specs_are_unchanged(spec_path):
    golden = json.loads(GOLDEN.read_text())[spec_path.name]
    now = _ids(spec_path)
    assert len(now) == len(golden) > 0
    changed = [(g[0], g[2], g[3], g[1], n[1]) for g, n in zip(golden, now) if g != n]
    assert not changed, f"{len(changed)} task ids changed, e.g. {changed[:3]}"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    sys.path.insert(0, str(ROOT))
    GOLDEN.write_text(json.dumps({p.name: _ids(p) for p in SPECS}, separators=(",", ":")) + "\n")
    print(f"wrote {GOLDEN}")
