"""Multi-label and regression models served: the shape of every route's answer, raw scores,
label thresholds; TEI's other routes for a classifier; a real TEI client library
(huggingface_hub's InferenceClient) against a real uvicorn, given only the base URL."""

import math

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from ltp.core.heads import MULTI_LABEL, REGRESSION, Head
from tests.app.conftest import RunningServer, settings_for
from tests.conftest import make_artifact

TOPICS = ["film", "food", "tech"]
THRESHOLDS = [0.3, 0.5, 0.7]


@pytest.fixture(scope="module")
def heads_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("heads")
    make_artifact(folder / "tiny-multi", TOPICS, seed=1, head=Head(MULTI_LABEL, THRESHOLDS))
    make_artifact(folder / "tiny-score", ["rating"], seed=2, head=Head(REGRESSION))
    make_artifact(folder / "tiny-ltp", ["neg", "pos"])
    return folder


@pytest.fixture(scope="module")
def multi(heads_dir):
    with TestClient(create_app(settings_for(heads_dir, default_model="tiny-multi"))) as c:
        yield c


@pytest.fixture(scope="module")
def score(heads_dir):
    with TestClient(create_app(settings_for(heads_dir, default_model="tiny-score"))) as c:
        yield c


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def by_label(answer: list[dict]) -> dict[str, float]:
    return {s["label"]: s["score"] for s in answer}


TEXTS = ["good film", "the plot was dull and the movie was not fun", "great"]


def test_classify_multi_label_scores_each_label_and_gives_those_over_threshold(multi):
    r = multi.post("/classify", json={"inputs": TEXTS})
    assert r.status_code == 200, r.text
    raw = multi.post("/classify", json={"inputs": TEXTS, "raw_scores": True}).json()["results"]
    for pred, logits in zip(r.json()["results"], raw, strict=True):
        scores, logit = by_label(pred["scores"]), by_label(logits["scores"])
        assert scores == pytest.approx({k: sigmoid(v) for k, v in logit.items()}, abs=1e-5)
        expected = [lab for lab, t in zip(TOPICS, THRESHOLDS, strict=True) if scores[lab] >= t]
        assert sorted(pred["labels"]) == sorted(expected)
        assert pred["labels"] == logits["labels"]  # the decision does not change with raw scores
        assert pred["label"] == max(scores, key=scores.get) and "value" not in pred
    given = {lab for p in r.json()["results"] for lab in p["labels"]}
    assert given, "thresholds this low give some label to some text"
    models = {m["name"]: m for m in multi.get("/models").json()["models"]}
    assert models["tiny-multi"]["problem_type"] == MULTI_LABEL
    assert models["tiny-multi"]["label_thresholds"] == THRESHOLDS
    assert models["tiny-ltp"]["problem_type"] == "single_label_classification"
    assert models["tiny-ltp"]["label_thresholds"] is None


def test_classify_regression_answers_the_value(score):
    r = score.post("/classify", json={"inputs": TEXTS, "top_k": 1})
    raw = score.post("/classify", json={"inputs": TEXTS, "raw_scores": True}).json()["results"]
    for pred, logits in zip(r.json()["results"], raw, strict=True):
        assert pred["label"] == "rating" and "labels" not in pred
        # no softmax, no sigmoid; the two requests' texts may share their batches otherwise
        # (batches form by the lengths the queue expects): equal up to float rounding
        assert pred["value"] == pred["score"] == pytest.approx(logits["score"], abs=1e-6)
        assert pred["scores"] == [{"label": "rating", "score": pred["value"]}]


def test_tei_and_infinity_routes_follow_the_head(multi, score):
    raw = by_label(multi.post("/predict", json={"inputs": "good film", "raw_scores": True}).json())
    tei = multi.post("/predict", json={"inputs": "good film"}).json()
    assert by_label(tei) == pytest.approx({k: sigmoid(v) for k, v in raw.items()}, abs=1e-5)
    assert [s["score"] for s in tei] == sorted((s["score"] for s in tei), reverse=True)
    batch = multi.post("/predict", json={"inputs": [["good film"], ["great"]]}).json()
    assert len(batch) == 2 and by_label(batch[0]) == pytest.approx(by_label(tei))
    inf = multi.post("/classify", json={"input": ["good film"], "model": "tiny-multi"}).json()
    assert by_label(inf["data"][0]) == pytest.approx(by_label(tei))
    inf_raw = multi.post("/classify", json={"input": ["good film"], "model": "tiny-multi",
                                            "raw_scores": True}).json()
    assert by_label(inf_raw["data"][0]) == pytest.approx(raw)
    value = score.post("/classify", json={"inputs": "good film"}).json()["results"][0]["value"]
    assert score.post("/predict", json={"inputs": "good film"}).json() == [
        {"score": pytest.approx(value), "label": "rating"}]


def test_base_url_invocations_vertex_and_rerank(multi, score):
    body = {"inputs": "good film"}
    expected = multi.post("/predict", json=body).json()
    for path in ("/", "/invocations"):
        r = multi.post(path, json=body)
        assert r.status_code == 200 and r.json() == expected, path
        assert r.headers["x-compute-tokens"].isdigit()
    vertex = multi.post("/vertex", json={"instances": [body, {"inputs": [["a"], ["b"]]}]})
    assert vertex.status_code == 200
    assert vertex.json()["predictions"][0] == expected and len(vertex.json()["predictions"][1]) == 2
    rerank = {"query": "good film", "texts": ["great", "dull plot", "fun"], "return_text": True}
    refused = multi.post("/rerank", json=rerank)
    assert refused.status_code == 424 and refused.json()["error_type"] == "model_type"
    ranks = score.post("/rerank", json=rerank)
    assert ranks.status_code == 200
    assert sorted(r["index"] for r in ranks.json()) == [0, 1, 2]
    assert [r["score"] for r in ranks.json()] == sorted((r["score"] for r in ranks.json()), reverse=True)
    assert {r["text"] for r in ranks.json()} == set(rerank["texts"])
    assert score.post("/", json=rerank).json() == ranks.json()  # TEI's / reranks a reranker
    pair = score.post("/predict", json={"inputs": ["good film", "fun"]}).json()[0]["score"]
    assert next(r["score"] for r in ranks.json() if r["index"] == 2) == pytest.approx(pair)
    assert score.post("/rerank", json={"query": "q", "texts": []}).status_code == 422


def test_info_decode_and_health(multi, score):
    assert set(multi.get("/info").json()["model_type"]) == {"classifier"}
    assert score.get("/info").json()["model_type"] == {
        "reranker": {"id2label": {"0": "rating"}, "label2id": {"rating": 0}}}
    tokens = multi.post("/tokenize", json={"inputs": "good film"}).json()[0]
    ids = [t["id"] for t in tokens]
    assert multi.post("/decode", json={"ids": ids}).json() == ["good film"]
    both = multi.post("/decode", json={"ids": [ids, ids[1:2]], "skip_special_tokens": False})
    assert both.json() == ["[CLS] good film [SEP]", "good"]
    bad = multi.post("/decode", json={"ids": [10**6]})
    assert bad.status_code == 422 and "vocabulary" in bad.json()["error"]
    for path in ("/health", "/", "/ping"):
        r = multi.get(path)
        assert r.status_code == 200 and r.content == b"", path


def test_hugging_face_api_parameters(multi):
    body = {"inputs": "good film", "parameters": {}}
    answer = multi.post("/", json=body).json()
    assert len(answer) == 1 and len(answer[0]) == 3  # one list per input, as that API answers
    assert answer[0] == multi.post("/predict", json={"inputs": "good film"}).json()
    top = multi.post("/", json={"inputs": "good film", "parameters": {"top_k": 2}}).json()
    assert top == [answer[0][:2]]
    soft = multi.post("/", json={"inputs": "good film",
                                 "parameters": {"function_to_apply": "softmax"}}).json()
    assert sum(s["score"] for s in soft[0]) == pytest.approx(1)
    bad = multi.post("/", json={"inputs": "x", "parameters": {"function_to_apply": "tanh"}})
    assert bad.status_code == 422


@pytest.mark.parametrize("default,labels", [("tiny-multi", TOPICS), ("tiny-ltp", ["neg", "pos"])])
def test_huggingface_hub_client_with_only_the_base_url(heads_dir, monkeypatch, default, labels):
    """The InferenceClient as its docs say to use a TEI endpoint: the base URL (it posts to
    `/`), or the predict route's URL as the model."""
    import huggingface_hub.constants
    from huggingface_hub import InferenceClient

    # the project's code sets HF_HUB_OFFLINE for model loading; a user's client has not
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with RunningServer(settings_for(heads_dir, default_model=default)) as server:
        client = InferenceClient(base_url=server.url)
        out = client.text_classification("good film")
        assert [type(o).__name__ for o in out] == ["TextClassificationOutputElement"] * len(labels)
        assert sorted(o.label for o in out) == sorted(labels)
        assert [o.score for o in out] == sorted((o.score for o in out), reverse=True)
        assert len(client.text_classification("good film", top_k=1)) == 1
        routed = InferenceClient().text_classification("good film", model=f"{server.url}/predict")
        assert [(o.label, o.score) for o in routed] == [(o.label, o.score) for o in out]
        if default == "tiny-ltp":  # a softmax model's probabilities sum to 1
            assert sum(o.score for o in out) == pytest.approx(1, abs=1e-5)
