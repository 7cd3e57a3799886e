"""`ltp build --data`: from a CSV to a served pruned model, the weak-model exit, errors."""

import csv
import json
import random

import pytest
import yaml

from ltp.cli.parser import main
from ltp.eval.metrics import standard_error
from ltp.train.userbuild import auto_max_length


def build_json(capsys, *argv) -> tuple[int, dict, str]:
    code = main(["build", *argv, "--json"])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def test_csv_to_served_model(tmp_path, tiny_base, tiny_csv, capsys):
    models = tmp_path / "models"
    # the tiny random model need not beat TF-IDF here: --allow-weak
    code, report, _ = build_json(capsys, "--data", str(tiny_csv), "--name", "toy", "--base",
                                 str(tiny_base), "--models-dir", str(models), "--allow-weak",
                                 "--steps", "60")
    assert code == 0
    assert report["majority_accuracy"] == pytest.approx(0.5)
    for key in ("baseline_tfidf", "dense", "ltp"):
        assert {"accuracy", "macro_f1", "per_class"} <= report[key].keys()
    assert report["baseline_tfidf"]["accuracy"] > report["majority_accuracy"]
    assert 0 < report["ltp"]["relative_flops"] < 1
    assert report["target_flops"] in (0.35, 0.45, 0.55, 0.65, 0.75)
    assert "dev accuracy" in report["target_flops_reason"]
    assert report["estimated_seconds"] is not None and report["wall_seconds"] > 0

    dense_recipe = yaml.safe_load((models / "toy-dense.yaml").read_text())
    ltp_recipe = yaml.safe_load((models / "toy.yaml").read_text())
    assert dense_recipe["finetune"]["steps"] == 60 and dense_recipe["columns"]["text"] == "text"
    assert ltp_recipe["parent"] == "toy-dense" and ltp_recipe["prune"]["target_flops"] == "auto"

    meta = json.loads((models / "toy" / "ltp.json").read_text())
    assert {"majority", "tfidf"} <= meta["eval"]["baselines"].keys()
    assert meta["eval"]["ltp"]["test"]["per_class"].keys() == {"neg", "pos"}
    auto = meta["provenance"]["calibration"]["auto"]
    assert auto["chosen"] == report["target_flops"]
    # the tolerance is the dense dev figure's noise on this small dev split (or 1 point)
    dev_size = meta["provenance"]["split_sizes"]["dev"]
    assert auto["tolerance"] == pytest.approx(max(0.01, 1 / dev_size, standard_error(
        "accuracy", auto["dense_dev_score"], dev_size)))
    card = (models / "toy" / "card.md").read_text()
    for text in ("| majority class |", "| TF-IDF + logistic regression |", "| dense |", "| LTP |",
                 "Per class (precision / recall)", "chosen automatically"):
        assert text in card
    dense_card = (models / "toy-dense" / "card.md").read_text()
    assert "best dev checkpoint" in dense_card and "| TF-IDF + logistic regression |" in dense_card

    # the written recipe rebuilds nothing when the artifact exists, and reports the same figures
    code, again, _ = build_json(capsys, str(models / "toy.yaml"))
    assert code == 0 and again["ltp"]["accuracy"] == report["ltp"]["accuracy"]

    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    settings = Settings(models_dir=models, default_model="toy", device="cpu", max_wait_ms=1.0)
    with TestClient(create_app(settings)) as client:
        r = client.post("/classify", json={"inputs": ["a good film", "bad plot"], "details": True})
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "toy"
        assert {p["label"] for p in r.json()["results"]} <= {"neg", "pos"}


def test_random_labels_are_a_weak_model_and_exit_non_zero(tmp_path, tiny_base, capsys):
    rng = random.Random(1)
    path = tmp_path / "random.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["body", "tag"])
        for i in range(60):
            words = " ".join(rng.choice(["good", "bad", "film", "plot", "the", "fun"]) for _ in range(6))
            writer.writerow([f"{words} {i}", rng.choice(["a", "b"])])
    models = tmp_path / "models"
    code, report, err = build_json(capsys, "--data", str(path), "--name", "noise", "--base",
                              str(tiny_base), "--models-dir", str(models), "--text-column", "body",
                              "--label-column", "tag", "--target-flops", "0.6", "--steps", "40")
    assert code == 3
    assert "WEAK MODEL" in err and "--allow-weak" in err
    assert any("within 2 points" in r or "below the TF-IDF" in r for r in report["weak"])
    assert any("likely cause" in r for r in report["weak"])
    assert report["ltp"] is None and not (models / "noise").exists(), "no pruning of a weak model"
    card = (models / "noise-dense" / "card.md").read_text()
    assert "WARNING: the dense model is not clearly better" in card


@pytest.mark.parametrize("argv,message", [
    ([], "give a recipe"),
    (["--data", "x.csv"], "no such file|needs --name"),
    (["--data", "missing.csv", "--name", "m"], "no such file"),
    (["--data", "{csv}", "--name", "bad name"], "use letters"),
    (["--data", "{csv}", "--name", "m", "--label-column", "stars"], r"missing column\(s\) \['stars'\]"),
])
def test_build_data_errors_exit_2(tmp_path, tiny_csv, capsys, argv, message):
    import re

    argv = [a.replace("{csv}", str(tiny_csv)) for a in argv]
    assert main(["build", *argv, "--models-dir", str(tmp_path / "m")]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_changed_recipe_is_not_overwritten_without_force(tmp_path, tiny_csv, capsys):
    models = tmp_path / "models"
    models.mkdir()
    (models / "toy.yaml").write_text("name: toy\n")
    assert main(["build", "--data", str(tiny_csv), "--name", "toy", "--base", "minilm",
                 "--models-dir", str(models)]) == 2
    assert "exists with other settings" in capsys.readouterr().err


def test_auto_max_length():
    assert auto_max_length([10] * 95 + [500] * 5, 512) == 32
    assert auto_max_length(list(range(1, 101)), 512) == 96
    assert auto_max_length([400] * 10, 512) == 256
    assert auto_max_length([400] * 10, 128) == 128
