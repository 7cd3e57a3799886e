"""The HTTP contract, and a bad-input suite: each case a clear 4xx, the server still serving."""

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import settings_for

GOOD = {"inputs": "a good film"}


def assert_serves(client):
    r = client.post("/classify", json=GOOD)
    assert r.status_code == 200, r.text


def test_classify_single_text(client):
    r = client.post("/classify", json=GOOD)
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "tiny-ltp"
    (pred,) = body["results"]
    assert pred["label"] in ("neg", "pos")
    assert sorted(s["label"] for s in pred["scores"]) == ["neg", "pos"]
    assert abs(sum(s["score"] for s in pred["scores"]) - 1) < 1e-5
    assert pred["score"] == max(s["score"] for s in pred["scores"])
    assert pred["input_tokens"] == 5  # [CLS] a good film [SEP]
    assert 1 <= pred["kept_tokens"] <= pred["input_tokens"]
    assert "kept_tokens_per_layer" not in pred
    usage = body["usage"]
    assert usage["input_tokens"] == 5
    assert 0 < usage["flops"] <= usage["flops_dense"]
    assert usage["flops_saved_ratio"] == pytest.approx(1 - usage["flops"] / usage["flops_dense"])
    for header in ("x-queue-ms", "x-inference-ms", "x-tokenize-ms", "x-total-ms"):
        assert float(r.headers[header]) >= 0


def test_classify_list_pairs_details_top_k_and_model(client):
    texts = ["good", "the plot was dull and the film was not fun at all", "great fun"]
    r = client.post("/classify", json={"inputs": texts, "details": True, "top_k": 1})
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == 3
    for pred in results:
        assert len(pred["scores"]) == 1
        per_layer = pred["kept_tokens_per_layer"]
        assert len(per_layer) == 3 and per_layer[-1] == 1
        assert pred["kept_tokens"] == per_layer[-2]
    pairs = client.post("/classify", json={"inputs": [["good film", "bad plot"]],
                                           "model": "tiny-topics"})
    assert pairs.status_code == 200
    assert pairs.json()["model"] == "tiny-topics"
    assert pairs.json()["results"][0]["input_tokens"] == 7


def test_the_loaded_service_is_out_of_the_collectors_sight(client):
    """What start-up loaded is frozen: a full collection under load no longer walks the
    models' objects (150-170 ms a collection for one MiniLM, every refusal waiting behind)."""
    import gc

    assert client.get("/readyz").status_code == 200
    assert gc.get_freeze_count() > 10_000


def test_models_health_ready_metrics_docs(client):
    models = client.get("/models").json()["models"]
    assert {m["name"] for m in models} == {"tiny-ltp", "tiny-topics"}
    assert [m["default"] for m in models if m["name"] == "tiny-ltp"] == [True]
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").json()["status"] == "ready"
    assert "ltp_model_info" in client.get("/metrics").text
    assert client.get("/openapi.json").json()["paths"]["/classify"]
    assert client.get("/docs").status_code == 200


BAD = [
    ("not json", 422, "invalid_input"),
    ({}, 422, "invalid_input"),
    ({"inputs": ""}, 422, "invalid_input"),
    ({"inputs": []}, 422, "invalid_input"),
    ({"inputs": ["ok", "   "]}, 422, "invalid_input"),
    ({"inputs": [["only one"]]}, 422, "invalid_input"),
    ({"inputs": 42}, 422, "invalid_input"),
    ({"inputs": "x", "top_k": 0}, 422, "invalid_input"),
    ({"inputs": "x", "top_k": 5}, 422, "invalid_input"),
    ({"inputs": "x", "colour": "red"}, 422, "invalid_input"),
    ({"inputs": ["x"] * 65}, 413, "payload_too_large"),
    ({"inputs": "x" * 20_001}, 413, "payload_too_large"),
    ({"inputs": "good " * 40, "truncate": False}, 413, "payload_too_large"),
    ({"inputs": "x", "model": "nope"}, 404, "model_not_found"),
]


@pytest.mark.parametrize("body,status,kind", BAD)
def test_bad_input_is_a_clear_4xx_and_the_server_still_serves(client, body, status, kind):
    if isinstance(body, str):
        r = client.post("/classify", content=body, headers={"content-type": "application/json"})
    else:
        r = client.post("/classify", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error_type"] == kind and r.json()["error"]
    assert_serves(client)


def test_truncation_on_by_default(client):
    r = client.post("/classify", json={"inputs": "good " * 40})
    assert r.status_code == 200 and r.json()["results"][0]["input_tokens"] == 32


def test_body_too_large(models_dir):
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings_for(models_dir, max_body_bytes=200))) as c:
        r = c.post("/classify", json={"inputs": "a" * 500})
        assert r.status_code == 413 and r.json()["error_type"] == "payload_too_large"
        assert_serves(c)


def test_api_key(models_dir):
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings_for(models_dir, api_key="s3cret"))) as c:
        assert c.post("/classify", json=GOOD).status_code == 401
        r = c.post("/classify", json=GOOD, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["error_type"] == "unauthorized"
        assert c.post("/classify", json=GOOD, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.post("/classify", json=GOOD, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes need no key


def test_queue_full_is_429_with_retry_after(models_dir):
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings_for(models_dir, max_queue_sequences=2))) as c:
        r = c.post("/classify", json={"inputs": ["a", "b", "c"]})
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["error_type"] == "overloaded"
        assert_serves(c)


def test_deadline_is_504(models_dir):
    from fastapi.testclient import TestClient

    with TestClient(create_app(settings_for(models_dir, request_timeout_s=0.0))) as c:
        r = c.post("/classify", json=GOOD)
        assert r.status_code == 504 and r.json()["error_type"] == "deadline_exceeded"
        rejections = [line for line in c.get("/metrics").text.splitlines()
                      if line.startswith("ltp_rejections_total")]
        assert any("deadline" in line for line in rejections)


def test_errors_are_counted_in_metrics(client):
    client.post("/classify", json={"inputs": "x", "model": "nope"})
    text = client.get("/metrics").text
    assert 'ltp_requests_total{model="unknown",status="404"} 1.0' in text  # bounded labels
    assert 'ltp_rejections_total{reason="model_not_found"} 1.0' in text


def test_the_model_name_limit_is_the_settings_own(models_dir):
    with TestClient(create_app(settings_for(models_dir, max_model_name_chars=12))) as c:
        r = c.post("/classify", json={"inputs": "x", "model": "m" * 13})
        assert r.status_code == 422 and r.json()["error_type"] == "invalid_input"
        assert "at most 12 characters" in r.json()["error"]
        r = c.post("/classify", json={"inputs": "x", "model": "m" * 12})
        assert r.status_code == 404  # within the limit: looked up, not loaded
        r = c.post("/predict", json={"inputs": "x"})  # TEI's routes resolve through the same place
        assert r.status_code == 200
        assert_serves(c)


def test_no_work_stays_held_after_answers_and_refusals(client):
    """Each request admitted before parsing holds its expected work until it is queued or
    ends: once every request has its answer, good or bad, nothing is held."""
    import time

    bodies = [{"inputs": "good film"}, {"inputs": ["a", "b"], "model": "nope"},
              {"inputs": "x" * 30_000}, {"inputs": "good " * 40, "truncate": False}]
    statuses = [client.post("/classify", json=b).status_code for b in bodies]
    assert client.post("/classify", content=b"{not json").status_code == 422
    assert statuses == [200, 404, 413, 413]
    policy = client.app.state.front.engine.policy
    assert policy.backlog_seconds(time.monotonic()) == 0
