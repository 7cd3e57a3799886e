"""`make serve` says what it builds and for how long; `make serve-quick` serves a converted model.

make runs on a copy of the Makefile with a stand-in `ltp` that prints its arguments, so the
targets' order and output are real and nothing is trained; the arguments are then parsed by
the real command line.
"""

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def make(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shutil.copy(REPO / "Makefile", tmp_path)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "ltp").write_text('#!/bin/sh\necho "ltp $*"\n')
    (bin_dir / "ltp").chmod(0o755)
    stamp = tmp_path / "venv" / ".installed"  # set up already: newer than pyproject.toml
    stamp.touch()
    os.utime(tmp_path / "pyproject.toml", (0, 0))

    def run(target: str) -> list[str]:
        result = subprocess.run(["make", "--silent", target, "VENV=venv"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.splitlines()

    return run


def add_artifact(root: Path, name: str) -> None:
    (root / "models" / name).mkdir(parents=True)
    (root / "models" / name / "ltp.json").write_text("{}")


def ltp_args(lines: list[str], command: str) -> list[str]:
    return next(shlex.split(line)[1:] for line in lines if line.startswith(f"ltp {command}"))


def test_serve_says_what_it_builds_and_how_long_before_building(make):
    lines = make("serve")
    assert lines[-2:] == ["ltp build models/sentiment-minilm-ltp.yaml", "ltp serve"]
    assert len(lines) == 3, lines  # one line of warning, before the build
    assert lines[0].startswith("building models/sentiment-minilm-ltp and its dense parent")
    assert "about 12 minutes" in lines[0] and "`make serve-quick`" in lines[0]


def test_serve_with_the_dense_parent_built_says_the_shorter_time(make, tmp_path):
    add_artifact(tmp_path, "sentiment-minilm")
    lines = make("serve")
    assert lines[0].startswith("building models/sentiment-minilm-ltp from its recipe")
    assert "about 6 minutes" in lines[0]


def test_serve_with_the_model_built_only_serves(make, tmp_path):
    add_artifact(tmp_path, "sentiment-minilm-ltp")
    assert make("serve") == ["ltp serve"]


def test_serve_quick_converts_minilm_and_serves_only_it(make):
    from app.cli import build_parser as service_parser
    from ltp.cli.parser import build_parser

    lines = make("serve-quick")
    assert [line.split()[:2] for line in lines if line.startswith("ltp ")] == [
        ["ltp", "convert"], ["ltp", "serve"]]
    assert any("meaningless" in line for line in lines)
    convert = build_parser().parse_args(ltp_args(lines, "convert"))
    assert convert.source == "minilm" and convert.dataset and 0 < convert.target_keep < 1
    serve = service_parser().parse_args(ltp_args(lines, "serve"))
    name = Path(convert.out).name
    assert Path(convert.out).parent == Path("models")
    assert serve.models == [name] and serve.default_model == name


def test_serve_quick_reuses_the_converted_model(make, tmp_path):
    add_artifact(tmp_path, "quick-minilm")
    lines = make("serve-quick")
    assert not any(line.startswith("ltp convert") for line in lines)
    assert lines[-1].startswith("ltp serve ")


def test_perf_runs_commands_that_exist_with_arguments_they_accept(tmp_path):
    """Every command of `make perf` (printed, not run): `ltp` subcommands, modules run with
    `python -m` and scripts, each with arguments its parser takes."""
    from app.cli import build_parser as ltp_parser
    from loadtest.__main__ import build_parser as loadtest_parser
    from ltp.bench.matrix import build_parser as matrix_parser

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    printed = subprocess.run(["make", "-n", "perf", "VENV=venv"], cwd=REPO, capture_output=True,
                             text=True, timeout=60, check=True).stdout.replace("\\\n", " ")
    modules = {"loadtest": loadtest_parser(), "ltp.bench.matrix": matrix_parser()}
    seen = set()
    for line in printed.splitlines():
        command = line.strip().removeprefix("for dtype in fp32 int8; do").split(">")[0]
        words = shlex.split(command)
        if words[:3] == ["venv/bin/python", "-m", "pip"]:  # the set-up step
            continue
        if words[:1] == ["venv/bin/ltp"]:
            ltp_parser().parse_args([w.replace("$dtype", "fp32") for w in words[1:]])
            seen.add(f"ltp {words[1]}")
        elif words[:2] == ["venv/bin/python", "-m"]:
            modules[words[2]].parse_args(words[3:])
            seen.add(f"-m {words[2]} {words[3] if words[2] == 'loadtest' else ''}".strip())
        elif words[:1] == ["venv/bin/python"]:
            assert (REPO / words[1]).is_file(), words[1]
            seen.add(words[1])
    assert {"ltp bench", "ltp bench-runtimes", "-m loadtest served", "-m loadtest overhead",
            "-m loadtest compare", "-m ltp.bench.matrix", "scripts/tokenize_cost.py"} <= seen
