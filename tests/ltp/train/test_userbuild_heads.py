"""`ltp build --data` for multi-label and regression files: recipes, training with BCE / MSE
in both LTP stages and distillation, tuned label thresholds, cards, and the served model."""

import json
import random

import pytest
import torch
import yaml
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from ltp.cli.parser import main
from ltp.core.heads import MULTI_LABEL, REGRESSION
from ltp.train.losses import distillation_loss

CUES = {"pos": ["good", "great", "fun"], "neg": ["bad", "awful", "dull"], "plot": ["plot"]}
FILLER = ["film", "movie", "the", "a", "is", "was", "and", "it", "of", "to"]


def tagged_csv(path, n: int = 90):
    """Texts in the tiny vocabulary; each tag shows as one of its words in the text."""
    rng = random.Random(0)
    lines = ["text,tags"]
    for i in range(n):
        tags = [t for t, on in (("pos", i % 2), ("neg", i % 3 == 0), ("plot", i % 4 == 1)) if on]
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 12))]
        words += [rng.choice(CUES[t]) for t in tags]
        rng.shuffle(words)
        lines.append(f"{' '.join(words)},{';'.join(tags)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_build(capsys, *argv) -> tuple[int, dict]:
    code = main(["build", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_multi_label_csv_to_served_pruned_model(tmp_path, tiny_base, capsys):
    data, models = tagged_csv(tmp_path / "tags.csv"), tmp_path / "models"
    code, report = run_build(capsys, "--data", str(data), "--name", "tags", "--base", str(tiny_base),
                             "--models-dir", str(models), "--label-column", "tags",
                             "--label-delimiter", ";", "--steps", "40", "--target-flops", "0.6",
                             "--allow-weak")
    assert code == 0
    assert report["problem_type"] == MULTI_LABEL and report["labels"] == ["neg", "plot", "pos"]
    for key in ("baseline_tfidf", "dense", "ltp"):
        assert {"micro_f1", "macro_f1", "per_label", "score"} <= report[key].keys(), key
    assert report["baseline_tfidf"]["micro_f1"] > report["baseline_majority"]["micro_f1"]
    assert 0 < report["ltp"]["relative_flops"] < 1
    recipe = yaml.safe_load((models / "tags-dense.yaml").read_text())
    assert recipe["columns"] == {"text": "text", "label": "tags", "delimiter": ";"}
    meta = json.loads((models / "tags" / "ltp.json").read_text())
    assert meta["head"]["problem_type"] == MULTI_LABEL and len(meta["head"]["thresholds"]) == 3
    assert meta["provenance"]["label_thresholds"]["split"] == "dev"
    assert meta["eval"]["precision"]["fp32"]["metric"] == "micro_f1"
    card = (models / "tags" / "card.md").read_text()
    for text in ("dense micro-F1", "LTP micro-F1", "| most frequent label |",
                 "| TF-IDF + one-vs-rest logistic regression |", "Per label (F1)", "label thresholds"):
        assert text in card, text

    settings = Settings(models_dir=models, default_model="tags", device="cpu", max_wait_ms=1.0)
    with TestClient(create_app(settings)) as client:
        r = client.post("/classify", json={"inputs": ["a good film", "bad plot"]})
        assert r.status_code == 200, r.text
        for pred in r.json()["results"]:
            assert set(pred["labels"]) <= {"neg", "plot", "pos"}
            assert len(pred["scores"]) == 3


def test_regression_csv_builds_with_numeric_labels(tmp_path, tiny_base, capsys):
    rng = random.Random(1)
    path = tmp_path / "stars.csv"
    rows = ["text,stars"]
    for _ in range(80):
        good = rng.randint(0, 4)
        words = [rng.choice(FILLER) for _ in range(5)] + ["great"] * good
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{good + 1}")
    path.write_text("\n".join(rows) + "\n")
    models = tmp_path / "models"
    code, report = run_build(capsys, "--data", str(path), "--name", "stars", "--base", str(tiny_base),
                             "--models-dir", str(models), "--label-column", "stars",
                             "--problem-type", "regression", "--steps", "40",
                             "--target-flops", "0.6", "--allow-weak")
    assert code == 0 and report["problem_type"] == REGRESSION and report["labels"] == ["stars"]
    for key in ("baseline_tfidf", "dense", "ltp"):
        assert {"spearman", "mae", "score"} <= report[key].keys(), key
    assert report["baseline_tfidf"]["spearman"] > 0.5  # the count of "great" is the label
    recipe = yaml.safe_load((models / "stars.yaml").read_text())
    assert recipe["problem_type"] == REGRESSION
    card = (models / "stars" / "card.md").read_text()
    assert "LTP Spearman" in card and "| TF-IDF + ridge regression |" in card


def test_distillation_per_head():
    s = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    assert distillation_loss(s, s, 2.0, MULTI_LABEL) < distillation_loss(s, -s, 2.0, MULTI_LABEL)
    assert distillation_loss(s[:, :1], s[:, :1], 2.0, REGRESSION) == 0
    assert distillation_loss(s[:, :1], s[:, :1] + 2, 2.0, REGRESSION, scale=2.0) == pytest.approx(1.0)
