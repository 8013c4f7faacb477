"""The sweep spec: TOML in, a frozen, validated :class:`SweepSpec` out.

A config is data: every section is a frozen dataclass that validates itself on construction
(:mod:`.sections`), every error names the key, the value and the rule in one line (:mod:`.readers`),
unknown keys are rejected with the closest valid key suggested, and every broken rule of a spec
is reported at once (:mod:`.sweep`). The spec is parsed as TOML (``tomllib``), never evaluated.
"""

from contract.constants import TC

from .readers import SpecError, resolve_init, resolve_learning_rate, resolve_units
from .sections import AnalysisSpec, RBMSpec, RefineSpec, RGFlowSpec, SamplingSpec
from .sweep import SweepSpec, load_spec, parse_spec

__all__ = ["TC", "SpecError", "SamplingSpec", "RBMSpec", "AnalysisSpec", "RGFlowSpec", "RefineSpec", "SweepSpec",
           "load_spec", "parse_spec", "resolve_units", "resolve_learning_rate", "resolve_init"]
