"""The bench matrix: a row per (device, precision, batch size), each from its own `ltp bench`."""

import json

from ltp.bench.matrix import HEADER, cells, main
from ltp.cli.parser import main as ltp_main


def test_int8_runs_only_on_the_cpu():
    assert cells(["cpu", "cuda"], ["fp32", "int8"], [1, 8]) == [
        ("cpu", "fp32", 1), ("cpu", "fp32", 8), ("cpu", "int8", 1), ("cpu", "int8", 8),
        ("cuda", "fp32", 1), ("cuda", "fp32", 8)]


def test_a_row_has_the_figures_of_its_bench(capsys, tiny_artifact_dir, tiny_csv):
    bench = ["--dataset", str(tiny_csv), "--split", "train", "--max-examples", "16",
             "--max-length", "32", "--rounds", "1"]
    assert main([str(tiny_artifact_dir), *bench, "--batch-sizes", "4", "--dtypes", "fp32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == HEADER and len(lines) == 3
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert rows[0][1:3] == ["fp32", "4"] and len(rows[0]) == HEADER[0].count("|") - 1
    # the figures that do not depend on timing are those of `ltp bench` itself
    assert ltp_main([*("bench", str(tiny_artifact_dir)), *bench, "--batch-size", "4", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert rows[0][0] == figures["device_name"] and rows[0][6] == f"{figures['relative_flops']:.3f}"
    assert rows[0][11:] == ["100.0% / 100.0%", "0.000"]  # fp32 is its own reference
