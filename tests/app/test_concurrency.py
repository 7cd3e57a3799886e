"""Many concurrent clients against a real server get the results of one-at-a-time inference."""

import asyncio
import random

import httpx
import pytest

WORDS = ["good", "bad", "film", "movie", "great", "awful", "plot", "the", "is", "not", "fun", "dull"]


def texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40))) for _ in range(n)]


async def classify_all(url: str, bodies: list[dict], concurrency: int) -> list[dict]:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        sem = asyncio.Semaphore(concurrency)

        async def one(body):
            async with sem:
                r = await client.post("/classify", json=body)
                assert r.status_code == 200, r.text
                return r.json()

        return await asyncio.gather(*(one(b) for b in bodies))


def key(pred: dict):
    return pred["label"], pred["input_tokens"], pred["kept_tokens"]


def test_concurrent_clients_match_sequential(server):
    inputs = texts(60)
    bodies = [{"inputs": t, "details": True} for t in inputs]
    bodies += [{"inputs": inputs[i:i + 3], "details": True} for i in range(0, 30, 3)]
    bodies += [{"inputs": t, "model": "tiny-topics"} for t in inputs[:20]]
    alone = asyncio.run(classify_all(server.url, bodies, concurrency=1))
    together = asyncio.run(classify_all(server.url, bodies, concurrency=32))
    for a, b in zip(alone, together, strict=True):
        assert a["model"] == b["model"]
        for pa, pb in zip(a["results"], b["results"], strict=True):
            assert key(pa) == key(pb)
            assert pa.get("kept_tokens_per_layer") == pb.get("kept_tokens_per_layer")
            assert pa["score"] == pytest.approx(pb["score"], abs=1e-5)
        assert a["usage"]["flops"] == pytest.approx(b["usage"]["flops"])
    metrics = httpx.get(f"{server.url}/metrics").text
    sizes = [line for line in metrics.splitlines()
             if line.startswith('ltp_batch_size_count{model="tiny-ltp"}')]
    batches = float(sizes[0].split()[-1])
    sequences = 2 * (60 + 30)  # tiny-ltp sequences over both passes
    assert batches < sequences, "concurrent load was batched"


def test_metrics_move_after_requests(server):
    asyncio.run(classify_all(server.url, [{"inputs": t} for t in texts(10, seed=3)], 4))
    after = httpx.get(f"{server.url}/metrics").text

    def value(prefix: str) -> float:
        lines = [line for line in after.splitlines() if line.startswith(prefix)]
        assert lines, prefix
        return float(lines[0].split()[-1])

    assert value('ltp_sequences_total{model="tiny-ltp"}') >= 10
    assert value('ltp_kept_tokens_count{model="tiny-ltp"}') >= 10
    assert value('ltp_layer_kept_tokens_count{layer="0",model="tiny-ltp"}') >= 10
    assert value('ltp_flops_saved_ratio_count{model="tiny-ltp"}') >= 10
    assert value('ltp_flops_total{model="tiny-ltp"}') < value('ltp_flops_dense_total{model="tiny-ltp"}')
    assert value('ltp_requests_total{model="tiny-ltp",status="200"}') >= 10
    assert value('ltp_queue_seconds_count{model="tiny-ltp"}') >= 10
    assert value('ltp_request_seconds_count{model="tiny-ltp"}') >= 10
    assert value('ltp_batch_padding_ratio_count{model="tiny-ltp"}') >= 1
    assert "ltp_queue_sequences" in after and "ltp_queue_tokens" in after
