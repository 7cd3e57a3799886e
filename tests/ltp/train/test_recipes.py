"""Recipes, end-to-end builds with model cards, and the sweep, on tiny models."""

import csv
import json

import pytest

from ltp.bench.sweep_table import plot
from ltp.cli.parser import main
from ltp.train.recipes import RecipeError, load_recipe


def write_recipes(folder, base, data):
    (folder / "toy.yaml").write_text(
        f"name: toy\ndataset: {data}\nbase: {base}\n"
        "finetune: {epochs: 8, lr: 1.0e-3, batch_size: 8, max_length: 32}\n")
    (folder / "toy-ltp.yaml").write_text(
        f"name: toy-ltp\ndataset: {data}\nparent: toy\n"
        "prune: {lam: 0.5, soft_epochs: 2, hard_epochs: 1, soft_lr: 1.0e-3, hard_lr: 1.0e-3,"
        " threshold_lr: 5.0e-3, temperature: 0.01, batch_size: 8}\n")


def test_build_runs_parent_then_ltp_and_writes_cards(tmp_path, tiny_base, tiny_csv, capsys):
    models = tmp_path / "models"
    models.mkdir()
    write_recipes(models, tiny_base, tiny_csv)
    # a tiny random model does not beat TF-IDF on this data: allowed here, flagged in the card
    assert main(["build", str(models / "toy-ltp.yaml"), "--json", "--allow-weak"]) == 0
    for name in ("toy", "toy-ltp"):
        assert (models / name / "ltp.json").is_file()
        assert (models / name / "card.md").is_file()
    meta = json.loads((models / "toy-ltp" / "ltp.json").read_text())
    assert {"dev", "test"} <= meta["eval"]["ltp"].keys()
    assert meta["eval"]["dense_parent"]["test"]["accuracy"] > 0
    assert meta["provenance"]["recipe"] == "toy-ltp"
    assert meta["provenance"]["split_sizes"] == {"train": 64, "dev": 8, "test": 8}
    card = (models / "toy-ltp" / "card.md").read_text()
    assert "LTP accuracy" in card and "relative FLOPs" in card and "wall time" in card
    assert "| majority class |" in card and "| TF-IDF + logistic regression |" in card
    assert {"majority", "tfidf"} <= meta["eval"]["baselines"].keys()
    assert "estimate" in meta["provenance"]
    out = json.loads(capsys.readouterr().out)
    assert {"majority_accuracy", "baseline_tfidf", "dense", "ltp"} <= out.keys()
    # the accuracy per precision that `ltp serve --dtype auto` chooses from: fp32 is the
    # same forward on the same split as the recorded LTP dev figure
    precision = meta["eval"]["precision"]
    assert precision["fp32"]["accuracy"] == pytest.approx(meta["eval"]["ltp"]["dev"]["accuracy"])
    assert all(0 <= row["accuracy"] <= 1 and row["native"] for row in precision.values())
    # each is a count of right answers over the dev split (8 inputs)
    assert all(row["examples"] == 8 and row["accuracy"] * 8 == pytest.approx(round(row["accuracy"] * 8))
               for row in precision.values())
    assert "| fp32 |" in card and "--dtype auto" in card
    # the dense parent is served too: its precisions are recorded by its own build
    parent = json.loads((models / "toy" / "ltp.json").read_text())["eval"]
    assert parent["precision"].keys() == precision.keys()
    assert parent["precision"]["fp32"]["accuracy"] == pytest.approx(parent["dense"]["dev"]["accuracy"])
    assert "--dtype auto" in (models / "toy" / "card.md").read_text()


def test_a_build_over_seeds_keeps_the_median_run_and_cards_them_all(tmp_path, tiny_base, tiny_csv):
    models = tmp_path / "models"
    models.mkdir()
    write_recipes(models, tiny_base, tiny_csv)
    recipe = (models / "toy-ltp.yaml").read_text().replace("batch_size: 8}", "batch_size: 8,"
                                                           " target_flops: 0.6, seeds: [0, 1, 2]}")
    (models / "toy-ltp.yaml").write_text(recipe)
    assert main(["build", str(models / "toy-ltp.yaml"), "--allow-weak"]) == 0
    meta = json.loads((models / "toy-ltp" / "ltp.json").read_text())
    seeds = meta["eval"]["seeds"]
    runs = seeds["runs"]
    assert [r["seed"] for r in runs] == [0, 1, 2]
    dev = sorted(r["dev"] for r in runs)
    chosen = next(r for r in runs if r["seed"] == seeds["chosen"])
    assert chosen["dev"] == dev[1], "the median dev run is the artifact"
    assert meta["eval"]["ltp"]["dev"]["score"] == pytest.approx(chosen["dev"])
    assert meta["eval"]["ltp"]["test"]["score"] == pytest.approx(chosen["test"])
    assert seeds["spread"]["test"] == pytest.approx(max(r["test"] for r in runs)
                                                    - min(r["test"] for r in runs))
    assert len({round(r["relative_flops"], 6) for r in runs}) > 1, "each seed is its own run"
    assert meta["provenance"]["prune"]["seeds"] == [0, 1, 2]
    card = (models / "toy-ltp" / "card.md").read_text()
    assert f"| {seeds['chosen']} (kept) |" in card and "Spread (max - min)" in card


@pytest.mark.parametrize("text,message", [
    ("name: x\n", "missing key 'dataset'"),
    ("name: x\ndataset: y\n", "exactly one of"),
    ("name: x\ndataset: y\nprune: {}\n", "needs a 'parent'"),
    ("name: x\ndataset: y\nfinetune: {epochz: 1}\n", "unknown setting"),
    ("name: x\ndataset: y\nfinetune: {}\ncolour: red\n", "unknown key"),
    ("name: x\ndataset: y\nfinetune: {}\ncolumns: {txt: a}\n", "unknown column key"),
    ("name: x\ndataset: y\nfinetune: {class_weight: heavy}\n", "class_weight must be"),
    ("name: x\ndataset: y\nparent: p\nprune: {target_flops: 1.5}\n", "'auto'"),
    ("name: x\ndataset: y\nparent: p\nprune: {seeds: [1, 1]}\n", "seeds must be distinct"),
    ("name: x\ndataset: y\nparent: p\nprune: {distill_hidden: -1}\n", "distill_hidden is a loss weight"),
])
def test_bad_recipes_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=message):
        load_recipe(path)


def test_sweep_writes_csv_plot_and_table(tmp_path, tiny_base, tiny_csv, capsys):
    models = tmp_path / "models"
    models.mkdir()
    write_recipes(models, tiny_base, tiny_csv)
    assert main(["build", str(models / "toy.yaml"), "--allow-weak"]) == 0
    capsys.readouterr()
    out = tmp_path / "sweep"
    assert main(["sweep", "--model", str(models / "toy"), "--dataset", str(tiny_csv),
                 "--out", str(out), "--lambdas", "0.5", "--topk", "0.5", "--truncate", "8",
                 "--targets", "0.6", "--soft-epochs", "1", "--hard-epochs", "1",
                 "--distill", "0.5", "--json"]) == 0
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    methods = [r["method"] for r in rows]
    assert methods == ["dense", "dense", "truncation", "top-k", "top-k + fine-tune", "LTP",
                       "LTP", "top-k", "top-k + fine-tune"]
    assert rows[6]["setting"] == "FLOPs target 0.6, soft stage, distill 0.5"
    assert rows[7]["setting"] == rows[8]["setting"] == "LTP's schedule for FLOPs 0.6"
    assert float(rows[0]["relative_flops"]) == pytest.approx(1.0)
    assert all(float(r["relative_flops"]) < 1.0 for r in rows[1:])
    assert (out / "sweep.png").stat().st_size > 1000
    assert "| LTP |" in (out / "sweep.md").read_text()
    # the plot draws each method's rows, and the table has every row of the CSV
    written = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["method"], r["setting"]) for r in written] == [(r["method"], r["setting"]) for r in rows]
    figure = plot(written, tmp_path / "again.png", "sweep")
    drawn = {line.get_label(): [tuple(p) for p in line.get_xydata()] for line in figure.axes[0].lines}
    assert drawn == {method: sorted((float(r["relative_flops"]), 100 * float(r["accuracy"]))
                                    for r in rows if r["method"] == method)
                     for method in set(methods)}
    table = [line for line in (out / "sweep.md").read_text().splitlines()[2:] if line]
    assert [cells.split(" | ")[:2] for cells in (line.strip("| ") for line in table)] == [
        [r["method"], r["setting"]] for r in rows]
    assert [float(line.split(" | ")[2]) for line in table] == [
        pytest.approx(100 * float(r["accuracy"]), abs=0.05) for r in rows]
