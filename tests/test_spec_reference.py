"""The README's annotated spec is the reference of every key and its default: each section lists
exactly the keys the code accepts, each with the value the code uses when the key is absent."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from orchestrator.spec import AnalysisSpec, RBMSpec, RGFlowSpec, SamplingSpec
from orchestrator.spec.sweep import SWEEP_KEYS

README = Path(__file__).resolve().parent.parent / "README.md"
SECTIONS = {"sampling": SamplingSpec, "rbm": RBMSpec, "analysis": AnalysisSpec, "rg_flow": RGFlowSpec}


def _reference() -> dict:
    section = README.read_text().split("## The spec", 1)[1]
    return tomllib.loads(re.search(r"```toml\n(.*?)```", section, re.S).group(1))


def _default(field: dataclasses.Field):
    value = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    return list(value) if isinstance(value, tuple) else value


def test_the_sweep_section_shows_every_required_key():
    assert list(_reference()["sweep"]) == list(SWEEP_KEYS)


@pytest.mark.parametrize("name", list(SECTIONS))
def test_every_key_of_every_section_is_shown_with_the_default_the_code_uses(name):
    shown = _reference()[name]
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[name])}
    assert sorted(shown) == sorted(fields), f"[{name}] keys differ from the code's"
    for key, value in shown.items():
        assert value == _default(fields[key]), f"{name}.{key}: README {value!r}, code {_default(fields[key])!r}"
