"""``python -m loadtest``: one table from scenario names to their parsers and entry points,
and ``python -m loadtest.run``, the name older reports give, the same command."""

import subprocess
import sys

import pytest

from loadtest.__main__ import SCENARIOS, build_parser


def test_every_scenario_parses_its_options_and_has_an_entry_point():
    parser = build_parser()
    required = {"single": ["--url", "http://127.0.0.1:1"]}
    for name, scenario in SCENARIOS.items():
        args = parser.parse_args([name, "--out", "x", *required.get(name, [])])
        assert args.command == name and args.out == "x" and callable(scenario.main)
    with pytest.raises(SystemExit):
        parser.parse_args(["no-such-scenario", "--out", "x"])


def test_the_old_module_name_runs_the_same_command():
    helps = [subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                            text=True, check=True).stdout for module in ("loadtest", "loadtest.run")]
    assert helps[0] == helps[1]
    assert all(name in helps[0] for name in SCENARIOS)
