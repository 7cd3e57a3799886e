"""The batching policy with a fake clock: admission by expected wait, batches, the cost model."""

import pytest

from app.engine.cost import CostModel, LengthModel
from app.engine.policy import BatchPolicy
from app.engine.queue import QueueLimits
from app.errors import DeadlineExceededError, OverloadedError
from app.settings import Settings
from tests.app.test_queue import Item


def policy(workers: int = 2, **overrides) -> BatchPolicy:
    limits = QueueLimits.from_settings(Settings(**({"max_batch_ms": 0} | overrides)))
    p = BatchPolicy(["m"], limits, workers)
    p.costs["m"] = CostModel(per_batch_s=0.01, per_token_s=0.001)  # 1 ms per token
    return p


def test_backlog_counts_queued_and_running_work_over_the_workers():
    p = policy(workers=2, max_batch_size=32)
    assert p.backlog_seconds(now=0) == 0
    p.admit([Item(100) for _ in range(4)], now=0)  # 400 tokens, one batch
    assert p.backlog_seconds(now=0) == pytest.approx((0.01 + 0.4) / 2)
    decision = p.decide(now=0)
    batch_id = p.started("m", decision.entries, now=0)  # expected to end at 0.41
    assert p.backlog_seconds(now=0.11) == pytest.approx(0.3 / 2)
    p.finished(batch_id, 400, 0.41)
    assert p.backlog_seconds(now=0.2) == 0


def test_refuses_when_the_expected_wait_is_over_the_limit_with_retry_after_from_backlog():
    p = policy(workers=1, max_queue_wait_ms=500)
    p.admit([Item(300)], now=0)  # 0.31 s ahead: the next one is admitted
    p.admit([Item(300)], now=0)  # 0.61 s ahead now
    with pytest.raises(OverloadedError) as refused:
        p.admit([Item(10)], now=0)
    assert refused.value.retry_after_s == pytest.approx(0.61)
    assert refused.value.headers["Retry-After"] == "1"
    for _ in range(10):  # a long backlog asks for a longer pause
        p.queues["m"].put(Item(300))
    with pytest.raises(OverloadedError) as refused:
        p.check_admission(now=0)
    assert int(refused.value.headers["Retry-After"]) == 4  # ceil(3.6 s)
    assert p.queued() == 12  # refused requests queue nothing


def test_a_short_client_deadline_refuses_earlier_and_a_past_one_is_504():
    p = policy(workers=1, max_queue_wait_ms=500)
    p.admit([Item(100)], now=0)  # 0.11 s ahead
    p.check_admission(now=0, deadline=1.0)
    with pytest.raises(OverloadedError):
        p.check_admission(now=0, deadline=0.05)
    with pytest.raises(DeadlineExceededError):
        p.check_admission(now=2.0, deadline=1.0)


def test_an_idle_server_admits_any_request_and_the_sequence_cap_holds():
    p = policy(workers=1, max_queue_wait_ms=1, max_queue_sequences=3)
    p.admit([Item(500)], now=0)  # its own cost is not a wait
    with pytest.raises(OverloadedError):
        p.admit([Item(1)] * 3, now=0)


def test_busy_workers_let_the_batch_grow_an_idle_one_takes_it_at_once():
    p = policy(workers=1, max_batch_size=4, max_queue_wait_ms=10_000)
    p.admit([Item(10)], now=0)
    first = p.decide(now=0)
    assert len(first.entries) == 1
    batch_id = p.started("m", first.entries, now=0)
    p.admit([Item(10), Item(12)], now=0.001)
    assert p.decide(now=0.002).entries is None  # the worker is busy: wait, the batch grows
    p.admit([Item(11), Item(10)], now=0.003)
    assert p.decide(now=0.004).entries is None  # full, but no worker to run it yet
    p.finished(batch_id, 10, 0.02)
    full = p.decide(now=0.005)  # the worker is free: the grown batch goes at once
    assert len(full.entries) == 4


def test_wait_for_fill_and_abandoned_entries_are_dropped_not_run():
    p = policy(workers=1, max_wait_ms=5)
    gone = Item(10, gone=True)
    p.admit([gone, Item(10)], now=0)
    assert p.decide(now=0.001).wait_s == pytest.approx(0.004)
    decision = p.decide(now=0.006)
    assert decision.dropped.abandoned == [gone] and len(decision.entries) == 1


def test_a_batch_stops_growing_at_its_compute_cap():
    p = policy(workers=1, max_batch_ms=100, max_batch_size=32)  # 10 ms + 1 ms a token
    p.admit([Item(30, enqueued_at=i * 1e-3) for i in range(10)], now=0.01)
    first = p.decide(now=0.02)
    assert len(first.entries) == 3  # 90 tokens: 100 ms; a fourth would be 130 ms
    assert p.token_cap("m") == 90
    p.costs["m"] = CostModel(per_batch_s=0.3, per_token_s=0.0)  # a batch alone is over the cap
    assert p.token_cap("m") == 1  # one sequence a batch: the oldest always goes


def test_cost_model_learns_a_line_from_batches():
    cost = CostModel()
    for tokens in [100, 400, 800, 1600, 3200] * 4:
        cost.observe(tokens, 0.005 + 2e-5 * tokens)
    assert cost.per_batch_s == pytest.approx(0.005, rel=0.05)
    assert cost.per_token_s == pytest.approx(2e-5, rel=0.05)
    assert cost.seconds(64, 64 * 100, 32) == pytest.approx(2 * 0.005 + 6400 * 2e-5, rel=0.05)


def test_cost_model_follows_a_slower_machine():
    cost = CostModel(per_batch_s=0.0, per_token_s=1e-5)
    for _ in range(300):
        cost.observe(1000, 0.03)  # one size only: the slope moves, the intercept stays
    assert cost.seconds(1, 1000, 32) == pytest.approx(0.03, rel=0.05)


def test_length_model_learns_the_tokens_per_character_of_the_traffic():
    lengths = LengthModel()
    assert lengths.tokens(400) == 2 + 100  # a token per four characters until it has seen any
    for _ in range(200):  # texts of 400 characters and 202 tokens: half a token a character
        lengths.observe(chars=8 * 400, tokens=8 * 202, texts=8)
    assert lengths.ratio == pytest.approx(0.5)
    assert lengths.tokens(400) == 202


def test_finished_batches_teach_the_length_model():
    p = policy(workers=1)
    p.admit([Item(10)], now=0)
    batch_id = p.started("m", p.decide(now=0).entries, now=0)
    p.finished(batch_id, 10, 0.01, texts=(1, 30, 10))  # 30 characters gave 10 tokens
    assert p.lengths["m"].ratio == pytest.approx(8 / 30)


def test_a_request_admitted_before_parsing_holds_its_work_until_queued():
    p = policy(workers=1, max_queue_wait_ms=500, max_batch_size=1)
    p.costs["m"] = CostModel(per_batch_s=0.0, per_token_s=0.001)  # 1 ms per token
    held = [p.reserve("m", chars=4 * 98, max_tokens=512) for _ in range(6)]  # 100 tokens each
    assert held == pytest.approx([0.1] * 6) and p.backlog_seconds(now=0) == pytest.approx(0.6)
    with pytest.raises(OverloadedError):  # the seventh arrival is refused before any is parsed
        p.check_admission(now=0)
    p.release(held[0])
    p.admit([Item(100)], now=0)  # the first, parsed, now counts as queued work
    assert p.backlog_seconds(now=0) == pytest.approx(0.6)
    for seconds in held[1:]:
        p.release(seconds)
    assert p.backlog_seconds(now=0) == pytest.approx(0.1)
    big = p.reserve("m", chars=1_000_000, max_tokens=256)  # at most one full sequence
    assert big == pytest.approx(0.256)
