"""TEI and Infinity clients work unchanged: their documented requests, our answers in their
shapes (text-embeddings-inference 1.9 router types, Infinity 0.0.77 ClassifyResult)."""

import pytest

TEI_PREDICT_EXAMPLES = [  # TEI README and quick tour, verbatim bodies
    {"inputs": "I like you."},
    {"inputs": [["I like you."], ["I hate pineapples"]]},
]


def assert_scored(answer, labels):
    assert [set(s) for s in answer] == [{"score", "label"}] * len(labels)
    assert sorted(s["label"] for s in answer) == sorted(labels)
    scores = [s["score"] for s in answer]
    assert scores == sorted(scores, reverse=True)


def test_tei_predict_doc_examples(client):
    single = client.post("/predict", json=TEI_PREDICT_EXAMPLES[0])
    assert single.status_code == 200
    assert_scored(single.json(), ["neg", "pos"])
    assert sum(s["score"] for s in single.json()) == pytest.approx(1, abs=1e-5)
    for header in ("x-compute-time", "x-total-time", "x-tokenization-time", "x-queue-time",
                   "x-inference-time", "x-compute-tokens", "x-compute-characters"):
        assert single.headers[header].isdigit(), header
    assert single.headers["x-compute-characters"] == str(len("I like you."))
    batch = client.post("/predict", json=TEI_PREDICT_EXAMPLES[1])
    assert batch.status_code == 200 and len(batch.json()) == 2
    for answer in batch.json():
        assert_scored(answer, ["neg", "pos"])
    assert batch.json()[0] == single.json()  # the same text scores the same in a batch


def test_tei_predict_shapes_pairs_raw_scores_and_truncation(client):
    pair = client.post("/predict", json={"inputs": ["good film", "bad plot"]})
    one = client.post("/predict", json={"inputs": ["good film"]})
    assert pair.status_code == one.status_code == 200
    assert isinstance(pair.json()[0], dict) and pair.json() != one.json()  # a pair, not a batch
    assert int(pair.headers["x-compute-tokens"]) == 7
    raw = client.post("/predict", json={"inputs": "good film", "raw_scores": True}).json()
    assert sum(s["score"] for s in raw) != pytest.approx(1)  # logits
    long = "good " * 10 + "awful " * 40
    right = client.post("/predict", json={"inputs": long, "truncation_direction": "Right"})
    left = client.post("/predict", json={"inputs": long, "truncation_direction": "left"})
    assert right.status_code == left.status_code == 200
    assert right.headers["x-compute-tokens"] == left.headers["x-compute-tokens"] == "32"
    assert right.json() != left.json()  # different halves of the text were kept
    too_long = client.post("/predict", json={"inputs": long, "truncate": False})
    assert too_long.status_code == 413 and too_long.json()["error_type"] == "payload_too_large"


@pytest.mark.parametrize("body", [
    {"inputs": []}, {"inputs": ["a", "b", "c"]}, {"inputs": ""}, {"inputs": [["a", "b", "c"]]},
    {"inputs": "x", "truncation_direction": "Up"}, {},
])
def test_tei_predict_bad_bodies_are_422_with_the_error_body(client, body):
    r = client.post("/predict", json=body)
    assert r.status_code == 422 and set(r.json()) == {"error", "error_type"}


def test_tei_info(client):
    info = client.get("/info").json()
    assert info["model_id"] == info["served_model_name"] == "tiny-ltp"
    assert info["model_type"] == {"classifier": {"id2label": {"0": "neg", "1": "pos"},
                                                 "label2id": {"neg": 0, "pos": 1}}}
    assert info["model_dtype"] == "float32" and info["max_input_length"] == 32
    assert info["max_client_batch_size"] == 64 and info["auto_truncate"] is True
    for key in ("model_sha", "max_concurrent_requests", "max_batch_tokens", "max_batch_requests",
                "tokenization_workers", "version", "sha", "docker_label"):
        assert key in info


def test_tei_tokenize_byte_offsets_and_special_tokens(client):
    r = client.post("/tokenize", json={"inputs": "é good film"})
    assert r.status_code == 200
    (tokens,) = r.json()  # always a list per input
    assert tokens[0] == {"id": 2, "text": "[CLS]", "special": True, "start": None, "stop": None}
    assert tokens[-1]["text"] == "[SEP]" and tokens[-1]["special"]
    good = next(t for t in tokens if t["text"] == "good")
    assert (good["start"], good["stop"]) == (3, 7)  # "é" is 2 bytes, then a space
    plain = client.post("/tokenize", json={"inputs": ["good", "bad film"],
                                           "add_special_tokens": False}).json()
    assert [[t["text"] for t in seq] for seq in plain] == [["good"], ["bad", "film"]]


INFINITY_EXAMPLE = {"model": "SamLowe/roberta-base-go_emotions",  # Infinity's docstring
                    "input": ["I am not having a great day."]}


def test_infinity_classify_body_on_our_route(client):
    r = client.post("/classify", json={"model": "tiny-topics", "input": ["good film", "bad"]})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"object", "data", "model", "usage", "id", "created"}
    assert body["object"] == "classify" and body["model"] == "tiny-topics"
    assert len(body["data"]) == 2
    for answer in body["data"]:
        assert_scored(answer, ["film", "food", "tech"])
        assert list(answer[0]) == ["score", "label"]
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] == 4 + 3
    assert isinstance(body["created"], int) and body["id"]
    raw = client.post("/classify", json={"input": ["good film"], "raw_scores": True}).json()
    assert sum(s["score"] for s in raw["data"][0]) != pytest.approx(1)


def test_infinity_doc_example_names_a_model_we_do_not_serve(client, models_dir):
    # with several models loaded an unknown name is an error, as in Infinity
    r = client.post("/classify", json=INFINITY_EXAMPLE)
    assert r.status_code == 404 and r.json()["error_type"] == "model_not_found"
    assert client.post("/classify", json={"input": []}).status_code == 422


def test_infinity_one_model_serves_any_name(models_dir):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.app.conftest import settings_for

    with TestClient(create_app(settings_for(models_dir, models=["tiny-ltp"]))) as c:
        r = c.post("/classify", json=INFINITY_EXAMPLE)
        assert r.status_code == 200 and r.json()["model"] == "tiny-ltp"
        assert len(r.json()["data"]) == 1


def test_openapi_documents_every_status_with_the_error_body(client):
    spec = client.get("/openapi.json").json()
    for path, method in [("/classify", "post"), ("/predict", "post"), ("/tokenize", "post"),
                         ("/info", "get"), ("/models", "get")]:
        op = spec["paths"][path][method]
        errors = {code: r for code, r in op["responses"].items() if code[0] in "45"}
        assert "500" in errors and "401" in errors, path
        for r in errors.values():
            assert r["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"}
    classify = spec["paths"]["/classify"]["post"]["responses"]
    assert {"404", "413", "422", "429", "503", "504"} <= set(classify)
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert {"ClassifyRequest", "PredictRequest", "TokenizeRequest", "ErrorBody"} <= set(schemas)
