"""``--help`` of rgsweep and of every subcommand has a description for a user and examples that
the parser accepts as written."""

from __future__ import annotations

import re

import pytest

from orchestrator.cli import build_parser
from orchestrator.help_text import EXAMPLES


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")  # argparse keeps them there
    return parser, action.choices


@pytest.mark.parametrize("name", ["top", "run", "validate", "report", "bench", "status"])
def test_every_help_has_a_description_and_runnable_examples(name):
    parser, subs = _subparsers()
    target = parser if name == "top" else subs[name]
    text = target.format_help()
    assert target.description and len(target.description) > 60, name
    assert "example" in text and "DESIGN" not in text
    commands = re.findall(r"^  (rgsweep [^#\n&]*)", EXAMPLES[name], re.M)
    assert commands, name
    for command in commands:
        args = build_parser().parse_args(command.split()[1:])  # SystemExit if the parser refuses
        assert args.command == command.split()[1], command
    for action in target._actions:  # every argument says what it is
        assert action.help, (name, action.dest)
